"""The HTTP edge: what clients send around and beneath the JSON, over raw sockets.

Most tests run the app as ``serve`` and gunicorn run it (``app_runner``), in this
process, on a free port: clients that leave mid-body, transfer and content codings,
and the requests aiohttp refuses before the app sees them.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import inspect
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler

from tests.unit.test_metrics import sample
from tests.wire import DEPOSIT, REFUSED, Answer, chunked, operation_path, parse_answer
from wallet.container import Container
from wallet.entrypoints.http.app import create_app
from wallet.entrypoints.logs import ACCESS_LOGGER
from wallet.entrypoints.serving import app_runner

OPERATION_ROUTE = "/api/v1/wallets/{wallet_id}/operation"


@dataclass
class Served:
    port: int
    session: aiohttp.ClientSession
    arrived: asyncio.Queue[str]  # the path of each request as it reaches the handlers

    async def exchange(self, data: bytes) -> Answer:
        """Send raw bytes; the answer, read until the server closes the connection."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(data)
            await writer.drain()
            return parse_answer(await asyncio.wait_for(reader.read(), 30))
        finally:
            writer.close()

    async def new_wallet(self, balance: str = "10.00") -> str:
        async with self.session.post("/api/v1/wallets") as created:
            wallet: str = (await created.json())["id"]
        deposit = {"operationType": "DEPOSIT", "amount": balance}
        async with self.session.post(operation_path(wallet), json=deposit) as funded:
            assert funded.status == 200
        return wallet

    async def balance(self, wallet: str) -> str:
        async with self.session.get(f"/api/v1/wallets/{wallet}") as response:
            balance: str = (await response.json())["balance"]
            return balance

    async def metrics(self) -> str:
        async with self.session.get("/metrics") as response:
            return await response.text()


def noting_arrivals(app: web.Application) -> asyncio.Queue[str]:
    """A queue that gets each request's path once the handlers have it (and are reading)."""
    arrived: asyncio.Queue[str] = asyncio.Queue()

    @web.middleware
    async def note(request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived.put_nowait(request.path)
        return await handler(request)

    app.middlewares.append(note)
    return arrived


@pytest.fixture
async def served(container: Container) -> AsyncIterator[Served]:
    """The app as ``serve`` runs it, on a free port of this process."""
    app = create_app(container)
    arrived = noting_arrivals(app)
    runner = app_runner(app, container.settings())
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            yield Served(port, session, arrived)
    finally:
        await runner.cleanup()
        gc.unfreeze()  # app_runner freezes what start-up made; other tests expect no freeze


async def access_lines(
    caplog: pytest.LogCaptureFixture, wanted: Callable[[logging.LogRecord], bool]
) -> list[logging.LogRecord]:
    """The access lines ``wanted`` picks, once there is one: aiohttp logs after answering."""
    for _ in range(500):
        lines = [r for r in caplog.records if r.name == ACCESS_LOGGER and wanted(r)]
        if lines:
            return lines
        await asyncio.sleep(0.01)
    raise AssertionError("no such access line")


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    loud = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


# -- a client that leaves mid-body ---------------------------------------------------------


async def leave_mid_body(port: int, arrived: asyncio.Queue[str], path: str) -> None:
    """Send the headers and half the body, wait until the handler reads it, and leave."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: wallet\r\nContent-Type: application/json\r\n"
    writer.write(head.encode() + b"Content-Length: %d\r\n\r\n" % len(DEPOSIT))
    writer.write(DEPOSIT[: len(DEPOSIT) // 2])
    await writer.drain()
    assert await asyncio.wait_for(arrived.get(), 30) == path
    writer.close()
    await writer.wait_closed()


async def test_a_client_that_leaves_mid_body_is_logged_and_counted_as_499(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    wallet = await served.new_wallet()
    before = await served.metrics()
    caplog.set_level(logging.INFO)
    caplog.clear()
    for _ in range(served.arrived.qsize()):
        served.arrived.get_nowait()

    await leave_mid_body(served.port, served.arrived, operation_path(wallet))

    (line,) = await access_lines(caplog, lambda r: r.path == operation_path(wallet))  # type: ignore[attr-defined]
    assert (line.status, line.levelno) == (499, logging.INFO)  # type: ignore[attr-defined]
    no_errors_logged(caplog)
    after = await served.metrics()

    def grew(status: str) -> float:
        labels = {"route": OPERATION_ROUTE, "method": "POST", "status": status}
        return sample(after, "wallet_http_requests_total", **labels) - sample(
            before, "wallet_http_requests_total", **labels
        )

    assert (grew("499"), grew("500")) == (1, 0)
    assert await served.balance(wallet) == "10.00"


async def test_a_handler_cancelled_by_a_leaving_client_is_counted_as_499(
    aiohttp_client: Callable[
        [web.Application], Awaitable[TestClient[web.Request, web.Application]]
    ],
    container: Container,
) -> None:
    """aiohttp's test server cancels the handler of a client that leaves (``serve`` does not)."""
    app = create_app(container)
    arrived = noting_arrivals(app)
    client = await aiohttp_client(app)
    wallet = (await (await client.post("/api/v1/wallets")).json())["id"]
    await arrived.get()
    before = await (await client.get("/metrics")).text()
    await arrived.get()

    assert client.port is not None
    await leave_mid_body(client.port, arrived, operation_path(wallet))

    labels = {"route": OPERATION_ROUTE, "method": "POST"}
    for _ in range(500):  # the count comes once the cancelled handler has unwound
        after = await (await client.get("/metrics")).text()
        counted = sample(after, "wallet_http_requests_total", **labels, status="499")
        counted -= sample(before, "wallet_http_requests_total", **labels, status="499")
        if counted:
            break
        await asyncio.sleep(0.01)
    assert counted == 1
    assert sample(after, "wallet_http_requests_total", **labels, status="500") == sample(
        before, "wallet_http_requests_total", **labels, status="500"
    )


# -- content and transfer codings ----------------------------------------------------------


def deflated(data: bytes, wbits: int) -> bytes:
    encoder = zlib.compressobj(wbits=wbits)
    return encoder.compress(data) + encoder.flush()


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", gzip.compress(DEPOSIT)),
        ("x-gzip", gzip.compress(DEPOSIT)),
        ("deflate", deflated(DEPOSIT, zlib.MAX_WBITS)),
        ("deflate", deflated(DEPOSIT, -zlib.MAX_WBITS)),  # raw deflate, as some clients send
        ("GZIP", gzip.compress(DEPOSIT)),
        ("identity", DEPOSIT),
    ],
)
async def test_a_body_in_an_accepted_content_coding_is_decoded_and_applied(
    served: Served, coding: str, body: bytes
) -> None:
    wallet = await served.new_wallet()
    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    async with served.session.post(operation_path(wallet), data=body, headers=headers) as answer:
        assert answer.status == 200, await answer.text()
    assert await served.balance(wallet) == "11.00"


async def test_a_plain_chunked_body_is_applied(served: Served) -> None:
    wallet = await served.new_wallet()
    answer = await served.exchange(chunked(wallet, "chunked"))
    assert answer.status == 200, answer
    assert await served.balance(wallet) == "11.00"


@pytest.mark.parametrize(
    "transfer_coding", ["gzip, chunked", "deflate, chunked", "chunked, chunked"]
)
async def test_a_transfer_coding_the_server_does_not_decode_is_refused_and_moves_nothing(
    served: Served, transfer_coding: str
) -> None:
    wallet = await served.new_wallet()
    answer = await served.exchange(chunked(wallet, transfer_coding))
    assert answer.status == 400, answer
    problem = answer.problem()
    assert problem["code"] == "VALIDATION_ERROR"
    assert "Transfer-Encoding" in problem["detail"]
    assert await served.balance(wallet) == "10.00"


# -- requests aiohttp refuses before the app sees them -------------------------------------


@pytest.mark.parametrize("request_bytes", REFUSED.values(), ids=REFUSED.keys())
async def test_a_request_aiohttp_refuses_gets_a_problem_and_one_quiet_access_line(
    served: Served, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.clear()

    answer = await served.exchange(request_bytes)

    assert answer.status == 400, answer
    problem = answer.problem()
    assert problem["code"] == "VALIDATION_ERROR"
    assert "Traceback" not in problem["detail"]
    request_id = answer.headers["x-request-id"]
    (line,) = await access_lines(caplog, lambda r: r.request_id == request_id)  # type: ignore[attr-defined]
    assert (line.levelno, line.status) == (logging.INFO, 400)  # type: ignore[attr-defined]
    no_errors_logged(caplog)
    assert len([r for r in caplog.records if r.name == ACCESS_LOGGER]) == 1


async def test_the_service_still_answers_after_refusals(served: Served) -> None:
    for request_bytes in REFUSED.values():
        await served.exchange(request_bytes)
    async with served.session.get("/health/live") as answer:
        assert answer.status == 200


def test_the_aiohttp_internals_the_edge_overrides_keep_their_shape() -> None:
    """wallet.entrypoints.http.edge overrides these; a change in aiohttp must show here."""
    assert list(inspect.signature(RequestHandler.handle_error).parameters) == [
        "self",
        "request",
        "status",
        "exc",
        "message",
    ]
    assert list(inspect.signature(RequestHandler.finish_response).parameters) == [
        "self",
        "request",
        "resp",
        "start_time",
    ]
    assert inspect.iscoroutinefunction(web.AppRunner._make_server)
    source = inspect.getsource(web.Server.__call__)
    assert "RequestHandler(self, loop=self._loop, **self._kwargs)" in source
