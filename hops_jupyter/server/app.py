"""The jupyter-server extension: routes under `{base_url}hops/`, TensorBoards stopped on exit."""

from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp

from hops_jupyter.server.api import (
    ExperimentHandler,
    ExperimentsHandler,
    StopHandler,
    TensorBoardHandler,
    TensorBoardsHandler,
    TrialLogHandler,
)
from hops_jupyter.server.proxy import TensorBoardProxyHandler

_ID = r"(?P<experiment_id>[^/]+)"


class HopsExtension(ExtensionApp):
    """REST API over the project's experiments and an authenticated TensorBoard proxy."""

    name = "hops_jupyter"
    load_other_extensions = True

    def initialize_settings(self) -> None:
        # Kernels started by this server inherit it: widgets and %tensorboard build proxy links.
        os.environ["HOPS_SERVER_BASE_URL"] = self.serverapp.base_url

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            [
                (r"/hops/api/experiments/?", ExperimentsHandler),
                (rf"/hops/api/experiments/{_ID}/?", ExperimentHandler),
                (rf"/hops/api/experiments/{_ID}/stop/?", StopHandler),
                (
                    rf"/hops/api/experiments/{_ID}/trials/(?P<trial_id>[^/]+)/logs/(?P<stream>[a-z]+)/?",
                    TrialLogHandler,
                ),
                (r"/hops/api/tensorboards/?", TensorBoardsHandler),
                (rf"/hops/api/tensorboards/{_ID}/?", TensorBoardHandler),
                (rf"/hops/tensorboard/{_ID}(?P<path>/.*)?", TensorBoardProxyHandler),
            ]
        )

    async def stop_extension(self) -> None:
        """TensorBoards this server started do not outlive it."""
        from hops_jupyter.core import tensorboard

        stopped = tensorboard.stop_owned_by(os.getpid())
        if stopped:
            self.log.info("hops: stopped TensorBoards %s", ", ".join(stopped))
