"""hops-jupyter: Hopsworks-style tracked experiments from Jupyter notebooks."""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("hops-jupyter")  # defined once, in labextension/package.json
except PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """How jupyter-server finds our extension (`jpserver_extensions: {"hops_jupyter": true}`)."""
    from hops_jupyter.server.app import HopsExtension

    return [{"module": "hops_jupyter.server.app", "app": HopsExtension}]


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext hops_jupyter` registers the %hdfs, %%experiment and %tensorboard magics."""
    from hops_jupyter.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext hops_jupyter` removes them."""
    from hops_jupyter.magics import unload_ipython_extension as unload

    unload(ipython)
