"""PostgreSQL out of reach: bounded 503s with Retry-After, never a hang, then recovery."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.integration.conftest import AppFactory, Client
from tests.integration.ledger import assert_ledger_consistent
from tests.integration.servers import TcpProxy

DB_TIMEOUT = 0.5
SLACK = 2.0  # scheduling noise on a busy machine; a hang would take far longer


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    target = urlsplit(database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.cut()


@pytest.fixture
async def client(make_client: AppFactory, proxy: TcpProxy, database_url: str) -> Client:
    parts = urlsplit(database_url)
    via_proxy = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    return await make_client(database_url=via_proxy, redis_url="", db_timeout=DB_TIMEOUT)


async def deposit(client: Client, wallet_id: str) -> tuple[int, dict[str, object], float]:
    started = time.monotonic()
    response = await client.post(
        f"/api/v1/wallets/{wallet_id}/operation",
        json={"operationType": "DEPOSIT", "amount": "1.00"},
    )
    return response.status, await response.json(), time.monotonic() - started


async def assert_unavailable(client: Client, wallet_id: str) -> None:
    status, body, elapsed = await deposit(client, wallet_id)
    assert status == 503
    assert body["code"] == "SERVICE_UNAVAILABLE"
    assert elapsed < DB_TIMEOUT + SLACK
    response = await client.get(f"/api/v1/wallets/{wallet_id}")
    assert response.status == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.content_type == "application/problem+json"
    ready = await client.get("/health/ready")
    assert ready.status == 503
    assert (await ready.json())["database"] == "down"


async def wait_until_recovered(client: Client, wallet_id: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        response = await client.get(f"/api/v1/wallets/{wallet_id}")
        if response.status == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the service did not recover within 5 s of the database coming back")


@pytest.mark.parametrize("outage", ["refused", "blackholed"])
async def test_an_unreachable_database_answers_503_in_bounded_time_then_recovers(
    client: Client, proxy: TcpProxy, pool: asyncpg.Pool, outage: str
) -> None:
    wallet_id = (await (await client.post("/api/v1/wallets")).json())["id"]
    assert (await deposit(client, wallet_id))[0] == 200

    await (proxy.cut() if outage == "refused" else proxy.blackhole())
    await assert_unavailable(client, wallet_id)
    in_flight = await asyncio.gather(*(deposit(client, wallet_id) for _ in range(20)))
    assert {status for status, _, _ in in_flight} == {503}
    assert max(elapsed for _, _, elapsed in in_flight) < DB_TIMEOUT + SLACK

    await proxy.mend()
    await wait_until_recovered(client, wallet_id)
    assert (await deposit(client, wallet_id))[0] == 200
    body = await (await client.get(f"/api/v1/wallets/{wallet_id}")).json()
    assert body["balance"] == "2.00"
    await assert_ledger_consistent(pool, uuid.UUID(wallet_id))
