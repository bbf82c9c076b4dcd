"""Open-loop fixed-rate load: DEPOSIT 1 on one fresh wallet at exactly --rate requests/s.

Request i is due at ``start + i / rate`` whatever happened to the earlier ones (open loop),
and its latency is measured from that scheduled time, not from when it was actually sent:
a server (or client) stall shows up as latency of every request it delayed, with no
coordinated omission. When every request has finished, the wallet's balance must have
grown by exactly the number of acknowledged (2xx) deposits.

    python perf/fixed_rate.py http://127.0.0.1:5000 --rate 1000 --duration 10

Prints one JSON line (also appended to --json FILE): the achieved rate (2xx answers per
second from the first scheduled send to the last answer), p50/p90/p99/max latency
from the scheduled send time, status counts, errors, how late the generator itself fired
(``send_lag_max_ms``: a large value means this client, not the server, fell behind) and the
balance check. Exit status 1 when any request failed or the balance check fails.
Needs aiohttp (run it with the service's venv).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import socket
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import uvloop

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
DEPOSIT_BODY = b'{"operationType":"DEPOSIT","amount":1}'


@dataclass
class Tally:
    """What came back: latency (ms, from the scheduled time) of every response, by status."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    send_lag_max_ms: float = 0.0
    last_done: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def non_2xx(self) -> int:
        return sum(self.statuses.values()) - self.ok


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when it is empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def create_wallet(session: aiohttp.ClientSession, base: str) -> str:
    async with session.post(f"{base}/api/v1/wallets") as response:
        text = await response.text()
    match = UUID_RE.search(text)
    if response.status // 100 != 2 or not match:
        raise RuntimeError(f"create wallet: HTTP {response.status} {text[:200]}")
    return match.group(0)


async def read_balance(session: aiohttp.ClientSession, base: str, wallet_id: str) -> Decimal:
    async with session.get(f"{base}/api/v1/wallets/{wallet_id}") as response:
        doc = await response.json(content_type=None)
    if response.status != 200 or "balance" not in doc:
        raise RuntimeError(f"read balance: HTTP {response.status} {doc!r}")
    return Decimal(str(doc["balance"]))


async def settled_balance(session: aiohttp.ClientSession, base: str, wallet_id: str) -> Decimal:
    """Read until two consecutive reads agree (at most ~10 s)."""
    previous = await read_balance(session, base, wallet_id)
    for _ in range(50):
        await asyncio.sleep(0.2)
        current = await read_balance(session, base, wallet_id)
        if current == previous:
            return current
        previous = current
    return previous


class RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection answering one request at a time.

    A load generator sharing the machine with the server must cost little per request,
    or its own CPU shows up as the server's latency: this parses just the status line
    and Content-Length, a fraction of a full client's work.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionResetError("server closed the connection"))

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.answer

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.answer is None:
            return
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        length = next(
            (int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:")), 0
        )
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        if not self.answer.done():
            self.answer.set_result(int(head[0].split(" ", 2)[1]))


class RawPool:
    """Idle connections reused first; a new one when all are busy (up to ``limit``)."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[RawConnection] = []
        self.opened = 0
        self.freed = asyncio.Condition()

    async def request(self, payload: bytes) -> int:
        connection = await self._take()
        try:
            status = await connection.send(payload)
        except BaseException:
            self._drop(connection)
            raise
        self.idle.append(connection)
        async with self.freed:
            self.freed.notify()
        return status

    async def _take(self) -> RawConnection:
        while True:
            while self.idle:
                connection = self.idle.pop()
                if not connection.closed:
                    return connection
                self.opened -= 1
            if self.opened < self.limit:
                self.opened += 1
                try:
                    loop = asyncio.get_running_loop()
                    _, connection = await loop.create_connection(
                        RawConnection, self.host, self.port
                    )
                except BaseException:
                    self.opened -= 1
                    raise
                return connection
            async with self.freed:
                await self.freed.wait()

    def _drop(self, connection: RawConnection) -> None:
        self.opened -= 1
        if connection.transport is not None:
            connection.transport.close()

    def close(self) -> None:
        for connection in self.idle:
            if connection.transport is not None:
                connection.transport.close()


def deposit_request(url: str) -> bytes:
    parts = urlsplit(url)
    return (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(DEPOSIT_BODY)}\r\n\r\n"
    ).encode() + DEPOSIT_BODY


async def deposit(
    pool: RawPool, payload: bytes, scheduled: float, allowed_s: float, tally: Tally
) -> None:
    """One DEPOSIT 1; its latency counts from `scheduled`, the time it was due."""
    try:
        async with asyncio.timeout(allowed_s):
            status = await pool.request(payload)
    except Exception as error:  # counted by kind, whatever it is
        name = type(error).__name__
        tally.errors[name] = tally.errors.get(name, 0) + 1
        return
    done = time.perf_counter()
    tally.statuses[status] = tally.statuses.get(status, 0) + 1
    tally.latencies_ms.append((done - scheduled) * 1000)
    tally.last_done = max(tally.last_done, done)


async def offer_load(url: str, args: argparse.Namespace, tally: Tally) -> tuple[int, float]:
    """Fire request i at start + i/rate for the duration; wait for all; (sent, start)."""
    parts = urlsplit(url)
    pool = RawPool(parts.hostname or "127.0.0.1", parts.port or 80, args.max_connections)
    payload = deposit_request(url)
    rate = args.rate
    total = int(rate * args.duration)
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lag_ms = (time.perf_counter() - due) * 1000
        tally.send_lag_max_ms = max(tally.send_lag_max_ms, lag_ms)
        task = asyncio.create_task(deposit(pool, payload, due, args.timeout, tally))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
    pool.close()
    return total, start


def summarize(
    args: argparse.Namespace, tally: Tally, sent: int, start: float, delta: Decimal
) -> dict[str, Any]:
    latencies = sorted(tally.latencies_ms)
    elapsed = max(tally.last_done - start, args.duration)
    acked = tally.ok
    errors = sum(tally.errors.values())
    return {
        "label": args.label,
        "scenario": "fixed_rate",
        "target_rps": args.rate,
        "duration_s": args.duration,
        "sent": sent,
        "responses": len(latencies),
        "achieved_rps": round(acked / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 3),
        "p90_ms": round(percentile(latencies, 90), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
        "max_ms": round(latencies[-1], 3) if latencies else 0.0,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "non_2xx": tally.non_2xx,
        "errors": errors,
        "error_types": tally.errors,
        "send_lag_max_ms": round(tally.send_lag_max_ms, 3),
        "balance_delta": str(delta),
        "acked_deposits": acked,
        "lost_updates": max(0, acked - int(delta)),
        "unacked_applied": max(0, int(delta) - acked),
        "balance_ok": delta == acked,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = args.url.rstrip("/")
    connector = aiohttp.TCPConnector(limit=args.max_connections)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        wallet_id = await create_wallet(session, base)
        before = await read_balance(session, base, wallet_id)
        url = f"{base}/api/v1/wallets/{wallet_id}/operation"
        tally = Tally()
        sent, start = await offer_load(url, args, tally)
        after = await settled_balance(session, base, wallet_id)
    return summarize(args, tally, sent, start, after - before)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", help="base URL, e.g. http://127.0.0.1:5000")
    parser.add_argument("--rate", type=float, default=1000, help="requests/s offered")
    parser.add_argument("--duration", type=float, default=10, help="seconds of load")
    parser.add_argument("--timeout", type=float, default=10, help="seconds per request")
    parser.add_argument(
        "--max-connections", type=int, default=256, help="client connection pool size"
    )
    parser.add_argument("--label", default="", help="name of the system under test")
    parser.add_argument("--json", help="append the JSON line to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.label = args.label or args.url
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run(args))
    line = json.dumps(result)
    print(line, flush=True)
    if args.json:
        with open(args.json, "a") as f:
            f.write(line + "\n")
    failed = result["non_2xx"] or result["errors"] or not result["balance_ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
