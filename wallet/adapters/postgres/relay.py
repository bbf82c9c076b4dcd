"""The relay's lease and position on PostgreSQL: a session advisory lock on a connection of
its own, and the row of event_relays it guards.

The lock lives exactly as long as the session: a relay that dies, or whose connection
breaks, lets it go, and the next relay that asks gets it. The connection is never a
pooled one, since the pool hands sessions from request to request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from wallet.adapters.postgres.connections import UNAVAILABLE
from wallet.domain.relay import Backlog, LeaseLost

log = logging.getLogger(__name__)

# One lock per stream, in the bigint key space of advisory locks.
TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('wallet.event_relay/' || $1, 0))"
POSITION = """
WITH made AS (
    INSERT INTO event_relays (stream) VALUES ($1) ON CONFLICT (stream) DO NOTHING
    RETURNING published_through
)
SELECT published_through FROM made
UNION ALL
SELECT published_through FROM event_relays WHERE stream = $1
"""
ADVANCE = """
UPDATE event_relays SET published_through = $2, updated_at = clock_timestamp()
 WHERE stream = $1 AND published_through < $2
"""
# By id: the newest committed event (the index's last entry) less the position. By age:
# the oldest event after the position, against the database's clock.
BACKLOG = """
SELECT greatest(coalesce((SELECT max(id) FROM events), 0) - $1, 0) AS events,
       coalesce(extract(epoch FROM clock_timestamp() - (
           SELECT created_at FROM events WHERE id > $1 ORDER BY id LIMIT 1)), 0)::float8
           AS seconds
"""
# A host that vanishes holds its lock until the server notices: ask it to probe an idle
# connection after 10 s, every 5 s, 3 times (about 25 s; ignored on a Unix socket).
SERVER_SETTINGS = {
    "application_name": "wallet-event-relay",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}


class PostgresRelayLeases:
    """Leases for the relay of ``stream``: one connection to ``dsn`` per waiting or
    holding relay, asking again every ``retry`` seconds; each call bounded by
    ``timeout`` seconds."""

    def __init__(self, dsn: str, stream: str, timeout: float, retry: float = 1.0) -> None:
        self._dsn = dsn
        self._stream = stream
        self._timeout = timeout
        self._retry = retry

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[PostgresRelayLease]:
        connection = await self._locked_connection()
        try:
            yield PostgresRelayLease(connection, self._stream, self._timeout)
        finally:
            await _close(connection, self._timeout)

    async def _locked_connection(self) -> asyncpg.Connection[Any]:
        """Wait until a session of ours holds the lock; database failures are waited out."""
        connection: asyncpg.Connection[Any] | None = None
        failure = ""
        try:
            while True:
                try:
                    if connection is None or connection.is_closed():
                        connection = await asyncpg.connect(
                            self._dsn,
                            timeout=self._timeout,
                            statement_cache_size=0,
                            server_settings=SERVER_SETTINGS,
                        )
                    async with asyncio.timeout(self._timeout):
                        if await connection.fetchval(TRY_LOCK, self._stream):
                            return connection
                except UNAVAILABLE as error:
                    if connection is not None:
                        connection.terminate()
                        connection = None
                    if repr(error) != failure:  # once per kind of failure, not per retry
                        failure = repr(error)
                        log.warning("event relay cannot ask for its lease now: %s", failure)
                await asyncio.sleep(self._retry)
        except BaseException:
            if connection is not None:
                connection.terminate()
            raise


class PostgresRelayLease:
    """A held lease: the locking session, through which the position is read and written,
    so that a relay whose session is gone can record nothing."""

    def __init__(self, connection: asyncpg.Connection[Any], stream: str, timeout: float) -> None:
        self._connection = connection
        self._stream = stream
        self._timeout = timeout

    @property
    def held(self) -> bool:
        return not self._connection.is_closed()

    async def position(self) -> int:
        through: int = await self._ask(POSITION, self._stream)
        return through

    async def advance(self, through: int) -> None:
        await self._ask(ADVANCE, self._stream, through)

    async def backlog(self, after: int) -> Backlog:
        row = await self._ask_row(BACKLOG, after)
        return Backlog(row["events"], row["seconds"])

    async def _ask(self, query: str, *args: object) -> Any:
        row = await self._ask_row(query, *args)
        return row[0] if row is not None else None

    async def _ask_row(self, query: str, *args: object) -> Any:
        """One statement on the locking session; a failure ends the session, and the lease."""
        if self._connection.is_closed():
            raise LeaseLost("its connection is closed")
        try:
            async with asyncio.timeout(self._timeout):
                return await self._connection.fetchrow(query, *args)
        except UNAVAILABLE as error:
            self._connection.terminate()
            raise LeaseLost(f"the database did not answer: {error!r}") from error


async def _close(connection: asyncpg.Connection[Any], seconds: float) -> None:
    """End the session, and with it the lock."""
    if connection.is_closed():
        return
    try:
        async with asyncio.timeout(seconds):
            await connection.close()
    except UNAVAILABLE:
        connection.terminate()
    except asyncio.CancelledError:
        connection.terminate()
        raise
