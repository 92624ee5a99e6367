"""Ask/tell search algorithms: grid, random, differential evolution, GP, TPE, fixed lists.
They know nothing of engines; `experiment/registry.py` names them for the API and the magics."""

from hops_jupyter.core.experiment.search.base import Searcher, check_count, check_direction
from hops_jupyter.core.experiment.search.differential_evolution import DifferentialEvolution
from hops_jupyter.core.experiment.search.fixed import FixedTrials
from hops_jupyter.core.experiment.search.gp import GPSearch
from hops_jupyter.core.experiment.search.grid import GridSearch
from hops_jupyter.core.experiment.search.portfolio import Portfolio
from hops_jupyter.core.experiment.search.random_search import RandomSearch
from hops_jupyter.core.experiment.search.tpe import TPESearch

__all__ = [
    "DifferentialEvolution",
    "FixedTrials",
    "GPSearch",
    "GridSearch",
    "Portfolio",
    "RandomSearch",
    "Searcher",
    "TPESearch",
    "check_count",
    "check_direction",
]
