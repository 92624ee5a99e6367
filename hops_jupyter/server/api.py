"""REST handlers: experiments (with trials and latest metrics) and TensorBoards.

Filesystem and process work runs in a thread so the server's event loop never blocks on it.
An experiment's `id` (and `url`) in answers come from its folder, never from what its
`experiment.json` says: the file is user-writable and the panel builds links from the id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from tornado import web

from hops_jupyter.core import tensorboard
from hops_jupyter.core.experiment import logs, records

T = TypeVar("T")


def experiment_json(record: records.ExperimentRecord, with_trials: bool) -> dict[str, Any]:
    data = record.to_json()
    tb = tensorboard.find(record.id)
    data["tensorboard"] = tb.to_json() if tb else None
    if with_trials:
        data["trials"] = [{**t.to_json(), "latest": t.latest} for t in record.trials]
    return data


async def _on_records(experiment_id: str, call: Callable[..., T], *args: Any) -> T:
    """`call(*args)` in a thread, its errors as HTTP answers: an unknown experiment, trial or
    log is 404, a stop of one that does not run 409, a record that is no record 500."""
    try:
        return await asyncio.to_thread(call, *args)
    except KeyError as err:
        raise web.HTTPError(404, str(err.args[0] if err.args else err)) from None
    except records.NotRunning as err:
        raise web.HTTPError(409, str(err)) from None
    except ValueError as err:  # its experiment.json is not a record (see records.from_json)
        raise web.HTTPError(500, f"Experiment {experiment_id} cannot be read: {err}") from None


class HopsAPIHandler(APIHandler):
    """JSON in and out; authentication required on every method (403 otherwise)."""

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(records.json_safe(data), default=str))


class ExperimentsHandler(HopsAPIHandler):
    @web.authenticated
    async def get(self) -> None:
        found = await asyncio.to_thread(records.list_experiments)
        self.write_json([experiment_json(r, with_trials=False) for r in found])


class ExperimentHandler(HopsAPIHandler):
    @web.authenticated
    async def get(self, experiment_id: str) -> None:
        record = await _on_records(experiment_id, records.get, experiment_id)
        self.write_json(experiment_json(record, with_trials=True))


class StopHandler(HopsAPIHandler):
    """Ask a running experiment to stop, in whatever kernel or process its driver runs: the
    request goes through the records (a stop file the driver checks), never through globals."""

    @web.authenticated
    async def post(self, experiment_id: str) -> None:
        await _on_records(experiment_id, records.request_stop, experiment_id)
        self.write_json({"stop_requested": True, "id": experiment_id}, 202)


class TrialLogHandler(HopsAPIHandler):
    """A trial's stdout/stderr/hdfs log: the tail, or from `?offset=` on (a live tail polls
    with the `next_offset` of the previous answer)."""

    @web.authenticated
    async def get(self, experiment_id: str, trial_id: str, stream: str) -> None:
        raw = self.get_query_argument("offset", None)
        try:
            offset = None if raw in (None, "") else int(raw)
        except ValueError:
            offset = -1  # refused below, with the same message
        if offset is not None and offset < 0:
            raise web.HTTPError(
                400, f"offset must be a whole number of bytes, 0 or more, got {raw[:40]!r}"
            )
        data = await _on_records(experiment_id, logs.read, experiment_id, trial_id, stream, offset)
        self.write_json(data)


class TensorBoardsHandler(HopsAPIHandler):
    @web.authenticated
    async def get(self) -> None:
        found = await asyncio.to_thread(tensorboard.running)
        self.write_json([info.to_json() for info in found])

    @web.authenticated
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
            experiment_id = body["experiment_id"]
        except (ValueError, KeyError, TypeError):
            raise web.HTTPError(400, 'Body must be JSON like {"experiment_id": "<id>"}') from None
        await _on_records(experiment_id, records.get, experiment_id)
        result = await asyncio.to_thread(tensorboard.start, experiment_id)
        if result.info is None:
            status = 504 if result.outcome == tensorboard.TIMED_OUT else 500
            raise web.HTTPError(status, f"TensorBoard {result.outcome}: {result.message}")
        status = 201 if result.outcome == tensorboard.LAUNCHED else 200
        self.write_json({**dataclasses.asdict(result), "info": result.info.to_json()}, status)


class TensorBoardHandler(HopsAPIHandler):
    @web.authenticated
    async def delete(self, experiment_id: str) -> None:
        if not records.is_experiment_id(experiment_id):
            raise web.HTTPError(404, f"Unknown experiment id {experiment_id!r}")
        if not await asyncio.to_thread(tensorboard.stop, experiment_id):
            raise web.HTTPError(404, f"No TensorBoard is running for {experiment_id!r}")
        self.set_status(204)
        self.finish()
