"""The wallet repository on PostgreSQL: every write is one atomic statement."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from wallet.adapters.ids import time_ordered_uuids
from wallet.adapters.postgres.pool import connection_from
from wallet.adapters.turns import Turns
from wallet.deadlines import deadline_within, seconds_within
from wallet.domain.errors import (
    BalanceLimitExceeded,
    IdempotencyKeyTaken,
    InsufficientFunds,
    StorageUnavailable,
    WalletNotFound,
)
from wallet.domain.idempotency import Idempotency, Outcome, Recorded, refusal_outcome
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

CREATE_WALLET = """
WITH locked AS (
    SELECT pg_advisory_xact_lock_shared($2)
), stamped AS (
    SELECT clock_timestamp() AS at FROM locked
)
INSERT INTO wallets (id, created_at, updated_at)
SELECT $1, at, at FROM stamped
RETURNING id, balance, version, created_at, updated_at
"""

GET_WALLET = "SELECT id, balance, version, created_at, updated_at FROM wallets WHERE id = $1"
LOCK_WALLET = "SELECT balance FROM wallets WHERE id = $1 FOR UPDATE"

WALLET_EXISTS = "SELECT EXISTS (SELECT 1 FROM wallets WHERE id = $1)"

LOCK_WALLET_LIST = "SELECT pg_advisory_xact_lock($1)"

LIST_WALLETS_FIRST = """
SELECT id, balance, version, created_at, updated_at FROM wallets
ORDER BY created_at, id
LIMIT $1
"""

LIST_WALLETS_AFTER = """
SELECT id, balance, version, created_at, updated_at FROM wallets
WHERE (created_at, id) > ($2, $3)
ORDER BY created_at, id
LIMIT $1
"""

# The guard in WHERE makes a refused operation change nothing; the ledger row is
# written by the same statement, so both commit or neither. Each entry's time is
# strictly after the previous one of its wallet, which keeps ledger order. A wallet
# locked by another transaction is skipped, not waited for (as if refused; the caller
# then waits for the lock inside a transaction): a statement that commits by itself
# must never be left waiting, or a connection cut at the deadline would leave it to
# apply later, unanswered.
APPLY_OPERATION = """
WITH locked AS (
    SELECT id FROM wallets WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED
), changed AS (
    UPDATE wallets
       SET balance = balance + $2,
           version = version + 1,
           updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
     WHERE id = (SELECT id FROM locked) AND balance + $2 BETWEEN 0 AND $3
    RETURNING id, balance, version, created_at, updated_at
), recorded AS (
    INSERT INTO operations (id, wallet_id, operation_type, amount, balance_after, created_at)
    SELECT $4, id, $5, $6, balance, updated_at FROM changed
)
SELECT id, balance, version, created_at, updated_at FROM changed
"""

LIST_OPERATIONS_FIRST = """
SELECT id, wallet_id, operation_type, amount, balance_after, created_at FROM operations
WHERE wallet_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2
"""

LIST_OPERATIONS_BEFORE = """
SELECT id, wallet_id, operation_type, amount, balance_after, created_at FROM operations
WHERE wallet_id = $1 AND (created_at, id) < ($3, $4)
ORDER BY created_at DESC, id DESC
LIMIT $2
"""

LOAD_SERVICE_KEY = "SELECT value FROM service_secrets WHERE name = $1"

RECORD_KEY = """
INSERT INTO idempotency_keys
       (key, fingerprint, request_id, outcome, wallet_id, operation_id, balance_before, amount)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (key) DO NOTHING
RETURNING key
"""

# A recorded answer with the immutable rows it is rebuilt from.
FIND_RECORDED = """
SELECT k.fingerprint, k.request_id, k.outcome, k.wallet_id, k.balance_before, k.amount,
       w.created_at AS wallet_created_at,
       o.id AS op_id, o.wallet_id AS op_wallet_id, o.operation_type AS op_operation_type,
       o.amount AS op_amount, o.balance_after AS op_balance_after, o.created_at AS op_created_at
  FROM idempotency_keys k
  LEFT JOIN wallets w ON k.outcome = 'CREATED' AND w.id = k.wallet_id
  LEFT JOIN operations o ON o.id = k.operation_id
 WHERE k.key = $1
"""

FORGET_KEYS = """
DELETE FROM idempotency_keys
 WHERE key IN (SELECT key FROM idempotency_keys
                WHERE created_at < now() - $1::interval
                ORDER BY created_at LIMIT $2)
"""
FORGET_BATCH = 1000

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

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection


class PostgresWalletRepository:
    """WalletRepository on an asyncpg pool; waits at most ``timeout`` seconds per call."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._turns: Turns[UUID] = Turns()  # operations on one wallet, one at a time

    async def create(self, wallet_id: UUID, idempotency: Idempotency | None = None) -> Wallet:
        async with (
            self._connection() as connection,
            transaction_if(connection, idempotency is not None),
        ):
            row = await connection.fetchrow(CREATE_WALLET, wallet_id, WALLET_LIST_LOCK)
            await _record(connection, idempotency, Outcome.CREATED, wallet_id)
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

    async def apply(
        self, wallet_id: UUID, request: OperationRequest, idempotency: Idempotency | None = None
    ) -> AppliedOperation:
        """Apply, or record and then raise the refusal (recorded under the key too).

        This process's operations on one wallet take turns (they would wait for its row
        lock one after another anyway): the others wait without a connection, so a
        wallet held locked elsewhere ties up one connection, not the pool.
        """
        (operation_id,) = time_ordered_uuids(1)
        arguments = (
            wallet_id,
            request.delta_minor,
            MAX_BALANCE.minor,
            operation_id,
            request.type.value,
            request.amount.minor,
        )
        loop = asyncio.get_running_loop()
        deadline = deadline_within(self._timeout)
        async with (
            self._turns.turn(wallet_id, deadline),
            bounded_connection(self._pool, deadline - loop.time()) as connection,
        ):
            async with transaction_if(connection, idempotency is not None):
                row = await connection.fetchrow(APPLY_OPERATION, *arguments)
                if row is not None:
                    await _record(connection, idempotency, Outcome.APPLIED, wallet_id, operation_id)
                    return _applied(row, operation_id, request)
            # Refused when it ran (or the wallet was locked elsewhere), but the balance may
            # have moved since: decide again under the wallet's row lock, where the answer
            # cannot change any more.
            async with connection.transaction():
                refusal = await self._refusal(connection, wallet_id, request)
                if refusal is None:
                    row = await connection.fetchrow(APPLY_OPERATION, *arguments)
                    assert row is not None, "allowed under the row lock"
                    await _record(connection, idempotency, Outcome.APPLIED, wallet_id, operation_id)
                    return _applied(row, operation_id, request)
                await _record(
                    connection,
                    idempotency,
                    refusal_outcome(refusal.error),
                    wallet_id,
                    balance_before=refusal.balance_before,
                    amount=request.amount.minor,
                )
        raise refusal.error  # after the transaction: the refusal itself stays recorded

    async def find_recorded(self, key: str) -> Recorded | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(FIND_RECORDED, key)
        return None if row is None else _recorded(row)

    async def forget_keys_older_than(self, age: timedelta) -> int:
        forgotten = 0
        while True:
            async with self._connection() as connection:
                status = await connection.execute(FORGET_KEYS, age, FORGET_BATCH)
            deleted = int(status.split()[-1])
            forgotten += deleted
            if deleted < FORGET_BATCH:
                return forgotten

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
            value = await connection.fetchval(LOAD_SERVICE_KEY, name)
        if value is None:
            raise LookupError(f"no service secret named {name!r}; run the migrations")
        return bytes(value)

    async def _refusal(
        self, connection: Connection, wallet_id: UUID, request: OperationRequest
    ) -> _Refusal | None:
        """Why the operation is refused, or None when the balance now lets it pass; the
        wallet stays locked until the caller's transaction ends. Raises WalletNotFound."""
        row = await connection.fetchrow(LOCK_WALLET, wallet_id)
        if row is None:
            raise WalletNotFound(wallet_id)
        try:
            next_balance(Money(row["balance"]), request)
        except (InsufficientFunds, BalanceLimitExceeded) as error:
            return _Refusal(error, row["balance"])
        return None

    def _connection(self) -> AbstractAsyncContextManager[Connection]:
        return bounded_connection(self._pool, seconds_within(self._timeout))


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


@dataclass(frozen=True, slots=True)
class _Refusal:
    error: InsufficientFunds | BalanceLimitExceeded
    balance_before: int


def transaction_if(connection: Connection, needed: bool) -> AbstractAsyncContextManager[object]:
    """A transaction when a key is recorded beside the change (its check may undo it);
    a change made in one statement needs none."""
    return connection.transaction() if needed else contextlib.nullcontext()


async def _record(
    connection: Connection,
    idempotency: Idempotency | None,
    outcome: Outcome,
    wallet_id: UUID,
    operation_id: UUID | None = None,
    balance_before: int | None = None,
    amount: int | None = None,
) -> None:
    """Record the outcome under the key; IdempotencyKeyTaken (undoing all) if it is taken."""
    if idempotency is None:
        return
    recorded = await connection.fetchval(
        RECORD_KEY,
        idempotency.key,
        idempotency.fingerprint,
        idempotency.request_id,
        outcome.value,
        wallet_id,
        operation_id,
        balance_before,
        amount,
    )
    if recorded is None:
        raise IdempotencyKeyTaken(f"the key {idempotency.key!r} was recorded meanwhile")


def _recorded(row: asyncpg.Record) -> Recorded:
    outcome = Outcome(row["outcome"])
    wallet = operation = before = amount = None
    if outcome is Outcome.CREATED:
        created = row["wallet_created_at"]
        wallet = Wallet(row["wallet_id"], Money.zero(), 0, created, created)
    elif outcome is Outcome.APPLIED:
        operation = _operation(row, prefix="op_")
    else:
        before, amount = Money(row["balance_before"]), Money(row["amount"])
    return Recorded(
        row["fingerprint"], row["request_id"], outcome, wallet, operation, before, amount
    )


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


def _operation(row: asyncpg.Record, prefix: str = "") -> Operation:
    """A ledger entry from its columns (named with ``prefix`` when joined beside others)."""
    return Operation(
        id=row[prefix + "id"],
        wallet_id=row[prefix + "wallet_id"],
        type=OperationType(row[prefix + "operation_type"]),
        amount=Money(row[prefix + "amount"]),
        balance_after=Money(row[prefix + "balance_after"]),
        created_at=row[prefix + "created_at"],
    )
