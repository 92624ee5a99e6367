"""Thread limits per trial: trials running side by side must not each start a thread pool as
wide as the machine (2 trials x 2 OpenMP threads on 2 cores ran a scikit-learn job 7x slower).

Each trial gets `max(1, cores // trials at once)` threads unless told otherwise
(`threads_per_trial=`, the `threads_per_trial` config key, `$HOPS_THREADS_PER_TRIAL`): the
usual variables are set before the trial's process imports anything (a variable the user set
is kept), and pools already loaded are capped with threadpoolctl while the trial runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from hops_jupyter.core import project

# TensorFlow's inter-op pool is left alone: with one inter-op thread its distributed runtime
# (parameter servers, collectives) deadlocks.
THREAD_VARS = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
)  # fmt: skip
TRIAL_THREADS_ENV = "HOPS_TRIAL_THREADS"


def threads_per_trial(slots: int, explicit: object = None, cores: int | None = None) -> int:
    """The threads each trial gets: `explicit`, else the configured value, else cores divided
    by the trials running at once (at least 1)."""
    if explicit is not None:
        if not isinstance(explicit, int) or isinstance(explicit, bool) or explicit < 1:
            raise ValueError(f"threads_per_trial must be a positive integer, got {explicit!r}")
        return explicit
    configured = project.current().threads_per_trial
    if configured > 0:
        return configured
    return max(1, (cores or os.cpu_count() or 1) // max(1, slots))


def thread_env(threads: int, base: Mapping[str, str]) -> dict[str, str]:
    """Variables that bound a new process's thread pools (those `base` already sets stay)."""
    env = {var: str(threads) for var in THREAD_VARS if var not in base}
    env[TRIAL_THREADS_ENV] = str(threads)
    return env


def trial_threads() -> int:
    """The threads this process's trials get (set by the engine in its environment); 0: none
    set."""
    return int(os.environ.get(TRIAL_THREADS_ENV, "0") or 0)


def cap_loaded_pools(threads: int) -> Any:
    """Cap the pools already loaded in this process (BLAS, OpenMP, PyTorch) to `threads`, now;
    threadpoolctl's limiter (its restore_original_limits() undoes it), or None without it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn; without it the env vars rule
        return None
    return threadpool_limits(threads)


@contextlib.contextmanager
def limited() -> Iterator[None]:
    """Cap the pools already loaded in this process for a trial, while it runs."""
    threads = trial_threads()
    limiter = cap_loaded_pools(threads) if threads > 0 else None
    try:
        yield
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
