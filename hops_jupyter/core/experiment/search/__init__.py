"""Ask/tell search algorithms: grid, random, differential evolution, and fixed trial lists."""

from hops_jupyter.core.experiment.search.base import Searcher, check_direction
from hops_jupyter.core.experiment.search.differential_evolution import DifferentialEvolution
from hops_jupyter.core.experiment.search.fixed import FixedTrials
from hops_jupyter.core.experiment.search.grid import GridSearch
from hops_jupyter.core.experiment.search.random_search import RandomSearch

__all__ = [
    "DifferentialEvolution",
    "FixedTrials",
    "GridSearch",
    "RandomSearch",
    "Searcher",
    "check_direction",
]
