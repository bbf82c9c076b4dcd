"""The balance cache on a private redis-server: read-through, versions, and outages."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import asyncpg
import redis.asyncio as redis

from tests.integration.conftest import AppFactory, Client
from tests.integration.servers import PrivateRedis
from wallet.adapters.redis_cache import RedisBalanceCache
from wallet.container import resolved
from wallet.entrypoints.http.keys import CONTAINER

RETRY_INTERVAL = 0.2


async def cache_of(client: Client) -> RedisBalanceCache:
    cache = await resolved(client.server.app[CONTAINER].balance_cache())
    assert isinstance(cache, RedisBalanceCache)
    return cache


async def deposit(client: Client, wallet_id: str, amount: str) -> str:
    response = await client.post(
        f"/api/v1/wallets/{wallet_id}/operation",
        json={"operationType": "DEPOSIT", "amount": amount},
    )
    assert response.status == 200, await response.text()
    balance: str = (await response.json())["balance"]
    return balance


async def balance(client: Client, wallet_id: str) -> str:
    response = await client.get(f"/api/v1/wallets/{wallet_id}")
    assert response.status == 200, await response.text()
    value: str = (await response.json())["balance"]
    return value


async def new_wallet(client: Client) -> str:
    response = await client.post("/api/v1/wallets")
    assert response.status == 201
    wallet_id: str = (await response.json())["id"]
    return wallet_id


async def test_reads_go_through_the_cache(
    make_client: AppFactory, private_redis: PrivateRedis, pool: asyncpg.Pool
) -> None:
    client = await make_client(redis_url=private_redis.url)
    wallet_id = await new_wallet(client)
    await deposit(client, wallet_id, "5.00")
    cache = await cache_of(client)
    hits = cache.hits

    assert await balance(client, wallet_id) == "5.00"
    assert cache.hits == hits + 1
    # The cache answers, not the database: a change made behind the service's back
    # is not seen until the next write refreshes the entry.
    await pool.execute(
        "UPDATE wallets SET updated_at = updated_at WHERE id = $1", uuid.UUID(wallet_id)
    )
    assert await balance(client, wallet_id) == "5.00"
    assert cache.hits == hits + 2


async def test_an_older_version_never_replaces_a_newer_one(
    make_client: AppFactory, private_redis: PrivateRedis
) -> None:
    client = await make_client(redis_url=private_redis.url)
    wallet_id = await new_wallet(client)
    cache = await cache_of(client)
    services = client.server.app[CONTAINER]
    repository = await resolved(services.wallets())
    old = await repository.get(uuid.UUID(wallet_id))
    await deposit(client, wallet_id, "1.00")

    await cache.put(old)  # a slow writer arriving late

    assert await balance(client, wallet_id) == "1.00"


async def test_redis_down_then_back_serves_no_stale_balance(
    make_client: AppFactory, private_redis: PrivateRedis
) -> None:
    client = await make_client(redis_url=private_redis.url, cache_retry_interval=RETRY_INTERVAL)
    wallet_id = await new_wallet(client)
    await deposit(client, wallet_id, "1.00")
    assert await balance(client, wallet_id) == "1.00"

    private_redis.stop()
    for expected in ("3.00", "6.00"):
        amount = "2.00" if expected == "3.00" else "3.00"
        assert await deposit(client, wallet_id, amount) == expected
        assert await balance(client, wallet_id) == expected
    ready = await client.get("/health/ready")
    assert ready.status == 200
    assert (await ready.json())["cache"] == "down"
    assert (await cache_of(client)).errors > 0

    private_redis.start()
    assert await balance(client, wallet_id) == "6.00"
    await asyncio.sleep(RETRY_INTERVAL * 2)
    assert await balance(client, wallet_id) == "6.00"
    assert await deposit(client, wallet_id, "0.50") == "6.50"
    assert await balance(client, wallet_id) == "6.50"
    assert (await (await client.get("/health/ready")).json())["cache"] == "ok"


async def test_an_outage_that_keeps_old_entries_serves_no_stale_balance(
    make_client: AppFactory, persistent_redis: PrivateRedis
) -> None:
    """Redis comes back with what it held before: the entry written before the outage is old."""
    client = await make_client(redis_url=persistent_redis.url, cache_retry_interval=RETRY_INTERVAL)
    wallet_id = await new_wallet(client)
    await deposit(client, wallet_id, "1.00")
    assert await balance(client, wallet_id) == "1.00"  # cached, and kept on disk

    persistent_redis.stop()
    assert await deposit(client, wallet_id, "2.00") == "3.00"  # the cache missed this write
    persistent_redis.start()
    probe = redis.Redis.from_url(persistent_redis.url)
    entries = [key for key in await probe.keys("wallet:*") if key != b"wallet:gen"]
    assert entries, "the old entry should have survived the restart"
    await probe.aclose()

    assert await balance(client, wallet_id) == "3.00"
    await asyncio.sleep(RETRY_INTERVAL * 2)
    assert await balance(client, wallet_id) == "3.00"
    assert await balance(client, wallet_id) == "3.00"


async def test_a_hung_redis_delays_nothing_and_breaks_nothing(
    make_client: AppFactory, private_redis: PrivateRedis
) -> None:
    client = await make_client(redis_url=private_redis.url, cache_retry_interval=RETRY_INTERVAL)
    wallet_id = await new_wallet(client)
    assert private_redis.process is not None
    os.kill(private_redis.process.pid, signal.SIGSTOP)
    try:
        for total in range(1, 11):
            assert await deposit(client, wallet_id, "1.00") == f"{total}.00"
            assert await balance(client, wallet_id) == f"{total}.00"
    finally:
        os.kill(private_redis.process.pid, signal.SIGCONT)
    await asyncio.sleep(RETRY_INTERVAL * 2)
    assert await balance(client, wallet_id) == "10.00"
    assert await deposit(client, wallet_id, "1.00") == "11.00"
    assert await balance(client, wallet_id) == "11.00"


async def test_a_cached_wallet_keeps_its_metadata(
    make_client: AppFactory, private_redis: PrivateRedis
) -> None:
    client = await make_client(redis_url=private_redis.url)
    metadata = {"owner": "u:42", "note": 'colons: kept "quoted"'}
    response = await client.post("/api/v1/wallets", json={"metadata": metadata})
    assert response.status == 201, await response.text()
    wallet_id: str = (await response.json())["id"]
    await deposit(client, wallet_id, "5.00")
    cache = await cache_of(client)
    hits = cache.hits

    read = await client.get(f"/api/v1/wallets/{wallet_id}")

    assert (await read.json())["metadata"] == metadata
    assert cache.hits == hits + 1
