"""``serve`` itself over raw sockets: clients that leave mid-body and malformed HTTP.

Each is answered as a problem (when there is anyone left to answer), logged as one
quiet access line, and moves no money; none is a server error in the log or metrics.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.integration.servers import ServiceProcess
from tests.unit.test_metrics import sample
from tests.wire import DEPOSIT, REFUSED, chunked, operation_path, parse_answer

ROUTE = "/api/v1/wallets/{wallet_id}/operation"
LEAVERS = 20


@pytest.fixture
def service(migrated_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {
        "WALLET_DATABASE_URL": migrated_url,
        "WALLET_REDIS_URL": "",
        "WALLET_WORKERS": "1",
        "WALLET_LOG_FORMAT": "json",
    }
    process = ServiceProcess(env, tmp_path / "service.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def session(service: ServiceProcess) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(service.url) as session:
        yield session


def exchange(port: int, data: bytes, leave_early: bool = False) -> bytes:
    """Send raw bytes; the answer read to the end, or nothing when leaving at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(data)
        if leave_early:
            return b""
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def log_lines(service: ServiceProcess) -> list[dict[str, Any]]:
    lines = service.log_path.read_bytes().splitlines()
    return [orjson.loads(line) for line in lines if line.startswith(b"{")]


async def access_lines(service: ServiceProcess, count: int, status: int) -> list[dict[str, Any]]:
    """The access lines with ``status``, once there are ``count`` (lines come in bulk)."""
    deadline = time.monotonic() + 30
    while True:
        found = [
            line
            for line in log_lines(service)
            if line["logger"] == "wallet.access" and line["status"] == status
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_leavers_and_malformed_http_are_quiet_problems_that_move_nothing(
    service: ServiceProcess, session: aiohttp.ClientSession
) -> None:
    async with session.post("/api/v1/wallets") as created:
        wallet = (await created.json())["id"]
    deposit = {"operationType": "DEPOSIT", "amount": "10.00"}
    async with session.post(operation_path(wallet), json=deposit) as funded:
        assert funded.status == 200
    async with session.get("/metrics") as scraped:
        before = await scraped.text()

    head = (
        f"POST {operation_path(wallet)} HTTP/1.1\r\nHost: wallet\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(DEPOSIT)}\r\n\r\n"
    ).encode()
    half = head + DEPOSIT[: len(DEPOSIT) // 2]
    loop = asyncio.get_running_loop()
    await asyncio.gather(
        *(loop.run_in_executor(None, exchange, service.port, half, True) for _ in range(LEAVERS))
    )
    malformed = [*REFUSED.values(), chunked(wallet, "gzip, chunked")]
    for request_bytes in malformed:
        answer = parse_answer(
            await loop.run_in_executor(None, exchange, service.port, request_bytes)
        )
        assert answer.status == 400, answer
        problem = answer.problem()
        assert problem["code"] == "VALIDATION_ERROR"

    assert len(await access_lines(service, LEAVERS, 499)) == LEAVERS
    assert len(await access_lines(service, len(malformed), 400)) == len(malformed)
    loud = [line for line in log_lines(service) if line["level"] not in ("DEBUG", "INFO")]
    assert loud == []
    assert [line for line in log_lines(service) if "traceback" in line] == []
    async with session.get("/metrics") as scraped:
        after = await scraped.text()
    for status, grown in (("499", LEAVERS), ("500", 0)):
        labels = {"route": ROUTE, "method": "POST", "status": status}
        grew = sample(after, "wallet_http_requests_total", **labels) - sample(
            before, "wallet_http_requests_total", **labels
        )
        assert grew == grown
    async with session.get(f"/api/v1/wallets/{wallet}") as read:
        assert (await read.json())["balance"] == "10.00"
