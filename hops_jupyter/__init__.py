"""hops-jupyter: Hopsworks-style tracked experiments from Jupyter notebooks."""

__version__ = "0.1.0"
