"""PostgreSQL slow to answer (every packet late), not frozen: a request that asks it
several things still answers within WALLET_DB_TIMEOUT plus 0.5 s in all.

A keyed request looks its key up, then applies: each call is bounded on its own, and
together they share one budget per request. Run with ``pytest -m faults``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from yarl import URL

from tests.integration.conftest import Client, ClientFactory
from tests.integration.servers import TcpProxy
from wallet.adapters.postgres.audit import audit
from wallet.config import Settings
from wallet.container import Container
from wallet.entrypoints.http.app import create_app

pytestmark = pytest.mark.faults

DB_TIMEOUT = 1.0
ANSWER_WITHIN = DB_TIMEOUT + 0.5  # the contract's bound, whatever state PostgreSQL is in
# Each way, each packet: a round trip takes twice this, so a key's look-up (one round
# trip) leaves less than a round trip of the timeout, and applying needs several.
PACKET_DELAY = 0.35


@pytest.fixture
async def proxy(migrated_url: str) -> AsyncIterator[TcpProxy]:
    url = URL(migrated_url)
    assert url.host is not None
    assert url.port is not None
    proxy = TcpProxy(url.host, url.port)
    await proxy.start()
    yield proxy
    await proxy.cut()


async def start(
    aiohttp_client: ClientFactory, migrated_url: str, proxy: TcpProxy, group_commit: bool
) -> Client:
    proxied = str(URL(migrated_url).with_port(proxy.port))
    settings = Settings(
        database_url=proxied, redis_url="", db_timeout=DB_TIMEOUT, group_commit=group_commit
    )
    return await aiohttp_client(create_app(Container(settings=settings)))


@pytest.mark.parametrize("group_commit", [True, False], ids=["group-commit", "one-by-one"])
async def test_a_keyed_request_answers_within_one_timeout_in_all(
    aiohttp_client: ClientFactory, migrated_url: str, proxy: TcpProxy, group_commit: bool
) -> None:
    client = await start(aiohttp_client, migrated_url, proxy, group_commit)
    created = await client.post("/api/v1/wallets")
    assert created.status == 201
    wallet_id = (await created.json())["id"]

    for key in ("prime-keyed", None):  # statements prepared on the pooled connection
        await deposit(client, wallet_id, key and f"{key}-{uuid.uuid4().hex}")

    proxy.delay = PACKET_DELAY
    started = time.monotonic()
    status = await deposit(client, wallet_id, f"slow-{uuid.uuid4().hex}")
    seconds = time.monotonic() - started
    print(f"slow database, group_commit={group_commit}: {status} after {seconds:.2f} s")
    assert status == 503, "the database was not slow enough to need two calls' time"
    assert seconds <= ANSWER_WITHIN

    proxy.delay = 0.0
    assert await deposit(client, wallet_id, f"after-{uuid.uuid4().hex}") == 200
    assert (await audit(migrated_url)).clean


async def deposit(client: Client, wallet_id: str, key: str | None) -> int:
    response = await client.post(
        f"/api/v1/wallets/{wallet_id}/operation",
        json={"operationType": "DEPOSIT", "amount": "1.00"},
        headers={"Idempotency-Key": key} if key else {},
    )
    return response.status
