"""Cache fences through PostgreSQL: NOTIFY when a write could not reach the cache, and
one LISTEN connection in each process to hear them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from uuid import UUID

import asyncpg

from wallet.adapters.fences import Fence, FenceSink
from wallet.adapters.postgres.connections import UNAVAILABLE, bounded_connection

log = logging.getLogger(__name__)

CHANNEL = "wallet_cache_fence"
# One statement sends every chunk: one round trip, one transaction, whatever the count.
NOTIFY = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload"
MAX_PAYLOAD = 7900  # bytes; PostgreSQL refuses a payload of 8000 or more
HEARTBEAT = 1.0  # seconds between checks that the listening connection still answers
FIRST_RETRY = 0.1
LAST_RETRY = 2.0


def encode_fences(fences: Sequence[Fence]) -> list[str]:
    """``id:version`` items, comma-separated, in payloads under the size limit."""
    payloads: list[str] = []
    items: list[str] = []
    size = 0
    for wallet_id, version in fences:
        item = f"{wallet_id}:{version}"
        if items and size + len(item) + 1 > MAX_PAYLOAD:
            payloads.append(",".join(items))
            items, size = [], 0
        items.append(item)
        size += len(item) + 1
    if items:
        payloads.append(",".join(items))
    return payloads


def decode_fences(payload: str) -> list[Fence]:
    fences = []
    for item in payload.split(","):
        wallet_id, version = item.split(":")
        fences.append((UUID(wallet_id), int(version)))
    return fences


class PostgresFences:
    """Announces fences to every listening process; waits at most ``timeout`` seconds."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout

    async def announce(self, fences: Sequence[Fence]) -> None:
        """Returns once PostgreSQL has committed the notifications; raises StorageUnavailable."""
        async with bounded_connection(self._pool, self._timeout) as connection:
            await connection.execute(NOTIFY, CHANNEL, encode_fences(fences))


class FenceListener:
    """Keeps one connection of its own LISTENing, reconnecting with backoff when lost.

    Not a pooled connection: the pool keeps sessions between requests and must
    never hand out one that listens.
    """

    def __init__(self, dsn: str, timeout: float, sink: FenceSink) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._sink = sink
        self.tried = asyncio.Event()  # set once the first attempt has listened or failed

    async def run(self) -> None:
        delay = FIRST_RETRY
        while True:
            try:
                await self._listen_until_lost()
                delay = FIRST_RETRY
                log.warning("cache fence listener lost its connection; reconnecting")
            except UNAVAILABLE as error:
                delay = min(delay * 2, LAST_RETRY)
                log.warning(
                    "cache fence listener cannot listen (%s: %s); the cache is bypassed",
                    type(error).__name__,
                    error,
                )
            finally:
                self._sink.deaf()
                self.tried.set()
            await asyncio.sleep(delay)

    async def _listen_until_lost(self) -> None:
        connection = await asyncpg.connect(
            self._dsn,
            timeout=self._timeout,
            statement_cache_size=0,
            server_settings={"application_name": "wallet-cache-fences"},
        )
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        try:
            async with asyncio.timeout(self._timeout):
                await connection.add_listener(CHANNEL, self._heard)
            await self._sink.listening()
            self.tried.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HEARTBEAT):
                        await lost.wait()
                if not lost.is_set():  # a link that died silently fails this in time
                    async with asyncio.timeout(self._timeout):
                        await connection.execute("SELECT 1")
        finally:
            connection.terminate()

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        assert isinstance(payload, str)
        self._sink.fenced(decode_fences(payload))


async def listen_for_fences(
    dsn: str, connect_timeout: float, sink: FenceSink
) -> AsyncIterator[None]:
    """A resource: listening in the background from start-up to shutdown.

    Start-up waits for the first attempt, so a process that can listen serves its
    first reads from the cache.
    """
    listener = FenceListener(dsn, connect_timeout, sink)
    task = asyncio.create_task(listener.run())
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(connect_timeout * 2):
                await listener.tried.wait()
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
