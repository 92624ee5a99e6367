"""`%tensorboard` output: a MIME bundle the labextension renders as an iframe through the
server's proxy, with an HTML fallback that builds the same URL from the page's base URL."""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote

from hops_jupyter.widgets.render import tensorboard_path

MIME_TYPE = "application/vnd.hops.tensorboard+json"


def tensorboard_bundle(experiment_id: str, height: int = 800) -> dict[str, Any]:
    """The MIME bundle for one experiment's TensorBoard."""
    path = tensorboard_path(experiment_id)
    segment = quote(str(experiment_id), safe="")
    frame_id = f"hops-tb-{segment}"
    # Inside JupyterLab the page's own base URL (jupyter-config-data) wins over the one the
    # kernel was told, so the frame works behind JupyterHub-style prefixes too.
    fallback = f"""<iframe id="{html.escape(frame_id)}" src="{html.escape(path)}" style="width:100%;height:{int(height)}px;border:0"></iframe>
<script>(function(){{var c=document.getElementById("jupyter-config-data");if(!c)return;
var b=JSON.parse(c.textContent).baseUrl||"/";var f=document.getElementById({json.dumps(frame_id)});
if(f)f.src=b.replace(/\\/?$/,"/")+{json.dumps(f"hops/tensorboard/{segment}/")};}})();</script>"""
    return {
        MIME_TYPE: {
            "experiment_id": experiment_id,
            "path": f"hops/tensorboard/{segment}/",
            "height": height,
        },
        "text/html": fallback,
        "text/plain": f"TensorBoard of {experiment_id}: {path}",
    }


class TensorBoardDisplay:
    """Displays as the experiment's TensorBoard in a notebook."""

    def __init__(self, experiment_id: str, height: int = 800) -> None:
        self.experiment_id = experiment_id
        self.height = height

    def _repr_mimebundle_(self, **_: Any) -> dict[str, Any]:
        return tensorboard_bundle(self.experiment_id, self.height)
