"""What launch, the searches and the distributed calls return, and the error when every trial
failed (it carries the result, so records and tracebacks stay at hand)."""

from __future__ import annotations

import os
from typing import Any

from hops_jupyter.core.experiment.records import ExperimentRecord, TrialRecord

DISTRIBUTED_KINDS = ("mirrored", "collective_all_reduce", "parameter_server")


class ExperimentFailed(RuntimeError):
    """Every trial of an experiment failed; the records (with tracebacks) are kept."""

    def __init__(self, message: str, result: ExperimentResult) -> None:
        super().__init__(message)
        self.result = result


class ExperimentResult(os.PathLike):
    """What launch and the searches return.

    `str(result)` (and `os.fspath`) is the experiment's folder, as the seed's code expects
    (`tensorboard.visualize(result)`); it unpacks as `(logdir, return_dict)` for launch and
    `(best_dir, best_params, best_return_dict)` for searches, as later Hops versions return.
    """

    def __init__(self, record: ExperimentRecord) -> None:
        self.record = record
        self.id = record.id
        self.path = record.url

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def trials(self) -> list[TrialRecord]:
        return self.record.trials

    def _best(self) -> TrialRecord | None:
        return next((t for t in self.trials if t.id == self.record.best_trial), None)

    @property
    def best_dir(self) -> str | None:
        return f"{self.path}/{self.record.best_trial}" if self.record.best_trial else None

    @property
    def best_params(self) -> dict[str, Any] | None:
        return self.record.best_params

    @property
    def best_metric(self) -> float | None:
        return self.record.best_metric

    @property
    def best_return(self) -> dict[str, Any] | None:
        best = self._best()
        return best.returned if best else None

    @property
    def return_dict(self) -> dict[str, Any] | None:
        """launch: the run's returned dict (one per trial id when args_dict gave several);
        distributed runs: the chief's."""
        if self.record.kind in DISTRIBUTED_KINDS:
            return self.best_return
        if len(self.trials) == 1:
            return self.trials[0].returned
        return {t.id: t.returned for t in self.trials}

    def _as_tuple(self) -> tuple[Any, ...]:
        if self.record.kind == "launch" or self.record.kind in DISTRIBUTED_KINDS:
            return (self.path, self.return_dict)
        return (self.best_dir, self.best_params, self.best_return)

    def __iter__(self):
        return iter(self._as_tuple())

    def __len__(self) -> int:
        return len(self._as_tuple())

    def __getitem__(self, index: int) -> Any:
        return self._as_tuple()[index]

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return (
            f"ExperimentResult(id={self.id!r}, kind={self.record.kind!r}, "
            f"status={self.status!r}, best_metric={self.best_metric!r}, path={self.path!r})"
        )
