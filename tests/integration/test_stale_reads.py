"""Counting stale reads under load while the cache is slowed, restarted and wiped.

Writers only deposit, so a wallet's balance only grows: a read that starts after a
write was acknowledged and shows less than that write's balance is stale. Two
workers share the private Redis, so a write and the next read of it often meet in
different processes.
"""

from __future__ import annotations

import asyncio
import bisect
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as redis

from tests.integration.servers import PrivateRedis, ServiceProcess

pytestmark = pytest.mark.faults

WALLETS = 4
WRITERS = 12
READERS = 12
RECOVERY = 15.0  # seconds the cache may take to serve again after a phase
SLOW_FOR = "0.3"  # seconds each DEBUG SLEEP holds Redis, six times the command timeout


@dataclass
class Run:
    """What the clients saw: each acknowledged balance and each read, with times."""

    acks: dict[str, list[tuple[float, Decimal]]] = field(default_factory=lambda: defaultdict(list))
    reads: list[tuple[str, float, Decimal]] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    def stale(self) -> list[tuple[str, Decimal, Decimal, float]]:
        """Reads that began after an acknowledged write and show less than it, with the
        time the read began."""
        found = []
        newest = {
            wallet: _running_max(sorted(acks, key=lambda ack: ack[0]))
            for wallet, acks in self.acks.items()
        }
        for wallet, started, read in self.reads:
            times, balances = newest.get(wallet, ([], []))
            acked_before = bisect.bisect_left(times, started)
            if acked_before and read < balances[acked_before - 1]:
                found.append((wallet, balances[acked_before - 1], read, started))
        return found


def _running_max(acks: list[tuple[float, Decimal]]) -> tuple[list[float], list[Decimal]]:
    times, balances, highest = [], [], Decimal(0)
    for answered, balance in acks:
        highest = max(highest, balance)
        times.append(answered)
        balances.append(highest)
    return times, balances


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


async def cache_counts(session: aiohttp.ClientSession, url: str) -> Counter[str]:
    """Cache hits and errors so far, summed over the workers."""
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    counts: Counter[str] = Counter()
    for name, value in re.findall(
        r'^wallet_cache_(lookups_total\{result="hit"\}|errors_total) ([0-9.e+]+)$', text, re.M
    ):
        counts["hits" if name.startswith("lookups") else "errors"] += int(float(value))
    return counts


@pytest.mark.parametrize("persistent", [False, True], ids=["volatile", "persistent"])
async def test_no_stale_read_while_redis_is_slowed_restarted_and_flushed(
    migrated_url: str, session: aiohttp.ClientSession, tmp_path: Path, persistent: bool
) -> None:
    (tmp_path / "redis").mkdir()
    cache = PrivateRedis(tmp_path / "redis", persistent=persistent)
    cache.start()
    service = ServiceProcess(
        {
            "WALLET_DATABASE_URL": migrated_url,
            "WALLET_REDIS_URL": cache.url,
            "WALLET_WORKERS": "2",
            "WALLET_LOG_REQUESTS": "false",
        },
        tmp_path / "service.log",
    )
    service.start()
    run = Run()
    stop = asyncio.Event()
    url = service.url

    async def writer(wallets: list[str]) -> None:
        while not stop.is_set():
            wallet_id = random.choice(wallets)
            body = {"operationType": "DEPOSIT", "amount": f"{random.randint(1, 99)}.00"}
            try:
                async with session.post(
                    f"{url}/api/v1/wallets/{wallet_id}/operation", json=body
                ) as response:
                    run.statuses[f"deposit {response.status}"] += 1
                    if response.status == 200:
                        balance = Decimal((await response.json())["balance"])
                        run.acks[wallet_id].append((time.monotonic(), balance))
            except aiohttp.ClientError as error:
                run.statuses[f"deposit {type(error).__name__}"] += 1

    async def reader(wallets: list[str]) -> None:
        while not stop.is_set():
            wallet_id = random.choice(wallets)
            started = time.monotonic()
            try:
                async with session.get(f"{url}/api/v1/wallets/{wallet_id}") as response:
                    run.statuses[f"read {response.status}"] += 1
                    if response.status == 200:
                        balance = Decimal((await response.json())["balance"])
                        run.reads.append((wallet_id, started, balance))
            except aiohttp.ClientError as error:
                run.statuses[f"read {type(error).__name__}"] += 1

    async def redis_call(*command: str) -> None:
        client = redis.Redis.from_url(cache.url, socket_timeout=5)
        try:
            await client.execute_command(*command)
        finally:
            await client.aclose()

    async def phase(name: str, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` under load, then let the load run on until the cache serves again."""
        before = await cache_counts(session, url)
        began[name] = time.monotonic()
        await action()
        done = await cache_counts(session, url)
        deadline = time.monotonic() + RECOVERY
        after = done
        while after["hits"] <= done["hits"] + 50 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            after = await cache_counts(session, url)
        phases[name] = (before, done, after)

    async def restart() -> None:
        await asyncio.to_thread(cache.stop)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(cache.start)

    async def slow_down() -> None:
        for _ in range(4):
            await redis_call("DEBUG", "SLEEP", SLOW_FOR)
            await asyncio.sleep(0.5)

    phases: dict[str, tuple[Counter[str], Counter[str], Counter[str]]] = {}  # before, done, after
    began: dict[str, float] = {}
    try:
        wallets = []
        for _ in range(WALLETS):
            async with session.post(f"{url}/api/v1/wallets") as response:
                wallets.append((await response.json())["id"])
        clients = [asyncio.create_task(writer(wallets)) for _ in range(WRITERS)]
        clients += [asyncio.create_task(reader(wallets)) for _ in range(READERS)]
        await phase("warm", lambda: asyncio.sleep(1.0))
        await phase("slowed", slow_down)
        await phase("restarted", restart)
        await phase("flushed", lambda: redis_call("FLUSHALL"))
        stop.set()
        await asyncio.gather(*clients)
    finally:
        stop.set()
        service.stop()
        cache.stop()

    stale = run.stale()
    print(f"\nstale reads: {len(stale)} of {len(run.reads)}; {dict(run.statuses)}")
    print({name: [dict(counts) for counts in counted] for name, counted in phases.items()})
    seen = [
        (wallet, acked, read, _during(began, started)) for wallet, acked, read, started in stale
    ]
    assert seen == [], f"{len(seen)} stale reads (wallet, acknowledged, read, when): {seen[:5]}"
    for name, (before, done, after) in phases.items():
        assert after["hits"] > done["hits"] + 50, f"the cache did not serve again after {name}"
        if name in ("slowed", "restarted"):
            assert done["errors"] > before["errors"], f"the cache never failed when {name}"
    assert run.statuses["deposit 200"] > 200, run.statuses
    assert len(run.reads) > 1000, run.statuses
    assert set(run.statuses) <= {"deposit 200", "read 200"}, run.statuses


def _during(began: dict[str, float], at: float) -> str:
    """Which phase ``at`` fell in, and how far into it."""
    name, start = max(
        ((name, start) for name, start in began.items() if start <= at),
        key=lambda phase: phase[1],
        default=("start", at),
    )
    return f"{name} +{at - start:.2f} s"
