"""The balance cache on Redis: versioned entries, fences, and failures that degrade.

Entries live under a generation number (``wallet:gen``). A write is acknowledged
only once no reader anywhere can serve an older balance: Redis took the new
version (or holds a newer one), or, when Redis could not be reached, a fence for
it went out through PostgreSQL. Every process hears fences, stops trusting its
copy of that wallet at once, and puts a floor under the entry: a version with no
balance, which reads as a miss and refuses any older version stored later. A
process that cannot put the floor, or that may have missed fences, moves every
reader to a new, empty generation before it reads the cache again, and floors what
it still holds fences for in that one too. Every store names the generation it is
meant for and lands nowhere else: a reader's, the one it read before loading from
the database; a writer's, the one its process last saw (a write delayed past a move
could otherwise carry an old balance into the new generation). Within a
generation, only versions newer than the cached one are stored.

Concurrent readers (and writers) share round trips: those that arrive while one
runs are served together by the next, never by one that began earlier.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from wallet.adapters.coalesce import Coalescer
from wallet.adapters.fences import Fence, FenceAnnouncer
from wallet.adapters.json_metadata import metadata_from_json, metadata_to_json
from wallet.deadlines import request_deadline
from wallet.domain.currency import CURRENCIES
from wallet.domain.errors import StorageUnavailable
from wallet.domain.model import Wallet
from wallet.domain.money import Money
from wallet.domain.ports import CacheState, WalletLoader
from wallet.domain.references import NO_METADATA
from wallet.metrics import CACHE_ERRORS, CACHE_LOOKUPS, TALLY, series

log = logging.getLogger(__name__)

GENERATION_KEY = "wallet:gen"
ENTRY_PREFIX = "wallet:"

# The live generation. A new or wiped Redis starts from the clock (in ns), not from 0,
# so a reader that read the generation before a restart never finds it again after.
GENERATION = """
local function live_generation(key)
    local generation = redis.call('GET', key)
    if not generation then
        local now = redis.call('TIME')
        generation = now[1] .. string.format('%06d', tonumber(now[2])) .. '000'
        redis.call('SET', key, generation)
    end
    return generation
end
"""

# KEYS[1] generation key; ARGV: entry prefix, then wallet ids.
# Returns {generation, entry or '' for each id}; a floor has no entry.
READ_SCRIPT = (
    GENERATION
    + """
local generation = live_generation(KEYS[1])
local found = {generation}
for i = 2, #ARGV do
    found[i] = redis.call('HGET', ARGV[1] .. generation .. ':' .. ARGV[i], 'd') or ''
end
return found
"""
)

# KEYS[1] generation key; ARGV: entry prefix, ttl in ms, expected generation, then
# (wallet id, version, entry) triples. Stores each entry only if it is newer than the
# cached one, or fills a floor of its own version, and only in the generation the
# writer expects: a write delayed past a move to a new generation must not land there
# (the fences heard before the move are floored in the old one only). Returns
# {live generation, how many it stored, or -1 when the generation moved}.
WRITE_SCRIPT = (
    GENERATION
    + """
local generation = live_generation(KEYS[1])
if ARGV[3] ~= generation then
    return {generation, -1}
end
local stored = 0
for i = 4, #ARGV, 3 do
    local key = ARGV[1] .. generation .. ':' .. ARGV[i]
    local cached = redis.call('HMGET', key, 'v', 'd')
    local version = tonumber(cached[1])
    local wanted = tonumber(ARGV[i + 1])
    if not version or version < wanted or (version == wanted and not cached[2]) then
        redis.call('HSET', key, 'v', ARGV[i + 1], 'd', ARGV[i + 2])
        redis.call('PEXPIRE', key, ARGV[2])
        stored = stored + 1
    end
end
return {generation, stored}
"""
)

# KEYS[1] generation key; ARGV: entry prefix, ttl in ms, then (wallet id, version)
# pairs. Puts a floor (the version, no entry) under each wallet whose cached version
# is older; returns how many it put.
FLOOR_SCRIPT = (
    GENERATION
    + """
local generation = live_generation(KEYS[1])
local floored = 0
for i = 3, #ARGV, 2 do
    local key = ARGV[1] .. generation .. ':' .. ARGV[i]
    local version = tonumber(redis.call('HGET', key, 'v'))
    if not version or version < tonumber(ARGV[i + 1]) then
        redis.call('DEL', key)
        redis.call('HSET', key, 'v', ARGV[i + 1])
        redis.call('PEXPIRE', key, ARGV[2])
        floored = floored + 1
    end
end
return floored
"""
)

# KEYS[1] generation key; ARGV: entry prefix (unused). Moves every reader to a new,
# empty generation; returns it.
INVALIDATE_SCRIPT = (
    GENERATION
    + """
live_generation(KEYS[1])
redis.call('INCR', KEYS[1])
return redis.call('GET', KEYS[1])  -- as text: a Lua number would round it
"""
)

FAILURES = (RedisError, OSError, TimeoutError)
ECHO_WAIT = 0.1  # seconds a writer waits to hear its own fence before answering anyway

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
    """BalanceCache on Redis, fenced through ``fences``; counts hits, misses and errors.

    Also the FenceSink of its process's fence listener: until that listener hears
    fences, the cache is written but not read.
    """

    def __init__(
        self,
        client: redis.Redis,
        fences: FenceAnnouncer,
        ttl: float,
        timeout: float,
        retry_interval: float,
    ) -> None:
        self._client = client
        self._announcer = fences
        self._ttl_ms = str(int(ttl * 1000))
        self._timeout = timeout
        self._retry_interval = retry_interval
        self._read = client.register_script(READ_SCRIPT)
        self._write = client.register_script(WRITE_SCRIPT)
        self._floor = client.register_script(FLOOR_SCRIPT)
        self._invalidate = client.register_script(INVALIDATE_SCRIPT)
        self._lookups: Coalescer[UUID, _Lookup | None] = Coalescer(self._lookup)
        self._stores: Coalescer[Wallet, bool] = Coalescer(self._store_newest)
        self._fences: Coalescer[Wallet, None] = Coalescer(self._announce)
        self._floors: Coalescer[list[Fence], None] = Coalescer(self._put_floors)
        self._floor_tasks: set[asyncio.Task[None]] = set()
        self._suspended_until = 0.0
        self._invalidations_wanted = 0  # a new generation is owed while this exceeds ...
        self._invalidations_done = 0  # ... the count the last successful move covered
        self._invalidating = False
        self._listening = False
        self._pending: dict[UUID, int] = {}  # fenced wallets whose floor is not yet in place
        self._generation: str | None = None  # the live generation, as last seen
        self._fences_heard = 0
        self._echoes: dict[UUID, list[tuple[int, asyncio.Future[None]]]] = {}
        self.hits = 0
        self.misses = 0
        self.errors = 0

    async def read_through(self, wallet_id: UUID, load: WalletLoader) -> Wallet:
        if not (self._ready() or await self._usable()) or wallet_id in self._pending:
            return await load(wallet_id)
        heard = self._fences_heard
        found = await self._lookups.submit(wallet_id)
        if found is None or not self._trusted(heard):
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
        if (self._ready() or await self._usable()) and wallet_id not in self._pending:
            await self._store([wallet], expected_generation=generation)
        return wallet

    async def put(self, wallet: Wallet) -> None:
        """Stored in Redis, else fenced through PostgreSQL; raises StorageUnavailable
        when neither can be made sure of. A new wallet (version 0) needs no fence:
        no older copy of it can be cached."""
        if not self._suspended() and await self._stores.submit(wallet):
            return
        if wallet.version == 0:
            return
        try:
            async with asyncio.timeout_at(request_deadline()):  # shared: within the request's
                await self._fences.submit(wallet)
        except TimeoutError:
            raise StorageUnavailable("the cache fence was not sent in time") from None

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

    def fenced(self, fences: list[Fence]) -> None:
        """Stop trusting the fenced wallets now; put the floors in place soon."""
        self._fences_heard += 1
        for wallet_id, version in fences:
            if self._pending.get(wallet_id, -1) < version:
                self._pending[wallet_id] = version
            for wanted, echo in self._echoes.get(wallet_id, ()):
                if wanted <= version and not echo.done():
                    echo.set_result(None)
        if not self._suspended():  # else the move to a new generation that is owed settles them
            self._put_floors_soon(fences)

    async def listening(self) -> None:
        """Fences sent while nobody here listened were missed: move to a new generation."""
        self._listening = True
        self._want_invalidation()
        await self._usable()

    def deaf(self) -> None:
        self._listening = False

    def _put_floors_soon(self, fences: list[Fence]) -> None:
        task = asyncio.create_task(self._floors.submit(fences))
        self._floor_tasks.add(task)
        task.add_done_callback(self._floor_tasks.discard)

    def _trusted(self, heard: int) -> bool:
        """Whether a lookup that began when ``heard`` fences were heard may be served:
        not if a fence (or deafness) came meanwhile, since it may be about that wallet."""
        return self._fences_heard == heard and self._listening

    async def _lookup(self, wallet_ids: list[UUID]) -> _Lookup | None:
        """One read serves every reader that queued while the last one ran."""
        wanted = list(dict.fromkeys(wallet_ids))
        found = await self._run(self._read, *(str(wallet_id) for wallet_id in wanted))
        if not isinstance(found, list):
            return None
        generation, *entries = found
        self._generation = generation
        return generation, dict(zip(wanted, entries, strict=True))

    async def _store_newest(self, wallets: list[Wallet]) -> bool:
        """One write of each wallet's newest version serves every writer that queued.

        It is aimed at the generation this process last saw: one it has not seen yet
        may have moved past fences it was not floored with.
        """
        if self._generation is None:
            return False
        return await self._store(list(_newest(wallets).values()), self._generation)

    async def _store(self, wallets: list[Wallet], expected_generation: str) -> bool:
        """Whether Redis now holds each wallet's version or a newer one."""
        triples = (
            part for wallet in wallets for part in (str(wallet.id), wallet.version, _encode(wallet))
        )
        reply = await self._run(self._write, self._ttl_ms, expected_generation, *triples)
        if not isinstance(reply, list):
            return False
        self._generation, stored = reply[0], int(reply[1])
        return stored >= 0

    async def _announce(self, wallets: list[Wallet]) -> None:
        """One notification round trip fences every writer that queued.

        Then it waits (briefly) until this process hears its own fences: every
        listener was told at the same commit, so by then the others have most
        likely heard them too, before the writer's client can ask anyone else.
        """
        fences = [(wallet.id, wallet.version) for wallet in _newest(wallets).values()]
        loop = asyncio.get_running_loop()
        echoes = [(wallet_id, (version, loop.create_future())) for wallet_id, version in fences]
        for wallet_id, echo in echoes:
            self._echoes.setdefault(wallet_id, []).append(echo)
        try:
            await self._announcer.announce(fences)
            if self._listening:
                await asyncio.wait([future for _, (_, future) in echoes], timeout=ECHO_WAIT)
        finally:
            for wallet_id, echo in echoes:
                waiting = self._echoes[wallet_id]
                waiting.remove(echo)
                if not waiting:
                    del self._echoes[wallet_id]

    async def _put_floors(self, batches: list[list[Fence]]) -> None:
        highest: dict[UUID, int] = {}
        for wallet_id, version in (fence for batch in batches for fence in batch):
            highest[wallet_id] = max(version, highest.get(wallet_id, version))
        pairs = (
            part for wallet_id, version in highest.items() for part in (str(wallet_id), version)
        )
        if await self._run(self._floor, self._ttl_ms, *pairs) is None:
            return  # failed: the move to a new generation that is now owed settles them
        for wallet_id, version in highest.items():
            if self._pending.get(wallet_id, version + 1) <= version:
                del self._pending[wallet_id]

    async def _run(self, script: AsyncScript, *args: str | int) -> object:
        """Run a script and return its reply; on any failure, note it and return None."""
        try:
            async with asyncio.timeout(self._timeout):
                return await script(keys=[GENERATION_KEY], args=[ENTRY_PREFIX, *args])
        except FAILURES as error:
            self._failed("script", error)
            if isinstance(error, RedisConnectionError):  # the server went away: every idle
                with contextlib.suppress(*FAILURES):  # connection is dead too; drop them all
                    await self._client.connection_pool.disconnect(inuse_connections=False)
            return None

    def _suspended(self) -> bool:
        if not self._suspended_until:  # the usual case: never failed, or over since
            return False
        if time.monotonic() < self._suspended_until:
            return True
        self._suspended_until = 0.0  # over: no clock to read until the next failure
        return False

    def _ready(self) -> bool:
        """``_usable``'s answer in the usual case, without an await: no move to a new
        generation owed, fences heard, Redis not suspended. False means "ask ``_usable``"."""
        return (
            self._invalidations_done == self._invalidations_wanted
            and self._listening
            and not self._suspended()
        )

    async def _usable(self) -> bool:
        """Whether to read Redis now: not after a failure until the retry interval is
        over and every reader has moved to a new generation, nor while fences go unheard."""
        if self._suspended() or not self._listening:
            return False
        if self._invalidations_done == self._invalidations_wanted:
            return True
        if self._invalidating:  # one caller moves the generation; the others skip the cache
            return False
        self._invalidating = True
        covered = self._invalidations_wanted
        try:
            generation = await self._run(self._invalidate)
            if generation is None:
                return False
        finally:
            self._invalidating = False
        self._generation = str(generation)
        self._invalidations_done = max(self._invalidations_done, covered)
        if self._pending:  # a write sent before the move may still land: floor them here too
            self._put_floors_soon(list(self._pending.items()))
        log.info("balance cache generation moved; older entries are no longer read")
        return self._invalidations_done == self._invalidations_wanted

    def _want_invalidation(self) -> None:
        self._invalidations_wanted += 1

    def _failed(self, action: str, error: BaseException) -> None:
        """Count the failure and stop using Redis for a while; log once per episode."""
        self.errors += 1
        CACHE_ERRORS.inc()
        already_down = self._invalidations_done < self._invalidations_wanted
        self._want_invalidation()
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


def _newest(wallets: list[Wallet]) -> dict[UUID, Wallet]:
    newest: dict[UUID, Wallet] = {}
    for wallet in wallets:
        if wallet.id not in newest or newest[wallet.id].version < wallet.version:
            newest[wallet.id] = wallet
    return newest


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _encode(wallet: Wallet) -> str:
    created = (wallet.created_at - _EPOCH) // _MICROSECOND
    updated = (wallet.updated_at - _EPOCH) // _MICROSECOND
    currency = wallet.currency.code
    if wallet.held_minor or wallet.held_until is not None:
        until = "" if wallet.held_until is None else (wallet.held_until - _EPOCH) // _MICROSECOND
        currency = f"{currency},{wallet.held_minor},{until}"
    entry = f"{wallet.version}:{wallet.balance.minor}:{created}:{updated}:{currency}"
    return f"{entry}:{metadata_to_json(wallet.metadata)}" if wallet.metadata else entry


@functools.lru_cache(maxsize=1024)
def _decode(wallet_id: UUID, entry: str) -> Wallet:
    """A cached wallet; an entry cached before currencies existed is a USD wallet's, and
    one without metadata (the JSON last, colons and all) has none.

    Remembered by its exact text: a hot wallet is read again and again between writes, and
    the same text (its version included) always decodes to the same immutable wallet."""
    version, balance, created, updated, *rest = entry.split(":", 5)
    # The currency, then what holds reserve and until when, if any: "EUR,1500,1733000000000000".
    code, *holding = (rest[0] if rest else "USD").split(",")
    held, until = holding or ("0", "")
    return Wallet(
        id=wallet_id,
        balance=Money(int(balance), CURRENCIES[code]),
        version=int(version),
        created_at=_EPOCH + int(created) * _MICROSECOND,
        updated_at=_EPOCH + int(updated) * _MICROSECOND,
        metadata=metadata_from_json(rest[1]) if len(rest) > 1 else NO_METADATA,
        held_minor=int(held),
        held_until=_EPOCH + int(until) * _MICROSECOND if until else None,
    )
