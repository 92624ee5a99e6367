"""Reverse proxy from `{base_url}hops/tensorboard/<experiment_id>/...` to that experiment's
registered TensorBoard on 127.0.0.1, started on demand.

The target port only ever comes from the registry entry of a valid experiment id: no host or
port is taken from the URL, so nothing but registered TensorBoards can be reached. Jupyter's
credentials (login cookie, token and XSRF headers, `token` and `_xsrf` query arguments) never
reach TensorBoard, and the path is forwarded still percent-encoded, as the browser sent it.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from jupyter_server.base.handlers import JupyterHandler
from tornado import httpclient, web

from hops_jupyter.core import tensorboard
from hops_jupyter.core.experiment import records

# Headers that describe one hop (RFC 9110 §7.6.1) or carry Jupyter's credentials: not forwarded.
_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length",
}  # fmt: skip
_REQUEST_DROP = _HOP | {"cookie", "authorization", "x-xsrftoken", "x-xsrf-token"}
# Query arguments Jupyter authenticates with (`?token=` links, `_xsrf` form fields).
_QUERY_DROP = {"token", "_xsrf"}
# Characters a path may carry as they are; anything else is percent-encoded again.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CACHE_S = 5.0
_TOUCH_S = 5.0


def strip_credentials(query: str) -> str:
    """A query string without Jupyter's credentials; every other argument is kept byte for
    byte (same order, same encoding)."""
    kept = [
        part
        for part in query.split("&")
        if part and unquote_plus(part.split("=", 1)[0]) not in _QUERY_DROP
    ]
    return "&".join(kept)


def encoded_path(raw_path: str) -> str:
    """The path to send upstream, percent-encoded: tornado hands handlers a decoded path, in
    which `%3F`, `%23` or `%2F` would turn into a query, a fragment or a separator."""
    try:
        raw = raw_path.encode("latin-1")  # tornado decodes the request line as latin-1
    except UnicodeEncodeError:
        raw = raw_path.encode()
    return _BARE_PERCENT.sub("%25", quote(raw, safe=_PATH_SAFE))


def _known_experiment(experiment_id: str) -> None:
    """404 for an id that names no experiment of the project."""
    try:
        records.experiment_dir(experiment_id)
    except KeyError as err:
        raise web.HTTPError(404, str(err.args[0])) from None


def _scrub_url(url: str) -> str:
    """A URL (the Referer of a page opened with `?token=`) without Jupyter's credentials."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=strip_credentials(parts.query)))


class _Targets:
    """Registry lookups cached for a few seconds, so a page's many requests cost one lookup."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tensorboard.TensorBoardInfo, float]] = {}
        self._touched: dict[str, float] = {}

    def forget(self, experiment_id: str) -> None:
        self._seen.pop(experiment_id, None)

    def _ensure(self, experiment_id: str) -> tensorboard.TensorBoardInfo:
        info = tensorboard.find(experiment_id)
        if info is not None and tensorboard.healthy(info):
            return info
        _known_experiment(experiment_id)
        result = tensorboard.start(experiment_id)
        if result.info is None:
            raise web.HTTPError(
                502, f"TensorBoard for {experiment_id} {result.outcome}: {result.message}"
            )
        return result.info

    async def get(self, experiment_id: str) -> tensorboard.TensorBoardInfo:
        now = time.monotonic()
        seen = self._seen.get(experiment_id)
        if seen is None or now - seen[1] > _CACHE_S:
            info = await asyncio.to_thread(self._ensure, experiment_id)
            self._seen[experiment_id] = (info, now)
        else:
            info = seen[0]
        if now - self._touched.get(experiment_id, 0.0) > _TOUCH_S:
            self._touched[experiment_id] = now
            tensorboard.touch(experiment_id)
        return info


_targets = _Targets()


class TensorBoardProxyHandler(JupyterHandler):
    """Authenticated pass-through to one experiment's TensorBoard."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    def check_xsrf_cookie(self) -> None:
        """TensorBoard's frontend cannot send Jupyter's `_xsrf` token with its POSTs (hparams,
        multi-run scalars). For this route only, a cookie-authenticated write must instead come
        from this very origin (Origin, else Referer): a cross-site page cannot forge that."""
        if not hasattr(self, "_jupyter_current_user") or self.token_authenticated:
            return
        source = self.request.headers.get("Origin") or self.request.headers.get("Referer")
        if not source or urlsplit(source).netloc != self.request.host:
            raise web.HTTPError(403, f"Blocking cross-origin TensorBoard request from {source!r}")

    def _upstream_path(self, decoded: str) -> str:
        """The request's path below `.../tensorboard/<id>`, as the client encoded it."""
        prefix = f"{self.base_url.rstrip('/')}/hops/tensorboard/"
        raw = self.request.path
        if raw.startswith(prefix):
            _, slash, tail = raw[len(prefix) :].partition("/")
            return encoded_path(slash + tail)
        return encoded_path(quote(decoded))  # not reached with the routes of app.py

    async def _proxy(self, experiment_id: str, path: str | None) -> None:
        if not records.is_experiment_id(experiment_id):
            raise web.HTTPError(404, f"Unknown experiment id {experiment_id!r}")
        if path is None:  # `.../tensorboard/<id>`: TensorBoard's relative URLs need the slash
            await asyncio.to_thread(_known_experiment, experiment_id)
            query = f"?{self.request.query}" if self.request.query else ""
            self.redirect(f"{self.request.path}/{query}")
            return
        error: Exception | None = None
        for _ in (1, 2):
            info = await _targets.get(experiment_id)
            try:
                response = await self._fetch(info, path)
            except OSError as err:  # refused: tornado raises it whatever raise_error says
                error = err
            else:
                if response.code != 599:
                    self._relay(response, experiment_id)
                    return
                error = response.error
            # The process went away (stopped, or replaced by one on another port): look it up,
            # or start it, again.
            _targets.forget(experiment_id)
        raise web.HTTPError(502, f"TensorBoard for {experiment_id} did not answer: {error}")

    async def _fetch(self, info: tensorboard.TensorBoardInfo, path: str) -> httpclient.HTTPResponse:
        url = f"http://127.0.0.1:{info.port}{self._upstream_path(path)}"
        query = strip_credentials(self.request.query)
        if query:
            url += f"?{query}"
        headers = {
            k: v for k, v in self.request.headers.get_all() if k.lower() not in _REQUEST_DROP
        }
        for name in [k for k in headers if k.lower() == "referer"]:
            headers[name] = _scrub_url(headers[name])
        has_body = self.request.method in ("POST", "PUT", "PATCH")
        request = httpclient.HTTPRequest(
            url,
            method=self.request.method,
            headers=headers,
            body=self.request.body if has_body else None,
            follow_redirects=False,
            decompress_response=False,
            request_timeout=300,
            allow_nonstandard_methods=True,
        )
        return await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)

    def _relay(self, response: httpclient.HTTPResponse, experiment_id: str) -> None:
        self.set_status(response.code, response.reason)
        self._headers.clear()
        prefix = f"{self.base_url.rstrip('/')}/hops/tensorboard/{quote(experiment_id, safe='')}"
        for name, value in response.headers.get_all():
            if name.lower() in _HOP:
                continue
            if name.lower() == "location" and value.startswith("/"):
                value = f"{prefix}{value}"
            self.add_header(name, value)
        if response.body and self.request.method != "HEAD":
            self.write(response.body)
        self.finish()

    @web.authenticated
    async def get(self, experiment_id: str, path: str | None = None) -> None:
        await self._proxy(experiment_id, path)

    head = post = put = delete = patch = options = get

    def compute_etag(self) -> Any:
        return None  # TensorBoard sets its own caching headers
