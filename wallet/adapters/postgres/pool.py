"""The asyncpg connection pool as a resource: opened on start, closed on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from wallet.metrics import waiting_for_connection

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Skip asyncpg's per-release reset query: one round trip saved per request.

    Safe because the service leaves no session state behind: no session advisory
    locks, LISTENs, cursors or SETs outside a transaction (an open transaction is
    still rolled back by the pool itself).
    """


# Every statement is prepared once per connection and found through primary keys or
# the history index; a generic plan is as good as a custom one and saves planning
# (about 0.7 ms for the batch statement) on every execution.
SERVER_SETTINGS = {"application_name": "wallet", "plan_cache_mode": "force_generic_plan"}
# PgBouncer refuses startup parameters it does not track (application_name it does).
# Without the statement cache every execution is parsed and planned anew anyway, so
# plan_cache_mode would save nothing there.
PGBOUNCER_SERVER_SETTINGS = {"application_name": "wallet"}
STATEMENT_CACHE_SIZE = 100  # asyncpg's default


async def open_pool(
    dsn: str, min_size: int, max_size: int, connect_timeout: float, pgbouncer: bool = False
) -> AsyncIterator[asyncpg.Pool]:
    """With ``pgbouncer``, fit PgBouncer's transaction pooling: nothing prepared is kept.

    asyncpg then prepares each statement unnamed, in the same exchange that runs it,
    so the server connection PgBouncer lends for that exchange has everything it needs.
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout,
        reset=_keep_session,
        statement_cache_size=0 if pgbouncer else STATEMENT_CACHE_SIZE,
        server_settings=PGBOUNCER_SERVER_SETTINGS if pgbouncer else SERVER_SETTINGS,
    )
    try:
        yield pool
    finally:
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning("connections still busy after %.0f s; terminating them", CLOSE_TIMEOUT)
            pool.terminate()


@asynccontextmanager
async def connection_from(pool: asyncpg.Pool, deadline: float) -> AsyncIterator[Connection]:
    """A connection of the pool, counted among the waiting until the pool hands it over.

    One still held at ``deadline`` (the loop's clock) is terminated there, and the pool
    replaces it: releasing it gracefully would wait for the server to acknowledge the
    cancelled query, which a frozen server never does. Whatever awaits it then fails
    at once, the release included.
    """
    with waiting_for_connection():
        connection = await pool.acquire()
    cutoff = asyncio.get_running_loop().call_at(deadline, _terminate, connection)
    try:
        yield connection
    finally:
        try:
            await pool.release(connection)
        finally:
            cutoff.cancel()


def _terminate(connection: Connection) -> None:
    """Close the socket without a word to the server; nothing if it is back in the pool."""
    with contextlib.suppress(asyncpg.InterfaceError):  # released: no longer ours to close
        connection.terminate()
