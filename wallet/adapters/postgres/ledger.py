"""The ledger on PostgreSQL, one operation per transaction: the path without group commit,
and the reading of a wallet's history."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from wallet.adapters.group_commit import PlannedBatch, movement_outcome, planned_batch
from wallet.adapters.ids import time_ordered_uuids
from wallet.adapters.json_metadata import metadata_to_json
from wallet.adapters.postgres.batch_store import PostgresBatchStore
from wallet.adapters.postgres.connections import bounded_connection, transaction_if
from wallet.adapters.postgres.idempotency_records import record_outcome
from wallet.adapters.postgres.rows import (
    HELD_NOW,
    WALLET_COLUMNS,
    held_columns,
    operation_from_row,
    wallet_from_row,
)
from wallet.adapters.postgres.transfers import find_transfer
from wallet.adapters.turns import Turns
from wallet.deadlines import deadline_within, seconds_within
from wallet.domain.currency import CURRENCIES
from wallet.domain.errors import (
    BalanceLimitExceeded,
    IdempotencyKeyTaken,
    InsufficientFunds,
    WalletNotFound,
)
from wallet.domain.idempotency import Idempotency, Outcome, refusal_outcome
from wallet.domain.model import (
    AppliedOperation,
    Operation,
    OperationRequest,
    next_balance,
)
from wallet.domain.money import Money
from wallet.domain.pagination import Position
from wallet.domain.transfers import AppliedTransfer, Transfer, TransferRequest

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection

TRANSFER_PLANS = 10  # tries of a transfer whose wallet's holds expire while it is decided
LOCK_WALLET = f"""
SELECT balance, {held_columns()} FROM wallets WHERE id = $1 FOR NO KEY UPDATE
"""  # nosec B608

# The guard in WHERE makes a refused operation change nothing (a debit may not take what
# holds reserve); the ledger row is written by the same statement, so both commit or
# neither. Each entry's time is strictly after the previous one of its wallet, which
# keeps ledger order. A wallet
# locked by another transaction is skipped, not waited for (as if refused; the caller
# then waits for the lock inside a transaction): a statement that commits by itself
# must never be left waiting, or a connection cut at the deadline would leave it to
# apply later, unanswered.
APPLY_OPERATION = f"""
WITH locked AS (
    SELECT id FROM wallets WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED
), changed AS (
    UPDATE wallets
       SET balance = balance + $2,
           version = version + 1,
           updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
     WHERE id = (SELECT id FROM locked)
       AND balance + $2 BETWEEN (CASE WHEN $2 < 0 THEN {HELD_NOW.format(wallet="wallets")}
                                      ELSE 0 END) AND $3
    RETURNING {WALLET_COLUMNS}
), recorded AS (
    INSERT INTO operations
           (id, wallet_id, operation_type, amount, balance_after, currency, created_at,
            reference, metadata)
    SELECT $4, id, $5, $6, balance, currency, updated_at, $7, $8::text::jsonb FROM changed
), announced AS (
    INSERT INTO events (type, wallet_id, subject_id, created_at)
    SELECT 'operation.applied', id, $4, updated_at FROM changed
)
SELECT * FROM changed
"""  # nosec B608

LIST_OPERATIONS_FIRST = """
SELECT id, wallet_id, operation_type, amount, balance_after, currency, created_at,
       reference, metadata, transfer_id, hold_id
  FROM operations
WHERE wallet_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2
"""

LIST_OPERATIONS_BEFORE = """
SELECT id, wallet_id, operation_type, amount, balance_after, currency, created_at,
       reference, metadata, transfer_id, hold_id
  FROM operations
WHERE wallet_id = $1 AND (created_at, id) < ($3, $4)
ORDER BY created_at DESC, id DESC
LIMIT $2
"""

# The same pages within one reference, through the index of the entries that have one.
LIST_REFERENCED_FIRST = """
SELECT id, wallet_id, operation_type, amount, balance_after, currency, created_at,
       reference, metadata, transfer_id, hold_id
  FROM operations
WHERE wallet_id = $1 AND reference = $3
ORDER BY created_at DESC, id DESC
LIMIT $2
"""

LIST_REFERENCED_BEFORE = """
SELECT id, wallet_id, operation_type, amount, balance_after, currency, created_at,
       reference, metadata, transfer_id, hold_id
  FROM operations
WHERE wallet_id = $1 AND reference = $3 AND (created_at, id) < ($4, $5)
ORDER BY created_at DESC, id DESC
LIMIT $2
"""

WALLET_EXISTS = "SELECT EXISTS (SELECT 1 FROM wallets WHERE id = $1)"
# The wallet's currency and the balance after its last entry at or before $2: one step
# down the history index (wallet_id, created_at DESC, id DESC). No row: no such wallet.
BALANCE_AT = """
SELECT w.currency,
       (SELECT o.balance_after FROM operations o
         WHERE o.wallet_id = w.id AND o.created_at <= $2
         ORDER BY o.created_at DESC, o.id DESC
         LIMIT 1) AS balance
  FROM wallets w
 WHERE w.id = $1
"""


class PostgresLedger:
    """Ledger on an asyncpg pool, one operation per transaction; waits at most ``timeout``
    seconds per call."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._turns: Turns[UUID] = Turns()  # operations on one wallet, one at a time
        self._batches = PostgresBatchStore(pool, timeout)

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
            request.amount.currency.max_balance_minor,
            operation_id,
            request.type.value,
            request.amount.minor,
            request.reference,
            metadata_to_json(request.metadata),
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
                    await record_outcome(
                        connection, idempotency, Outcome.APPLIED, wallet_id, operation_id
                    )
                    return _applied(row, operation_id, request)
            # Refused when it ran (or the wallet was locked elsewhere), but the balance may
            # have moved since: decide again under the wallet's row lock, where the answer
            # cannot change any more.
            async with connection.transaction():
                refusal = await self._refusal(connection, wallet_id, request)
                if refusal is None:
                    row = await connection.fetchrow(APPLY_OPERATION, *arguments)
                    assert row is not None, "allowed under the row lock"
                    await record_outcome(
                        connection, idempotency, Outcome.APPLIED, wallet_id, operation_id
                    )
                    return _applied(row, operation_id, request)
                await record_outcome(
                    connection,
                    idempotency,
                    refusal_outcome(refusal.error),
                    wallet_id,
                    balance_before=refusal.balance_before,
                    amount=request.amount.minor,
                    held_before=refusal.held,
                )
        raise refusal.error  # after the transaction: the refusal itself stays recorded

    async def transfer(
        self, transfer_id: UUID, request: TransferRequest, idempotency: Idempotency | None = None
    ) -> AppliedTransfer:
        """Decide and apply the transfer under both wallets' row locks, taken in id order
        (so that no two transfers ever wait for each other in a cycle); one transaction,
        with its outcome recorded under the key."""
        legs = request.legs(transfer_id)
        planned: list[PlannedBatch] = []

        def plan(balances: Mapping[UUID, int], held: Mapping[UUID, int]) -> PlannedBatch:
            for wallet_id, _ in legs:
                if wallet_id not in balances:
                    raise WalletNotFound(wallet_id)
            planned.append(planned_batch([legs], balances, [idempotency], held))
            return planned[-1]

        wallet_ids = sorted({leg.wallet_id for leg in legs})
        for _ in range(TRANSFER_PLANS):  # again, should a hold keep expiring meanwhile
            outcome = await self._batches.apply_batch_locked(wallet_ids, plan)
            if not outcome.balances:
                break
        if outcome.taken:
            raise IdempotencyKeyTaken(f"the key {idempotency and idempotency.key!r} is recorded")
        applied = {run.wallet_id: run for run in outcome.applied}
        out, into = movement_outcome(legs, planned[-1].plan.decisions[0], applied)
        transfer = request.made(transfer_id, (out.operation, into.operation))
        return AppliedTransfer(transfer, (out.wallet, into.wallet))

    async def _refusal(
        self, connection: Connection, wallet_id: UUID, request: OperationRequest
    ) -> _Refusal | None:
        """Why the operation is refused, or None when the balance now lets it pass; the
        wallet stays locked until the caller's transaction ends. Raises WalletNotFound."""
        row = await connection.fetchrow(LOCK_WALLET, wallet_id)
        if row is None:
            raise WalletNotFound(wallet_id)
        held = row["held_now"]
        try:
            next_balance(Money(row["balance"], request.amount.currency), request, held)
        except (InsufficientFunds, BalanceLimitExceeded) as error:
            return _Refusal(error, row["balance"], held)
        return None


class PostgresHistory:
    """History on an asyncpg pool; waits at most ``timeout`` seconds per call."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout

    async def list_operations(
        self, wallet_id: UUID, limit: int, before: Position | None, reference: str | None = None
    ) -> list[Operation]:
        statement, arguments = _history_query(wallet_id, limit, before, reference)
        async with self._connection() as connection:
            rows = await connection.fetch(statement, *arguments)
            if not rows and not await connection.fetchval(WALLET_EXISTS, wallet_id):
                raise WalletNotFound(wallet_id)
        return [operation_from_row(row) for row in rows]

    async def find_transfer(self, transfer_id: UUID) -> Transfer | None:
        async with self._connection() as connection:
            return await find_transfer(connection, transfer_id)

    async def balance_at(self, wallet_id: UUID, at: datetime) -> Money:
        async with self._connection() as connection:
            row = await connection.fetchrow(BALANCE_AT, wallet_id, at)
        if row is None:
            raise WalletNotFound(wallet_id)
        return Money(row["balance"] or 0, CURRENCIES[row["currency"]])

    def _connection(self) -> AbstractAsyncContextManager[Connection]:
        return bounded_connection(self._pool, seconds_within(self._timeout))


def _history_query(
    wallet_id: UUID, limit: int, before: Position | None, reference: str | None
) -> tuple[str, tuple[object, ...]]:
    """The statement that reads this page of the history, and its arguments: one statement
    per shape, so each keeps a plan that fits it."""
    after = () if before is None else (before.created_at, before.id)
    if reference is None:
        statement = LIST_OPERATIONS_FIRST if before is None else LIST_OPERATIONS_BEFORE
        return statement, (wallet_id, limit, *after)
    statement = LIST_REFERENCED_FIRST if before is None else LIST_REFERENCED_BEFORE
    return statement, (wallet_id, limit, reference, *after)


@dataclass(frozen=True, slots=True)
class _Refusal:
    error: InsufficientFunds | BalanceLimitExceeded
    balance_before: int
    held: int


def _applied(
    row: asyncpg.Record, operation_id: UUID, request: OperationRequest
) -> AppliedOperation:
    wallet = wallet_from_row(row)
    operation = request.entry(operation_id, wallet.id, wallet.balance, wallet.updated_at)
    return AppliedOperation(wallet, operation)
