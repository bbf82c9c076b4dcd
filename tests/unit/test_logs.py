"""Logs: JSON or human lines, one access line per request, tracebacks only in the log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner

from tests.unit.fakes import serve_from
from wallet.container import Container
from wallet.entrypoints.http.app import create_app
from wallet.entrypoints.logs import (
    ACCESS_LOGGER,
    BufferedStreamHandler,
    HumanFormatter,
    JsonFormatter,
    RequestLogger,
    configure_logging,
    json_sink,
    utc_timestamp,
)

Client = TestClient[web.Request, web.Application]
WALLET_ROUTE = "/api/v1/wallets/{wallet_id}"


def record_with(extra: dict[str, Any], error: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(error), error, error.__traceback__) if error else None
    record = logging.LogRecord(
        "wallet.test", logging.WARNING, __file__, 1, "hello %s", ("you",), exc_info
    )
    record.__dict__.update(extra)
    return record


def raised() -> RuntimeError:
    try:
        raise RuntimeError("the bug")
    except RuntimeError as error:
        return error


def test_a_json_line_holds_the_record_its_extras_and_its_traceback() -> None:
    line = JsonFormatter().format(record_with({"request_id": "r-1", "status": 500}, raised()))
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "hello you"
    assert (entry["level"], entry["logger"]) == ("WARNING", "wallet.test")
    assert (entry["request_id"], entry["status"]) == ("r-1", 500)
    assert entry["time"].endswith("+00:00")
    assert "RuntimeError: the bug" in entry["traceback"]


def test_a_json_line_without_an_error_has_no_traceback() -> None:
    entry = json.loads(JsonFormatter().format(record_with({})))
    assert "traceback" not in entry
    assert "request_id" not in entry


def test_a_json_line_writes_values_json_cannot_hold_as_text() -> None:
    entry = json.loads(JsonFormatter().format(record_with({"where": object})))
    assert entry["where"] == str(object)


def test_a_human_line_ends_with_its_extras() -> None:
    line = HumanFormatter().format(record_with({"request_id": "r-2", "status": 404}))
    first = line.splitlines()[0]
    assert first.endswith("hello you request_id=r-2 status=404")
    assert "WARNING wallet.test" in first


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(("log_format", "is_json"), [("json", True), ("human", False)])
def test_configure_logging_writes_the_chosen_format_to_stderr(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch, log_format: str, is_json: bool
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    configure_logging("WARNING", log_format)
    logging.getLogger("wallet.test").info("not at this level")
    logging.getLogger("wallet.test").warning("shown")
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1
    if is_json:
        assert json.loads(lines[0])["message"] == "shown"
    else:
        assert lines[0].endswith(": shown")


@pytest.mark.parametrize(("tty", "is_json"), [(False, True), (True, False)])
def test_auto_is_json_unless_stderr_is_a_terminal(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch, tty: bool, is_json: bool
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(stderr, "isatty", lambda: tty)
    monkeypatch.setattr(sys, "stderr", stderr)
    configure_logging("INFO", "auto")
    logging.getLogger("wallet.test").info("which")
    logging.getLogger().handlers[0].flush()
    line = stderr.getvalue().strip()
    assert line.startswith("{") is is_json


@pytest.fixture
def buffered_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = BufferedStreamHandler(stream, interval=0.05)
    logger = logging.getLogger("wallet.test.buffered")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    handler.close()


def test_info_lines_are_written_in_bulk_by_the_loop_and_warnings_at_once(
    buffered_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = buffered_logger

    async def log_then_wait() -> list[str]:
        seen = []
        logger.warning("first")
        seen.append(stream.getvalue())
        logger.info("second")
        logger.info("third")
        seen.append(stream.getvalue())
        await asyncio.sleep(0.2)  # the loop's timer writes them within the interval
        seen.append(stream.getvalue())
        return seen

    assert asyncio.run(log_then_wait()) == [
        "first\n",
        "first\n",
        "first\nsecond\nthird\n",
    ]


def test_a_line_logged_where_no_loop_runs_is_written_at_once(
    buffered_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = buffered_logger
    logger.info("no loop here")
    assert stream.getvalue() == "no loop here\n"


def test_lines_logged_on_a_new_loop_are_written_although_the_old_loop_closed(
    buffered_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = buffered_logger

    async def log(message: str, wait: float) -> None:
        logger.info(message)
        await asyncio.sleep(wait)

    asyncio.run(log("on a loop that closes before its flush is due", 0))
    assert stream.getvalue() == ""
    asyncio.run(log("on the next loop", 0.2))
    assert stream.getvalue().splitlines() == [
        "on a loop that closes before its flush is due",
        "on the next loop",
    ]


def test_a_full_buffer_and_closing_write_everything() -> None:
    stream = io.StringIO()
    handler = BufferedStreamHandler(stream, interval=3600, capacity=3)
    logger = logging.getLogger("wallet.test.capacity")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    written = []

    async def log_four() -> None:  # on a loop, so that lines wait for its timer
        for n in range(4):
            logger.info("line %d", n)
            written.append(stream.getvalue())

    try:
        asyncio.run(log_four())
        assert written == ["", "", "line 0\nline 1\nline 2\n", "line 0\nline 1\nline 2\n"]
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert stream.getvalue().endswith("line 3\n")


# -- the access line, from the real app ---------------------------------------------------


class AccessLoggingServer(TestServer):
    """The test server with the access logger that ``serve`` installs."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        kwargs.update(access_log=logging.getLogger(ACCESS_LOGGER), access_log_class=RequestLogger)
        return await super()._make_runner(**kwargs)


async def access_client(aiohttp_client: Any, container: Container) -> Client:
    client: Client = await aiohttp_client(AccessLoggingServer(create_app(container)))
    return client


async def access_records(caplog: pytest.LogCaptureFixture, count: int) -> list[logging.LogRecord]:
    """The access lines, once ``count`` are there: aiohttp writes them after the response."""
    for _ in range(200):
        records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
        if len(records) >= count:
            return records
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} access lines, got {len(records)}")


async def test_each_request_logs_one_line_with_its_route_template_status_and_id(
    aiohttp_client: Any, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    client = await access_client(aiohttp_client, container)
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    created = await client.post("/api/v1/wallets", headers={"X-Request-ID": "create-1"})
    assert created.status == 201
    missing = await client.get(f"/api/v1/wallets/{uuid.uuid4()}")

    by_id = {r.request_id: r for r in await access_records(caplog, 2)}  # type: ignore[attr-defined]
    first, second = by_id["create-1"], by_id[missing.headers["X-Request-ID"]]
    assert (first.request_id, first.route, first.status) == (  # type: ignore[attr-defined]
        "create-1",
        "/api/v1/wallets",
        201,
    )
    assert first.method == "POST"  # type: ignore[attr-defined]
    assert second.request_id == missing.headers["X-Request-ID"]  # type: ignore[attr-defined]
    assert (second.route, second.status) == (WALLET_ROUTE, 404)  # type: ignore[attr-defined]
    assert second.path.startswith("/api/v1/wallets/")  # type: ignore[attr-defined]
    assert second.duration_ms >= 0  # type: ignore[attr-defined]
    assert {first.levelno, second.levelno} == {logging.INFO}


class BrokenRepository:
    def __getattr__(self, name: str) -> Any:
        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the bug in the repository")

        return broken


async def test_a_bug_logs_its_traceback_and_an_error_access_line_under_one_request_id(
    aiohttp_client: Any, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    serve_from(container, BrokenRepository(), batched=False)
    client = await access_client(aiohttp_client, container)
    caplog.set_level(logging.INFO)
    response = await client.post("/api/v1/wallets", headers={"X-Request-ID": "bug-1"})
    body = await response.text()

    (access,) = await access_records(caplog, 1)
    traced = [r for r in caplog.records if r.exc_info]
    assert response.status == 500
    assert "the bug" not in body
    assert (access.levelno, access.status) == (logging.ERROR, 500)  # type: ignore[attr-defined]
    assert [r.request_id for r in traced] == ["bug-1"]  # type: ignore[attr-defined]
    assert access.request_id == "bug-1"  # type: ignore[attr-defined]


async def test_unknown_paths_log_as_unmatched_not_as_their_raw_path(
    aiohttp_client: Any, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    client = await access_client(aiohttp_client, container)
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    await client.get("/no/such/page/12345")
    (record,) = await access_records(caplog, 1)
    assert (record.route, record.status) == ("unmatched", 404)  # type: ignore[attr-defined]


async def test_above_info_requests_are_not_logged_but_server_errors_are(
    aiohttp_client: Any, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    serve_from(container, BrokenRepository(), batched=False)
    client = await access_client(aiohttp_client, container)
    caplog.set_level(logging.WARNING, logger=ACCESS_LOGGER)
    assert (await client.get("/health/live")).status == 200
    assert (await client.post("/api/v1/wallets")).status == 500
    (record,) = await access_records(caplog, 1)
    assert record.status == 500  # type: ignore[attr-defined]


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_the_direct_access_line_is_the_line_a_log_record_would_give(
    aiohttp_client: Any,
    container: Container,
    restore_logging: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    configure_logging("INFO", "json")
    (handler,) = logging.getLogger().handlers
    access = logging.getLogger(ACCESS_LOGGER)
    assert json_sink(access, logging.INFO) is handler
    client = await access_client(aiohttp_client, container)
    path = f"/api/v1/wallets/{uuid.uuid4()}"
    await client.get(path, headers={"X-Request-ID": "direct"})
    kept = Kept()
    access.addHandler(kept)  # a second handler: now a LogRecord is made
    assert json_sink(access, logging.INFO) is None
    try:
        await client.get(path, headers={"X-Request-ID": "record"})
        for _ in range(200):
            if kept.records:
                break
            await asyncio.sleep(0.01)
    finally:
        access.removeHandler(kept)
    handler.flush()
    lines = [json.loads(line) for line in stderr.getvalue().splitlines()]
    direct = next(line for line in lines if line.get("request_id") == "direct")
    made = json.loads(JsonFormatter().format(kept.records[0]))
    assert made["request_id"] == "record"
    varying = {"time", "request_id", "duration_ms"}
    assert {k: v for k, v in direct.items() if k not in varying} == {
        k: v for k, v in made.items() if k not in varying
    }
    assert list(direct) == list(made)
    assert (direct["message"], direct["status"], direct["route"]) == (
        f"GET {path} 404",
        404,
        WALLET_ROUTE,
    )
    assert abs(datetime.fromisoformat(direct["time"]) - datetime.now(UTC)).total_seconds() < 60


def test_no_direct_line_past_a_filter_a_second_handler_or_a_human_format(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    access = logging.getLogger(ACCESS_LOGGER)
    configure_logging("INFO", "human")
    assert json_sink(access, logging.INFO) is None
    configure_logging("INFO", "json")
    assert json_sink(access, logging.INFO) is not None
    assert json_sink(access, logging.ERROR) is None  # errors are written at once
    access.addFilter(lambda record: True)
    try:
        assert json_sink(access, logging.INFO) is None
    finally:
        access.filters.clear()
    access.propagate = False
    try:
        assert json_sink(access, logging.INFO) is None
    finally:
        access.propagate = True


@pytest.mark.parametrize(
    "created", [0.0, 1700000000.001, 1700000000.0005, 1700000000.9999996, 1764272355.123456]
)
def test_timestamps_read_as_datetime_writes_them(created: float) -> None:
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert utc_timestamp(created) == expected
