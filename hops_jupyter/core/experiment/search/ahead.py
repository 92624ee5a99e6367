"""Ask ahead: keep a slow search's next proposal computing in a thread while trials run, so a
worker that frees up gets its next trial at once instead of waiting for the model.

The proposal handed out was computed before the latest results arrived (one result behind),
which asynchronous model-based searches tolerate; the search still sees every result, and
trials running meanwhile count as pending when it proposes.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

from hops_jupyter.core.experiment.search.base import Searcher


class AskAhead:
    """Wraps a Searcher: the same ask/tell, with ask() answered from a prefetched proposal."""

    def __init__(self, search: Searcher) -> None:
        self.search = search
        self._lock = threading.Lock()  # the search itself is not thread-safe
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hops-ask")
        self._next: concurrent.futures.Future | None = None

    def __getattr__(self, name: str) -> Any:  # total, describe, loss, direction, ...
        return getattr(self.search, name)

    def _ask(self) -> dict[str, Any] | None:
        with self._lock:
            return self.search.ask()

    def ask(self) -> dict[str, Any] | None:
        params = self._next.result() if self._next is not None else self._ask()
        self._next = self._pool.submit(self._ask) if params is not None else None
        return params

    def tell(self, params: dict[str, Any], value: float | None,
             stopped_step: int | None = None) -> None:  # fmt: skip
        with self._lock:
            self.search.tell(params, value, stopped_step)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
