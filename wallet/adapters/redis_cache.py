"""The balance cache on Redis: versioned entries, and failures that degrade, never raise.

Entries live under a generation number (``wallet:gen``). A write that could not
reach Redis may leave an older balance behind, so the process that saw the
failure stops reading the cache until it has moved every reader to a new,
empty generation. Readers that loaded from the database store what they read
only if the generation has not moved meanwhile; writers store only versions
newer than the cached one. Together: no stale balance after an outage.

Concurrent readers (and writers) of one wallet share round trips: those that
arrive while one runs are served by the next, never by one that began earlier.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import redis.asyncio as redis
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from redis.retry import Retry

from wallet.adapters.coalesce import Coalescer
from wallet.domain.model import Wallet
from wallet.domain.money import Money
from wallet.domain.ports import CacheState, WalletLoader

log = logging.getLogger(__name__)

GENERATION_KEY = "wallet:gen"
ENTRY_PREFIX = "wallet:"

# KEYS[1] generation key; ARGV: entry prefix, wallet id. Returns {generation, entry or false}.
READ_SCRIPT = """
local generation = redis.call('GET', KEYS[1]) or '0'
local entry = redis.call('HGET', ARGV[1] .. generation .. ':' .. ARGV[2], 'd')
return {generation, entry}
"""

# KEYS[1] generation key; ARGV: entry prefix, wallet id, version, entry, ttl in ms,
# expected generation ('' for any). Stores only a newer version, in the live generation.
WRITE_SCRIPT = """
local generation = redis.call('GET', KEYS[1]) or '0'
if ARGV[6] ~= '' and ARGV[6] ~= generation then
    return 0
end
local key = ARGV[1] .. generation .. ':' .. ARGV[2]
local cached = tonumber(redis.call('HGET', key, 'v'))
if cached and cached >= tonumber(ARGV[3]) then
    return 0
end
redis.call('HSET', key, 'v', ARGV[3], 'd', ARGV[4])
redis.call('PEXPIRE', key, ARGV[5])
return 1
"""

FAILURES = (RedisError, OSError, TimeoutError)


async def open_redis(url: str | None, command_timeout: float) -> AsyncIterator[redis.Redis | None]:
    """A Redis client that gives up after ``command_timeout`` seconds and never retries on its own.

    None when no URL is configured: the cache is off and nothing connects.
    """
    if not url:
        yield None
        return
    client = redis.Redis.from_url(
        url,
        socket_timeout=command_timeout,
        socket_connect_timeout=command_timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    try:
        yield client
    finally:
        await client.aclose()


class RedisBalanceCache:
    """BalanceCache on Redis; counts hits, misses and errors."""

    def __init__(
        self,
        client: redis.Redis,
        ttl: float,
        timeout: float,
        retry_interval: float,
    ) -> None:
        self._client = client
        self._ttl_ms = str(int(ttl * 1000))
        self._timeout = timeout
        self._retry_interval = retry_interval
        self._read = client.register_script(READ_SCRIPT)
        self._write = client.register_script(WRITE_SCRIPT)
        self._lookups: Coalescer[UUID, None, object] = Coalescer(self._lookup)
        self._stores: Coalescer[UUID, Wallet, None] = Coalescer(self._store_newest)
        self._suspended_until = 0.0
        self._must_invalidate = False
        self._invalidating = False
        self.hits = 0
        self.misses = 0
        self.errors = 0

    async def read_through(self, wallet_id: UUID, load: WalletLoader) -> Wallet:
        if not await self._usable():
            return await load(wallet_id)
        found = await self._lookups.submit(wallet_id, None)
        if not isinstance(found, list):
            return await load(wallet_id)
        generation, entry = found
        if entry:
            self.hits += 1
            return _decode(wallet_id, entry)
        self.misses += 1
        wallet = await load(wallet_id)
        if await self._usable():
            await self._store(wallet, expected_generation=generation)
        return wallet

    async def put(self, wallet: Wallet) -> None:
        if await self._usable():
            await self._stores.submit(wallet.id, wallet)

    async def state(self) -> CacheState:
        if not await self._usable():
            return "down"
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.ping()
        except FAILURES as error:
            self._failed("ping", error)
            return "down"
        return "ok"

    async def _lookup(self, wallet_id: UUID, _: list[None]) -> object:
        """One read serves every reader of the wallet that queued while the last one ran."""
        return await self._run(self._read, str(wallet_id))

    async def _store_newest(self, wallet_id: UUID, wallets: list[Wallet]) -> None:
        """One write of the newest version serves every writer queued for the wallet."""
        newest = max(wallets, key=lambda wallet: wallet.version)
        await self._store(newest, expected_generation="")

    async def _store(self, wallet: Wallet, expected_generation: str) -> None:
        await self._run(
            self._write,
            str(wallet.id),
            wallet.version,
            _encode(wallet),
            self._ttl_ms,
            expected_generation,
        )

    async def _run(self, script: AsyncScript, *args: str | int) -> object:
        """Run a script and return its reply; on any failure, note it and return None."""
        try:
            async with asyncio.timeout(self._timeout):
                return await script(keys=[GENERATION_KEY], args=[ENTRY_PREFIX, *args])
        except FAILURES as error:
            self._failed("script", error)
            return None

    async def _usable(self) -> bool:
        """Whether to use Redis now; after a failure, first invalidate what it holds."""
        if time.monotonic() < self._suspended_until:
            return False
        if not self._must_invalidate:
            return True
        if self._invalidating:  # one caller moves the generation; the others skip the cache
            return False
        self._invalidating = True
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.incr(GENERATION_KEY)
        except FAILURES as error:
            self._failed("invalidate", error)
            return False
        finally:
            self._invalidating = False
        self._must_invalidate = False
        log.warning("balance cache is back; entries written before the failure were dropped")
        return True

    def _failed(self, action: str, error: BaseException) -> None:
        """Count the failure and stop using Redis for a while; log once per episode."""
        self.errors += 1
        already_down = self._must_invalidate
        self._must_invalidate = True
        self._suspended_until = time.monotonic() + self._retry_interval
        if already_down:
            return
        log.warning(
            "balance cache %s failed (%s: %s); reading from the database for %.2f s",
            action,
            type(error).__name__,
            error,
            self._retry_interval,
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _encode(wallet: Wallet) -> str:
    created = (wallet.created_at - _EPOCH) // _MICROSECOND
    updated = (wallet.updated_at - _EPOCH) // _MICROSECOND
    return f"{wallet.version}:{wallet.balance.minor}:{created}:{updated}"


def _decode(wallet_id: UUID, entry: str) -> Wallet:
    version, balance, created, updated = (int(part) for part in entry.split(":"))
    return Wallet(
        id=wallet_id,
        balance=Money(balance),
        version=version,
        created_at=_EPOCH + created * _MICROSECOND,
        updated_at=_EPOCH + updated * _MICROSECOND,
    )
