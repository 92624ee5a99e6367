"""The jupyter-server extension of hops-jupyter (enabled by jupyter-config/, see app.py)."""

from hops_jupyter.server.app import HopsExtension

__all__ = ["HopsExtension"]
