"""A fixed list of trials: `launch` with an args_dict runs one trial per list position."""

from __future__ import annotations

from typing import Any

from hops_jupyter.core.experiment.search.base import PointList
from hops_jupyter.core.experiment.search.space import check_lists


class FixedTrials(PointList):
    """Trial i gets the i-th value of every list (zip, not product); no dict: one plain run."""

    def __init__(self, args_dict: dict[str, list[Any]] | None) -> None:
        if args_dict is None:
            super().__init__([{}], {})
            return
        lists = check_lists(args_dict, "args_dict", equal_lengths=True)
        n = len(next(iter(lists.values())))
        super().__init__([{k: v[i] for k, v in lists.items()} for i in range(n)], lists)
