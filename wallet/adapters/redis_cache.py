"""The balance cache on Redis: versioned entries, and failures that degrade, never raise.

Entries live under a generation number (``wallet:gen``). A write that could not
reach Redis may leave an older balance behind, so the process that saw the
failure stops reading the cache until it has moved every reader to a new,
empty generation. Readers that loaded from the database store what they read
only if the generation has not moved meanwhile; writers store only versions
newer than the cached one. Together: no stale balance after an outage.

Concurrent readers (and writers) share round trips: those that arrive while one
runs are served together by the next, never by one that began earlier.
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
from wallet.metrics import CACHE_ERRORS, CACHE_LOOKUPS, TALLY, series

log = logging.getLogger(__name__)

GENERATION_KEY = "wallet:gen"
ENTRY_PREFIX = "wallet:"

# KEYS[1] generation key; ARGV: entry prefix, then wallet ids.
# Returns {generation, entry or '' for each id}.
READ_SCRIPT = """
local generation = redis.call('GET', KEYS[1]) or '0'
local found = {generation}
for i = 2, #ARGV do
    found[i] = redis.call('HGET', ARGV[1] .. generation .. ':' .. ARGV[i], 'd') or ''
end
return found
"""

# KEYS[1] generation key; ARGV: entry prefix, ttl in ms, expected generation ('' for
# any), then (wallet id, version, entry) triples. Stores each entry only if it is
# newer than the cached one, in the live generation; returns how many it stored.
WRITE_SCRIPT = """
local generation = redis.call('GET', KEYS[1]) or '0'
if ARGV[3] ~= '' and ARGV[3] ~= generation then
    return 0
end
local stored = 0
for i = 4, #ARGV, 3 do
    local key = ARGV[1] .. generation .. ':' .. ARGV[i]
    local cached = tonumber(redis.call('HGET', key, 'v'))
    if not cached or cached < tonumber(ARGV[i + 1]) then
        redis.call('HSET', key, 'v', ARGV[i + 1], 'd', ARGV[i + 2])
        redis.call('PEXPIRE', key, ARGV[2])
        stored = stored + 1
    end
end
return stored
"""

FAILURES = (RedisError, OSError, TimeoutError)

_Lookup = tuple[str, dict[UUID, str]]  # the generation read, and each wallet's entry or ""


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
        self._lookups: Coalescer[UUID, _Lookup | None] = Coalescer(self._lookup)
        self._stores: Coalescer[Wallet, None] = Coalescer(self._store_newest)
        self._suspended_until = 0.0
        self._must_invalidate = False
        self._invalidating = False
        self.hits = 0
        self.misses = 0
        self.errors = 0

    async def read_through(self, wallet_id: UUID, load: WalletLoader) -> Wallet:
        if not await self._usable():
            return await load(wallet_id)
        found = await self._lookups.submit(wallet_id)
        if found is None:
            return await load(wallet_id)
        generation, entries = found
        entry = entries[wallet_id]
        if entry:
            self.hits += 1
            TALLY.inc(series(CACHE_LOOKUPS, "hit"))
            return _decode(wallet_id, entry)
        self.misses += 1
        TALLY.inc(series(CACHE_LOOKUPS, "miss"))
        wallet = await load(wallet_id)
        if await self._usable():
            await self._store([wallet], expected_generation=generation)
        return wallet

    async def put(self, wallet: Wallet) -> None:
        if await self._usable():
            await self._stores.submit(wallet)

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

    async def _lookup(self, wallet_ids: list[UUID]) -> _Lookup | None:
        """One read serves every reader that queued while the last one ran."""
        wanted = list(dict.fromkeys(wallet_ids))
        found = await self._run(self._read, *(str(wallet_id) for wallet_id in wanted))
        if not isinstance(found, list):
            return None
        generation, *entries = found
        return generation, dict(zip(wanted, entries, strict=True))

    async def _store_newest(self, wallets: list[Wallet]) -> None:
        """One write of each wallet's newest version serves every writer that queued."""
        newest: dict[UUID, Wallet] = {}
        for wallet in wallets:
            if wallet.id not in newest or newest[wallet.id].version < wallet.version:
                newest[wallet.id] = wallet
        await self._store(list(newest.values()), expected_generation="")

    async def _store(self, wallets: list[Wallet], expected_generation: str) -> None:
        triples = (
            part for wallet in wallets for part in (str(wallet.id), wallet.version, _encode(wallet))
        )
        await self._run(self._write, self._ttl_ms, expected_generation, *triples)

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
        CACHE_ERRORS.inc()
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
