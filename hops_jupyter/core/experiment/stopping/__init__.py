"""Early-stopping policies fed by the values trials report (see registry.STOPPERS)."""

from hops_jupyter.core.experiment.stopping.asha import ASHA
from hops_jupyter.core.experiment.stopping.base import StoppingPolicy
from hops_jupyter.core.experiment.stopping.median import MedianStopping

__all__ = ["ASHA", "MedianStopping", "StoppingPolicy"]
