"""ipywidgets and plotly views of experiments, and the inline TensorBoard display."""

from hops_jupyter.widgets.tensorboard import TensorBoardDisplay, tensorboard_bundle
from hops_jupyter.widgets.view import ExperimentView, show

__all__ = ["ExperimentView", "TensorBoardDisplay", "show", "tensorboard_bundle"]
