"""`%tensorboard` output: a MIME bundle the labextension renders as an iframe through the
server's proxy (or, in a reopened notebook, a "Show TensorBoard" placeholder), with an HTML
fallback for static exports (nbconvert HTML): a plain link, never an empty frame."""

from __future__ import annotations

import contextlib
import html
import json
from typing import Any
from urllib.parse import quote

from hops_jupyter.widgets.render import tensorboard_path

MIME_TYPE = "application/vnd.hops.tensorboard+json"
_LINK_STYLE = (
    "display:inline-block;padding:4px 12px;border:1px solid #8c959f;border-radius:4px;"
    "color:#0969da;background:transparent;text-decoration:none;font:13px/1.5 sans-serif"
)


def experiment_name(experiment_id: str) -> str | None:
    """The experiment's name from its record, None when it cannot be read here."""
    from hops_jupyter.core.experiment import records

    with contextlib.suppress(Exception):
        loc = records.experiment_dir(str(experiment_id)).child(records.EXPERIMENT_FILE)
        name = records.read_json(loc).get("name")
        return str(name) if name else None
    return None


def tensorboard_bundle(
    experiment_id: str, height: int = 800, name: str | None = None
) -> dict[str, Any]:
    """The MIME bundle for one experiment's TensorBoard."""
    path = tensorboard_path(experiment_id)
    segment = quote(str(experiment_id), safe="")
    link_id = f"hops-tb-{segment}"
    title = f' title="{html.escape(name)}"' if name else ""
    # A live page's own base URL (jupyter-config-data) wins over the one the kernel was told,
    # so the link works behind JupyterHub-style prefixes too; an export keeps the path.
    fallback = f"""<a id="{html.escape(link_id)}" class="hops-tensorboard-link" href="{html.escape(path)}" target="_blank" rel="noopener"{title} style="{_LINK_STYLE}">Open TensorBoard of {html.escape(str(experiment_id))}</a>
<script>(function(){{var c=document.getElementById("jupyter-config-data");if(!c)return;
var b=JSON.parse(c.textContent).baseUrl||"/";var a=document.getElementById({json.dumps(link_id)});
if(a)a.href=b.replace(/\\/?$/,"/")+{json.dumps(f"hops/tensorboard/{segment}/")};}})();</script>"""
    data: dict[str, Any] = {
        "experiment_id": experiment_id,
        "path": f"hops/tensorboard/{segment}/",
        "height": height,
    }
    if name:
        data["name"] = name
    return {
        MIME_TYPE: data,
        "text/html": fallback,
        "text/plain": f"TensorBoard of {experiment_id}: {path}",
    }


class TensorBoardDisplay:
    """Displays as the experiment's TensorBoard in a notebook."""

    def __init__(self, experiment_id: str, height: int = 800, name: str | None = None) -> None:
        self.experiment_id = experiment_id
        self.height = height
        self.name = name if name is not None else experiment_name(experiment_id)

    def _repr_mimebundle_(self, **_: Any) -> dict[str, Any]:
        return tensorboard_bundle(self.experiment_id, self.height, self.name)
