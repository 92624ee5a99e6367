"""What launch, the searches and the distributed calls return, and the error when every trial
failed (it carries the result, so records and tracebacks stay at hand)."""

from __future__ import annotations

import dis
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

from hops_jupyter.core.experiment.records import ExperimentRecord, TrialRecord

DISTRIBUTED_KINDS = ("mirrored", "collective_all_reduce", "parameter_server")


class ExperimentFailed(RuntimeError):
    """Every trial of an experiment failed; the records (with tracebacks) are kept."""

    def __init__(self, message: str, result: ExperimentResult) -> None:
        super().__init__(message)
        self.result = result


def _unpack_targets(frame: FrameType | None) -> int | None:
    """How many names the calling line unpacks into (`a, b = result` gives 2), else None.

    Seed-era code unpacks a search's result into two names, later code into three; Python
    gives an iterator no way to know which, so the caller's bytecode is read (the interpreter
    is executing UNPACK_SEQUENCE at `f_lasti` when it asks for the iterator)."""
    if frame is None:
        return None
    for ins in dis.get_instructions(frame.f_code):
        if ins.offset == frame.f_lasti:
            return ins.arg if ins.opname == "UNPACK_SEQUENCE" else None
    return None


class ExperimentResult(str):
    """What launch and the searches return: a `str` whose value is the experiment's folder.

    Seed-era code uses it as a path (`result + "/run"`, `.startswith(...)`, `json.dumps`,
    `tensorboard.visualize(result)`). It unpacks as `(logdir, return_dict)` for launch and
    distributed runs; for searches as `(best_dir, best_params, best_return_dict)`, or into two
    names as `(logdir, best_params)`, the hops-util-py 1.0 form. `result.id`, `.record`,
    `.trials`, `.best_metric`, ... are there too.
    """

    record: ExperimentRecord

    def __new__(cls, record: ExperimentRecord) -> ExperimentResult:
        obj = super().__new__(cls, record.url)
        obj.record = record
        return obj

    def __getnewargs__(self) -> tuple[Any, ...]:  # pickle: rebuilt from its record
        return (self.record,)

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def path(self) -> str:
        return self.record.url

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

    def __iter__(self) -> Iterator[Any]:
        values = self._as_tuple()
        if len(values) == 3 and _unpack_targets(sys._getframe(1)) == 2:
            return iter((self.path, self.best_params))
        return iter(values)

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return (
            f"ExperimentResult(id={self.id!r}, kind={self.record.kind!r}, "
            f"status={self.status!r}, best_metric={self.best_metric!r}, path={self.path!r})"
        )
