"""aiohttp's own answers, made the service's: problem+json, a request id, one access line.

aiohttp answers some requests before the app sees them: one its parser refuses (a bad
request line, header or chunk) and one whose ``Expect`` is not ``100-continue``. It
offers no public hook for those answers (aio-libs/aiohttp#3287), so its connection
handler is subclassed here, as narrowly as it allows: ``handle_error`` no longer logs a
refused request's traceback at ERROR (its access line records it), and
``finish_response`` turns any answer the app did not make into a problem document with
the headers every answer carries. tests/unit/test_http_edge.py fails if aiohttp
changes the methods this relies on.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from wallet.entrypoints.http.headers import stamp
from wallet.entrypoints.http.problems import refused
from wallet.entrypoints.http.request_keys import REQUEST_ID

log = logging.getLogger(__name__)

MAX_DETAIL = 200  # characters of aiohttp's reason kept in a refusal's detail


class EdgeRequestHandler(RequestHandler):
    """aiohttp's handler of one connection, answering refusals as the app answers errors."""

    __slots__ = ()  # as slotted as aiohttp's own: no __dict__ for each connection

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:  # a bug past the app's middleware: aiohttp logs its traceback
            return super().handle_error(request, status, exc, message)
        log.debug("refused a request from %s: %s", request.remote, message)
        lines = (message or "").strip().splitlines()  # the reason, then the bytes it is about
        reason = lines[0].rstrip(":") if lines else "malformed"
        return _problem(request, status, f"The request is not valid HTTP/1.1: {reason}")

    def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> Coroutine[Any, Any, tuple[web.StreamResponse, bool]]:
        """aiohttp's own coroutine, handed back to be awaited: no coroutine of ours
        in between on every answer."""
        if resp.status >= 400 and REQUEST_ID not in request:  # answered before the app
            resp = _problem(request, resp.status, _reason(resp))
        return super().finish_response(request, resp, start_time)


class EdgeServer(web.Server):
    """aiohttp's server, with an EdgeRequestHandler for each connection."""

    def __call__(self) -> RequestHandler:
        return EdgeRequestHandler(self, loop=self._loop, **self._kwargs)


class EdgeAppRunner(web.AppRunner):
    """The app's runner, serving through an EdgeServer."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = EdgeServer  # the server as aiohttp made it; only its handlers differ
        return server


def _reason(response: web.StreamResponse) -> str:
    if response.status == web.HTTPExpectationFailed.status_code:
        return "Expect: only 100-continue is supported"
    return response.reason


def _problem(request: web.BaseRequest, status: int, detail: str) -> web.Response:
    """The refusal as a problem document; the connection is closed after it."""
    request_id = uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    response = refused(status, detail[:MAX_DETAIL]).response(request_id)
    stamp(response, request_id)
    response.force_close()
    return response
