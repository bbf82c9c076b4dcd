"""The wallet repository on PostgreSQL: every write is one atomic statement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeAlias
from uuid import UUID, uuid4

import asyncpg

from wallet.domain.errors import StorageUnavailable, WalletNotFound
from wallet.domain.model import (
    MAX_BALANCE,
    AppliedOperation,
    Operation,
    OperationRequest,
    OperationType,
    Wallet,
    next_balance,
)
from wallet.domain.money import Money
from wallet.domain.pagination import Position

# Creating takes this lock shared and listing takes it exclusively, so a page is read
# only once every wallet stamped before it has committed: pages never skip a wallet.
WALLET_LIST_LOCK = 0x77616C6C6574_01

WALLET_COLUMNS = "id, balance, version, created_at, updated_at"

CREATE_WALLET = f"""
WITH locked AS (
    SELECT pg_advisory_xact_lock_shared($2)
), stamped AS (
    SELECT clock_timestamp() AS at FROM locked
)
INSERT INTO wallets (id, created_at, updated_at)
SELECT $1, at, at FROM stamped
RETURNING {WALLET_COLUMNS}
"""

GET_WALLET = f"SELECT {WALLET_COLUMNS} FROM wallets WHERE id = $1"

WALLET_EXISTS = "SELECT EXISTS (SELECT 1 FROM wallets WHERE id = $1)"

LOCK_WALLET_LIST = "SELECT pg_advisory_xact_lock($1)"

LIST_WALLETS_FIRST = f"""
SELECT {WALLET_COLUMNS} FROM wallets
ORDER BY created_at, id
LIMIT $1
"""

LIST_WALLETS_AFTER = f"""
SELECT {WALLET_COLUMNS} FROM wallets
WHERE (created_at, id) > ($2, $3)
ORDER BY created_at, id
LIMIT $1
"""

# The guard in WHERE makes a refused operation change nothing; the ledger row is
# written by the same statement, so both commit or neither. Each entry's time is
# strictly after the previous one of its wallet, which keeps ledger order.
APPLY_OPERATION = f"""
WITH changed AS (
    UPDATE wallets
       SET balance = balance + $2,
           version = version + 1,
           updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
     WHERE id = $1 AND balance + $2 BETWEEN 0 AND $3
    RETURNING {WALLET_COLUMNS}
), recorded AS (
    INSERT INTO operations (id, wallet_id, operation_type, amount, balance_after, created_at)
    SELECT $4, id, $5, $6, balance, updated_at FROM changed
)
SELECT {WALLET_COLUMNS} FROM changed
"""

OPERATION_COLUMNS = "id, wallet_id, operation_type, amount, balance_after, created_at"

LIST_OPERATIONS_FIRST = f"""
SELECT {OPERATION_COLUMNS} FROM operations
WHERE wallet_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2
"""

LIST_OPERATIONS_BEFORE = f"""
SELECT {OPERATION_COLUMNS} FROM operations
WHERE wallet_id = $1 AND (created_at, id) < ($3, $4)
ORDER BY created_at DESC, id DESC
LIMIT $2
"""

LOAD_SECRET = "SELECT value FROM service_secrets WHERE name = $1"

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
)

REFUSAL_RETRIES = 3

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]


class PostgresWalletRepository:
    """WalletRepository on an asyncpg pool; waits at most ``timeout`` seconds per call."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout

    async def create(self, wallet_id: UUID) -> Wallet:
        async with self._connection() as connection:
            row = await connection.fetchrow(CREATE_WALLET, wallet_id, WALLET_LIST_LOCK)
        assert row is not None, "INSERT … RETURNING returns its row"
        return _wallet(row)

    async def get(self, wallet_id: UUID) -> Wallet:
        async with self._connection() as connection:
            row = await connection.fetchrow(GET_WALLET, wallet_id)
        if row is None:
            raise WalletNotFound(wallet_id)
        return _wallet(row)

    async def list_wallets(self, limit: int, after: Position | None) -> list[Wallet]:
        async with self._connection() as connection, connection.transaction(readonly=True):
            await connection.execute(LOCK_WALLET_LIST, WALLET_LIST_LOCK)
            if after is None:
                rows = await connection.fetch(LIST_WALLETS_FIRST, limit)
            else:
                rows = await connection.fetch(LIST_WALLETS_AFTER, limit, after.created_at, after.id)
        return [_wallet(row) for row in rows]

    async def apply(self, wallet_id: UUID, request: OperationRequest) -> AppliedOperation:
        operation_id = uuid4()
        async with self._connection() as connection:
            for _ in range(REFUSAL_RETRIES):
                row = await connection.fetchrow(
                    APPLY_OPERATION,
                    wallet_id,
                    request.delta_minor,
                    MAX_BALANCE.minor,
                    operation_id,
                    request.type.value,
                    request.amount.minor,
                )
                if row is not None:
                    return _applied(row, operation_id, request)
                await self._explain_refusal(connection, wallet_id, request)
        raise StorageUnavailable("the wallet changed too often to decide; try again")

    async def list_operations(
        self, wallet_id: UUID, limit: int, before: Position | None
    ) -> list[Operation]:
        async with self._connection() as connection:
            if before is None:
                rows = await connection.fetch(LIST_OPERATIONS_FIRST, wallet_id, limit)
            else:
                rows = await connection.fetch(
                    LIST_OPERATIONS_BEFORE, wallet_id, limit, before.created_at, before.id
                )
            if not rows and not await connection.fetchval(WALLET_EXISTS, wallet_id):
                raise WalletNotFound(wallet_id)
        return [_operation(row) for row in rows]

    async def ping(self) -> bool:
        try:
            async with self._connection() as connection:
                await connection.fetchval("SELECT 1")
        except StorageUnavailable:
            return False
        return True

    async def load_secret(self, name: str) -> bytes:
        """A secret made by the migrations, shared by every process of the service."""
        async with self._connection() as connection:
            value = await connection.fetchval(LOAD_SECRET, name)
        if value is None:
            raise LookupError(f"no service secret named {name!r}; run the migrations")
        return bytes(value)

    async def _explain_refusal(
        self, connection: Connection, wallet_id: UUID, request: OperationRequest
    ) -> None:
        """Raise the domain error for a refused operation.

        Returns only when the balance has moved since the refusal so that the
        operation would now pass; the caller then tries again.
        """
        row = await connection.fetchrow(GET_WALLET, wallet_id)
        if row is None:
            raise WalletNotFound(wallet_id)
        next_balance(Money(row["balance"]), request)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        try:
            async with asyncio.timeout(self._timeout), self._pool.acquire() as connection:
                yield connection
        except UNAVAILABLE as error:
            raise StorageUnavailable("the database is unavailable") from error


def _wallet(row: asyncpg.Record) -> Wallet:
    return Wallet(
        id=row["id"],
        balance=Money(row["balance"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _applied(
    row: asyncpg.Record, operation_id: UUID, request: OperationRequest
) -> AppliedOperation:
    wallet = _wallet(row)
    operation = Operation(
        id=operation_id,
        wallet_id=wallet.id,
        type=request.type,
        amount=request.amount,
        balance_after=wallet.balance,
        created_at=wallet.updated_at,
    )
    return AppliedOperation(wallet, operation)


def _operation(row: asyncpg.Record) -> Operation:
    return Operation(
        id=row["id"],
        wallet_id=row["wallet_id"],
        type=OperationType(row["operation_type"]),
        amount=Money(row["amount"]),
        balance_after=Money(row["balance_after"]),
        created_at=row["created_at"],
    )
