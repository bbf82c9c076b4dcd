"""Fences: a write that cannot reach Redis still stops every other process serving the
older balance. Two replicas share one database and one Redis; the writer reaches
Redis through a proxy we cut or blackhole."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import asyncpg
import pytest
import redis.asyncio as redis

from tests.integration.conftest import AppFactory, Client
from tests.integration.servers import PrivateRedis, TcpProxy
from tests.integration.test_redis_cache import balance, cache_of, deposit, new_wallet
from wallet.adapters.fences import Fence
from wallet.adapters.postgres.cache_fences import decode_fences, encode_fences
from wallet.adapters.redis_cache import GENERATION_KEY, RedisBalanceCache
from wallet.domain.errors import StorageUnavailable
from wallet.domain.model import Wallet
from wallet.domain.money import Money

CONTRACT_DELAY = 0.1  # a reader may lag a writer cut from Redis by this much, no more
WATCH_FOR = 1.0
RECACHED_WITHIN = 5.0  # seconds: twice the retry interval and a generation's move, and more


@pytest.fixture
async def proxy(private_redis: PrivateRedis) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", private_redis.port)
    await proxy.start()
    yield proxy
    await proxy.cut()


@pytest.fixture
async def replicas(
    make_client: AppFactory, private_redis: PrivateRedis, proxy: TcpProxy
) -> tuple[Client, Client]:
    """The writer reaches Redis through the proxy, the reader directly."""
    writer = await make_client(redis_url=f"redis://127.0.0.1:{proxy.port}/0")
    reader = await make_client(redis_url=private_redis.url)
    return writer, reader


async def cached_by_the_reader(writer: Client, reader: Client) -> str:
    wallet_id = await new_wallet(writer)
    await deposit(writer, wallet_id, "10.00")
    cache = await cache_of(reader)
    assert await balance(reader, wallet_id) == "10.00"
    hits = cache.hits
    assert await balance(reader, wallet_id) == "10.00"
    assert cache.hits == hits + 1, "the reader should serve the balance from Redis"
    return wallet_id


async def assert_reader_catches_up(reader: Client, wallet_id: str, answered_at: float) -> None:
    """The new balance within the contract's delay of the writer's answer, then never older."""
    seen: list[tuple[float, str]] = []
    while time.monotonic() < answered_at + WATCH_FOR:
        seen.append((time.monotonic() - answered_at, await balance(reader, wallet_id)))
    first_new = next((after for after, value in seen if value == "15.00"), None)
    assert first_new is not None, f"the reader never showed the write: {seen[-3:]}"
    assert first_new <= CONTRACT_DELAY, f"the reader showed 10.00 for {first_new:.3f} s"
    older = [(after, value) for after, value in seen if after > first_new and value != "15.00"]
    assert older == [], f"an older balance came back: {older[:3]}"


@pytest.mark.parametrize("fault", ["cut", "blackhole"])
async def test_a_writer_cut_from_redis_stops_other_replicas_serving_the_old_balance(
    replicas: tuple[Client, Client], proxy: TcpProxy, fault: str
) -> None:
    writer, reader = replicas
    wallet_id = await cached_by_the_reader(writer, reader)
    await (proxy.cut() if fault == "cut" else proxy.blackhole())

    assert await deposit(writer, wallet_id, "5.00") == "15.00"
    answered_at = time.monotonic()

    await assert_reader_catches_up(reader, wallet_id, answered_at)
    await assert_served_from_the_cache_again(reader, wallet_id, "15.00")
    assert (await cache_of(writer)).errors > 0


async def assert_served_from_the_cache_again(reader: Client, wallet_id: str, value: str) -> None:
    """The fence is settled: the reader serves the wallet from Redis again, the new balance.

    Soon, not at once: a lookup of the reader's own that outlived its 50 ms budget on this
    busy machine suspends its cache for the retry interval, then moves it to a new, empty
    generation, and the next read is a miss that stores the balance again."""
    cache = await cache_of(reader)
    deadline = time.monotonic() + RECACHED_WITHIN
    while time.monotonic() < deadline:
        hits = cache.hits
        assert await balance(reader, wallet_id) == value
        if cache.hits == hits + 1:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"the reader did not serve {value} from the cache again within {RECACHED_WITHIN} s")


async def test_a_lost_listener_bypasses_the_cache_and_moves_the_generation_when_back(
    make_client: AppFactory, private_redis: PrivateRedis, pool: asyncpg.Pool
) -> None:
    """Fences sent while a process does not listen are missed: it must not trust Redis."""
    client = await make_client(redis_url=private_redis.url)
    wallet_id = await new_wallet(client)
    await deposit(client, wallet_id, "1.00")
    probe = redis.Redis.from_url(private_redis.url)
    generation = int(await probe.get(GENERATION_KEY))

    terminated = await pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'wallet-cache-fences' AND datname = current_database()"
    )
    assert terminated == 1, "one process, one listening connection"
    states = []
    async with asyncio.timeout(10):
        while not states or states[-1] != "ok" or "down" not in states:
            states.append((await (await client.get("/health/ready")).json())["cache"])
    assert int(await probe.get(GENERATION_KEY)) > generation
    await probe.aclose()
    assert await balance(client, wallet_id) == "1.00"


class Announcer:
    """Fences that go nowhere, or that fail as an unreachable database does."""

    def __init__(self, reachable: bool = True) -> None:
        self.reachable = reachable
        self.announced: list[Fence] = []

    async def announce(self, fences: Sequence[Fence]) -> None:
        if not self.reachable:
            raise StorageUnavailable("the database is unavailable")
        self.announced.extend(fences)


def wallet_at(wallet_id: uuid.UUID, version: int) -> Wallet:
    now = datetime.now(UTC)
    return Wallet(wallet_id, Money(version * 100), version, now, now)


async def listening_cache(url: str, announcer: Announcer) -> RedisBalanceCache:
    client = redis.Redis.from_url(url, decode_responses=True)
    cache = RedisBalanceCache(client, announcer, ttl=60, timeout=1.0, retry_interval=0.2)
    await cache.listening()
    return cache


async def test_a_fence_puts_a_floor_that_no_older_version_passes(
    private_redis: PrivateRedis,
) -> None:
    cache = await listening_cache(private_redis.url, Announcer())
    wallet_id = uuid.uuid4()
    stored = {wallet_id: wallet_at(wallet_id, 5)}

    async def load(wanted: uuid.UUID) -> Wallet:
        return stored[wanted]

    await cache.put(stored[wallet_id])
    assert (await cache.read_through(wallet_id, load)).version == 5
    assert cache.hits == 1

    stored[wallet_id] = wallet_at(wallet_id, 6)  # committed; the writer could not store it
    cache.fenced([(wallet_id, 6)])
    assert (await cache.read_through(wallet_id, load)).version == 6  # at once, floor or not
    async with asyncio.timeout(5):
        while cache.misses == 0:  # the floor reads as a miss, and the reader fills it
            await asyncio.sleep(0.01)  # the floor is put by a task of its own
            assert (await cache.read_through(wallet_id, load)).version == 6
    await cache.put(wallet_at(wallet_id, 5))  # a slow writer, or a reader that loaded early
    assert (await cache.read_through(wallet_id, load)).version == 6
    assert cache.hits >= 2


async def test_a_write_that_can_neither_reach_redis_nor_fence_is_not_acknowledged() -> None:
    announcer = Announcer(reachable=False)
    cache = await listening_cache("redis://127.0.0.1:1/0", announcer)  # nothing listens there
    wallet_id = uuid.uuid4()

    await cache.put(wallet_at(wallet_id, 0))  # a new wallet: nothing older can be cached
    with pytest.raises(StorageUnavailable):
        await cache.put(wallet_at(wallet_id, 1))
    announcer.reachable = True
    await cache.put(wallet_at(wallet_id, 2))
    assert announcer.announced == [(wallet_id, 2)]


def test_fences_travel_in_payloads_under_the_notify_limit() -> None:
    fences = [(uuid.uuid4(), version) for version in range(1000)]
    payloads = encode_fences(fences)
    assert len(payloads) > 1
    assert all(len(payload.encode()) < 8000 for payload in payloads)
    assert [fence for payload in payloads for fence in decode_fences(payload)] == fences


async def test_a_write_aimed_at_a_generation_that_moved_is_fenced_not_stored(
    private_redis: PrivateRedis,
) -> None:
    """A write delayed past a move must not land in the new generation: the fences heard
    before the move were floored in the old one only, so an older balance could."""
    announcer = Announcer()
    writer = await listening_cache(private_redis.url, announcer)
    mover = await listening_cache(private_redis.url, Announcer())  # moves past what writer saw
    wallet_id = uuid.uuid4()

    await writer.put(wallet_at(wallet_id, 5))

    assert announcer.announced == [(wallet_id, 5)]

    async def load(wanted: uuid.UUID) -> Wallet:
        return wallet_at(wanted, 5)

    assert (await mover.read_through(wallet_id, load)).version == 5
    assert (mover.hits, mover.misses) == (0, 1)  # nothing landed in the new generation
