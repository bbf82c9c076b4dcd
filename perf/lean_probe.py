"""The leanest group-commit deposit service we could write: this design's ceiling here.

Not the product. No validation beyond reading the number, no cache, no idempotency, no
metrics, no log line, no middleware: aiohttp on uvloop, orjson, one asyncpg statement
per wallet and one commit per batch, on the service's own schema. It answers just
enough of the API for walletbench's ``hot`` scenario, balance check included, so the
gap between it and the bare handler is what group commit alone costs on this machine.

    export WALLET_DATABASE_URL=postgresql://postgres@127.0.0.1/wallet_probe
    createdb -h 127.0.0.1 -U postgres wallet_probe && .venv/bin/python -m wallet migrate
    .venv/bin/python perf/lean_probe.py --port 5110 --workers 2 --dsn "$WALLET_DATABASE_URL"
    .venv/bin/python perf/bare_app.py --port 5111 --workers 2
    python3 ../shared/bench/walletbench.py http://127.0.0.1:5110 hot -d 10   # and :5111
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import uvloop
from aiohttp import web
from bare_app import run_processes

APPLY = """
WITH moved AS (
    UPDATE wallets SET balance = balance + $2, version = version + $3,
                       updated_at = clock_timestamp()
     WHERE id = $1
    RETURNING balance - $2 AS start, updated_at
)
INSERT INTO operations
       (id, wallet_id, operation_type, amount, balance_after, currency, created_at)
SELECT o.id, $1, 'DEPOSIT', o.amount, moved.start + o.after, 'USD', moved.updated_at
  FROM moved, unnest($4::uuid[], $5::bigint[], $6::bigint[]) AS o(id, amount, after)
RETURNING balance_after
"""
Waiting = tuple[UUID, int, "asyncio.Future[int]"]


class Group:
    """Deposits queued while a batch commits go together into the next one."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._queue: list[Waiting] = []
        self._flusher: asyncio.Task[None] | None = None

    async def deposit(self, wallet_id: UUID, cents: int) -> int:
        balance: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((wallet_id, cents, balance))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await balance

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            by_wallet: dict[UUID, list[Waiting]] = {}
            for waiting in batch:
                by_wallet.setdefault(waiting[0], []).append(waiting)
            async with self._pool.acquire() as connection, connection.transaction():
                answers = [
                    (runs, await _apply(connection, wallet_id, runs))
                    for wallet_id, runs in by_wallet.items()
                ]
            for runs, balances in answers:
                for (_, _, balance), after in zip(runs, balances, strict=True):
                    balance.set_result(after)


POOL = web.AppKey("pool", asyncpg.Pool)
GROUP = web.AppKey("group", Group)


async def _apply(connection: Any, wallet_id: UUID, runs: list[Waiting]) -> list[int]:
    amounts = [cents for _, cents, _ in runs]
    offsets, total = [], 0
    for cents in amounts:
        total += cents
        offsets.append(total)
    ids = [UUID(bytes=os.urandom(16), version=4) for _ in runs]
    rows = await connection.fetch(APPLY, wallet_id, total, len(runs), ids, amounts, offsets)
    return [row[0] for row in rows]


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


async def deposit(request: web.Request) -> web.Response:
    cents = int(orjson.loads(await request.read())["amount"]) * 100
    wallet_id = UUID(request.match_info["wallet_id"])
    balance = await request.app[GROUP].deposit(wallet_id, cents)
    return web.json_response({"balance": _money(balance)}, dumps=_dumps)


async def create_wallet(request: web.Request) -> web.Response:
    wallet_id = UUID(bytes=os.urandom(16), version=4)
    await request.app[POOL].execute("INSERT INTO wallets (id) VALUES ($1)", wallet_id)
    body = {"id": str(wallet_id), "balance": "0.00"}
    return web.json_response(body, status=201, dumps=_dumps)


async def get_wallet(request: web.Request) -> web.Response:
    wallet_id = request.match_info["wallet_id"]
    query = "SELECT balance FROM wallets WHERE id = $1"
    balance = await request.app[POOL].fetchval(query, UUID(wallet_id))
    return web.json_response({"id": wallet_id, "balance": _money(balance)}, dumps=_dumps)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def serve(host: str, port: int, dsn: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    app = web.Application()
    app[POOL] = pool
    app[GROUP] = Group(pool)
    app.router.add_post("/api/v1/wallets/{wallet_id}/operation", deposit)
    app.router.add_post("/api/v1/wallets", create_wallet)
    app.router.add_get("/api/v1/wallets/{wallet_id}", get_wallet)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_port=True).start()
    await asyncio.Event().wait()


def worker(host: str, port: int, dsn: str) -> None:
    uvloop.run(serve(host, port, dsn))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5110)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1/wallet_probe")
    args = parser.parse_args()
    run_processes(worker, (args.host, args.port, args.dsn), args.workers, "probe-worker")


if __name__ == "__main__":
    main()
