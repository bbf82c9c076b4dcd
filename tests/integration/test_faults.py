"""Breaking real things under load: a crash, PostgreSQL or Redis down, a tiny pool, a stop.

Each test ends by auditing the database: nothing acknowledged is lost, nothing
partial exists. Run them alone with ``pytest -m faults``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.integration.conftest import AppFactory
from tests.integration.servers import PrivatePostgres, PrivateRedis, ServiceProcess
from wallet.adapters.postgres.audit import audit
from wallet.container import resolved
from wallet.entrypoints.http.keys import CONTAINER

pytestmark = pytest.mark.faults


@pytest.fixture
def service(migrated_url: str, redis_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {
        "WALLET_DATABASE_URL": migrated_url,
        "WALLET_REDIS_URL": redis_url,
        "WALLET_WORKERS": "2",
        "WALLET_SHUTDOWN_TIMEOUT": "5",
    }
    process = ServiceProcess(env, tmp_path / "service.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def new_wallets(session: aiohttp.ClientSession, url: str, count: int) -> list[str]:
    wallets = []
    for _ in range(count):
        async with session.post(f"{url}/api/v1/wallets") as response:
            assert response.status == 201
            wallets.append((await response.json())["id"])
    return wallets


async def deposit(session: aiohttp.ClientSession, url: str, wallet_id: str) -> Any:
    """The operation's JSON on a 2xx, the status otherwise, or the connection error."""
    body = {
        "operationType": "DEPOSIT",
        "amount": f"{random.randint(1, 999)}.{random.randint(0, 99):02d}",
    }
    try:
        async with session.post(f"{url}/api/v1/wallets/{wallet_id}/operation", json=body) as r:
            return await r.json() if r.status == 200 else r.status
    except aiohttp.ClientError as error:
        return error


async def assert_acknowledged_are_kept(database_url: str, results: list[Any]) -> int:
    acknowledged = [r["operation"]["id"] for r in results if isinstance(r, dict)]
    connection = await asyncpg.connect(database_url)
    try:
        found = await connection.fetchval(
            "SELECT count(*) FROM operations WHERE id = ANY($1::uuid[])", acknowledged
        )
    finally:
        await connection.close()
    assert found == len(acknowledged), "an acknowledged operation is missing from the ledger"
    report = await audit(database_url)
    assert report.clean, report.findings
    return len(acknowledged)


async def test_a_crash_with_hundreds_of_operations_in_flight_loses_nothing_acknowledged(
    service: ServiceProcess, migrated_url: str, session: aiohttp.ClientSession
) -> None:
    wallets = await new_wallets(session, service.url, 4)
    in_flight = [
        asyncio.create_task(deposit(session, service.url, random.choice(wallets)))
        for _ in range(600)
    ]

    def crash_at_the_fiftieth_answer(_: asyncio.Task[Any]) -> None:
        # Killed right here, in the callback of the 50th answer: waking the test to do it
        # would first let the loop read every answer already on the wire (a batch commits
        # hundreds at once), and the crash would then catch none in flight.
        running = service.process is not None and service.process.poll() is None
        if running and sum(task.done() for task in in_flight) >= 50:
            service.kill()

    for task in in_flight:
        task.add_done_callback(crash_at_the_fiftieth_answer)
    results = await asyncio.gather(*in_flight)

    unanswered = sum(isinstance(r, aiohttp.ClientError) for r in results)
    assert unanswered >= 200, "the crash should have caught hundreds of requests in flight"
    assert not [r for r in results if isinstance(r, int)], "no request should fail with a status"
    service.start()
    acknowledged = await assert_acknowledged_are_kept(migrated_url, results)
    assert acknowledged >= 50
    async with session.get(f"{service.url}/api/v1/wallets/{wallets[0]}") as response:
        assert response.status == 200


async def test_sigterm_under_load_finishes_in_flight_requests_and_exits_in_time(
    service: ServiceProcess, migrated_url: str, session: aiohttp.ClientSession
) -> None:
    wallets = await new_wallets(session, service.url, 2)
    stop_sending = asyncio.Event()
    results: list[Any] = []

    async def client() -> None:
        while not stop_sending.is_set():
            results.append(await deposit(session, service.url, random.choice(wallets)))

    clients = [asyncio.create_task(client()) for _ in range(32)]
    await asyncio.sleep(1.0)
    stopped_at = time.monotonic()
    service.terminate()
    exit_code = await asyncio.to_thread(service.wait, 15)
    exited_after = time.monotonic() - stopped_at
    stop_sending.set()
    await asyncio.gather(*clients)

    assert exit_code == 0
    assert exited_after < 5 + 5  # the grace period, and slack for a busy machine
    statuses = Counter(type(r).__name__ if not isinstance(r, dict) else "ok" for r in results)
    assert statuses["ok"] > 100, statuses
    assert not [r for r in results if isinstance(r, int) and r >= 500 and r != 503], statuses
    await assert_acknowledged_are_kept(migrated_url, results)


async def test_an_exhausted_pool_answers_in_bounded_time_and_recovers(
    make_client: AppFactory, migrated_url: str
) -> None:
    client = await make_client(
        database_url=migrated_url,
        redis_url="",
        db_pool_min_size=1,
        db_pool_max_size=2,
        db_timeout=1.0,
    )
    wallets = [(await (await client.post("/api/v1/wallets")).json())["id"] for _ in range(5)]

    async def request(n: int) -> int:
        wallet_id = wallets[n % len(wallets)]
        if n % 3:
            response = await client.get(f"/api/v1/wallets/{wallet_id}/operations")
        else:
            body = {"operationType": "DEPOSIT", "amount": "1.00"}
            response = await client.post(f"/api/v1/wallets/{wallet_id}/operation", json=body)
        return response.status

    async with asyncio.timeout(60):
        statuses = Counter(await asyncio.gather(*(request(n) for n in range(500))))

    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] > 0
    pool = await resolved(client.server.app[CONTAINER].db_pool())
    await asyncio.sleep(0.1)
    assert pool.get_idle_size() == pool.get_size(), "a connection was not returned to the pool"
    assert (await client.get(f"/api/v1/wallets/{wallets[0]}")).status == 200
    report = await audit(migrated_url)
    assert report.clean, report.findings


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    yield server
    server.remove()


async def test_postgres_down_under_load_answers_503_in_time_and_recovers_losing_nothing(
    private_postgres: PrivatePostgres, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    service = ServiceProcess(
        {
            "WALLET_DATABASE_URL": private_postgres.url,
            "WALLET_REDIS_URL": "",
            "WALLET_WORKERS": "2",
            "WALLET_DB_TIMEOUT": "1",
        },
        tmp_path / "service.log",
    )
    service.start()
    try:
        wallets = await new_wallets(session, service.url, 3)
        results: list[tuple[float, float, Any]] = []  # (sent, answered, result)
        stop_sending = asyncio.Event()

        async def client() -> None:
            while not stop_sending.is_set():
                sent = time.monotonic()
                result = await deposit(session, service.url, random.choice(wallets))
                results.append((sent, time.monotonic(), result))

        clients = [asyncio.create_task(client()) for _ in range(16)]
        await asyncio.sleep(1.0)
        await asyncio.to_thread(private_postgres.stop)
        down_from = time.monotonic()
        await asyncio.sleep(2.0)
        down_until = time.monotonic()
        await asyncio.to_thread(private_postgres.start)
        back_at = time.monotonic()
        await asyncio.sleep(5.0)
        stop_sending.set()
        await asyncio.gather(*clients)

        during = [
            r for sent, answered, r in results if down_from + 0.5 < sent and answered < down_until
        ]
        assert during, "no request was sent while the database was down"
        assert all(r == 503 for r in during), Counter(map(str, during))
        slowest = max(answered - sent for sent, answered, _ in results)
        assert slowest < 1 + 2, "a request waited past the database timeout"
        recovered = [
            answered for sent, answered, r in results if isinstance(r, dict) and sent > back_at
        ]
        assert recovered, "no request succeeded after the database came back"
        assert min(recovered) - back_at < 5, "no recovery within 5 s"
        assert not [r for _, _, r in results if isinstance(r, int) and r != 503]
        assert not [r for _, _, r in results if isinstance(r, aiohttp.ClientError)]
        await assert_acknowledged_are_kept(private_postgres.url, [r for _, _, r in results])
    finally:
        service.stop()


async def test_redis_down_under_load_breaks_nothing_and_serves_no_stale_balance(
    migrated_url: str, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Each client owns a wallet and reads back every write it made: never an older balance."""
    cache = PrivateRedis(tmp_path / "redis", persistent=True)
    cache.directory.mkdir()
    cache.start()
    service = ServiceProcess(
        {
            "WALLET_DATABASE_URL": migrated_url,
            "WALLET_REDIS_URL": cache.url,
            "WALLET_WORKERS": "2",
            "WALLET_CACHE_RETRY_INTERVAL": "0.2",
        },
        tmp_path / "service.log",
    )
    service.start()
    stale: list[tuple[str, Decimal, Decimal]] = []
    statuses: Counter[str] = Counter()
    stop_sending = asyncio.Event()

    async def client(wallet_id: str) -> None:
        while not stop_sending.is_set():
            result = await deposit(session, service.url, wallet_id)
            statuses["deposit " + (str(result) if not isinstance(result, dict) else "200")] += 1
            if not isinstance(result, dict):
                continue
            written = Decimal(result["balance"])
            async with session.get(f"{service.url}/api/v1/wallets/{wallet_id}") as response:
                statuses[f"read {response.status}"] += 1
                if response.status == 200:
                    read = Decimal((await response.json())["balance"])
                    if read < written:
                        stale.append((wallet_id, written, read))

    try:
        wallets = await new_wallets(session, service.url, 12)
        clients = [asyncio.create_task(client(wallet_id)) for wallet_id in wallets]
        await asyncio.sleep(1.0)
        cache.stop()
        await asyncio.sleep(2.0)
        cache.start()
        await asyncio.sleep(2.0)
        stop_sending.set()
        await asyncio.gather(*clients)
    finally:
        service.stop()
        cache.stop()

    assert stale == [], "a client read a balance older than its own write"
    assert set(statuses) == {"deposit 200", "read 200"}, statuses
    assert statuses["deposit 200"] > 100
    report = await audit(migrated_url)
    assert report.clean, report.findings
