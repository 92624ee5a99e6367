"""Grid search: one trial per point of the cartesian product, in a fixed order."""

from __future__ import annotations

import itertools
from typing import Any

from hops_jupyter.core.experiment.search.base import PointList
from hops_jupyter.core.experiment.search.space import check_lists


class GridSearch(PointList):
    """Every combination of the given value lists, the last parameter varying fastest."""

    def __init__(self, args_dict: dict[str, list[Any]], direction: str = "max") -> None:
        space = check_lists(args_dict, "args_dict", equal_lengths=False)
        names = list(space)
        points = [dict(zip(names, p, strict=True)) for p in itertools.product(*space.values())]
        super().__init__(points, space, direction)
