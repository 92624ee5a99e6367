"""hops-jupyter: Hopsworks-style tracked experiments from Jupyter notebooks."""

from typing import Any

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """How jupyter-server finds our extension (`jpserver_extensions: {"hops_jupyter": true}`)."""
    from hops_jupyter.server.app import HopsExtension

    return [{"module": "hops_jupyter.server.app", "app": HopsExtension}]
