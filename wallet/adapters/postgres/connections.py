"""Connections to PostgreSQL with a bound on time, and what counts as the database failing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

import asyncpg

from wallet.adapters.postgres.pool import connection_from
from wallet.deadlines import seconds_within
from wallet.domain.errors import StorageUnavailable

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection

# Errors that mean "the database cannot answer now", not "the request is wrong".
UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.QueryCanceledError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    # A connection left half-way through a query when the server went away; seen while a
    # stopped PostgreSQL comes back. The pool drops such a connection on release.
    asyncpg.InternalClientError,
)


@asynccontextmanager
async def bounded_connection(pool: asyncpg.Pool, seconds: float) -> AsyncIterator[Connection]:
    """A pooled connection for at most ``seconds``, waiting and giving it back included;
    a database failure inside becomes StorageUnavailable."""
    deadline = asyncio.get_running_loop().time() + seconds
    try:
        async with asyncio.timeout_at(deadline), connection_from(pool, deadline) as connection:
            yield connection
    except UNAVAILABLE as error:
        raise StorageUnavailable("the database is unavailable") from error


def transaction_if(connection: Connection, needed: bool) -> AbstractAsyncContextManager[object]:
    """A transaction when a key is recorded beside the change (its check may undo it);
    a change made in one statement needs none."""
    return connection.transaction() if needed else contextlib.nullcontext()


class PostgresHealth:
    """Health on an asyncpg pool: whether PostgreSQL answers within ``timeout`` seconds."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout

    async def ping(self) -> bool:
        try:
            async with bounded_connection(self._pool, seconds_within(self._timeout)) as connection:
                await connection.fetchval("SELECT 1")
        except StorageUnavailable:
            return False
        return True
