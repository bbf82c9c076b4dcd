"""Idempotency records on PostgreSQL: written beside each effect, read to answer repeats."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from wallet.adapters.json_metadata import metadata_from_json
from wallet.adapters.postgres.connections import bounded_connection
from wallet.adapters.postgres.hold_reads import find_capture, find_hold
from wallet.adapters.postgres.rows import operation_from_row
from wallet.adapters.postgres.transfers import find_transfer
from wallet.deadlines import seconds_within
from wallet.domain.currency import CURRENCIES
from wallet.domain.errors import IdempotencyKeyTaken
from wallet.domain.idempotency import Idempotency, Outcome, Recorded
from wallet.domain.model import Wallet
from wallet.domain.money import Money

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection

RECORD_KEY = """
INSERT INTO idempotency_keys
       (key, fingerprint, request_id, outcome, wallet_id, operation_id, balance_before, amount,
        transfer_id, held_before, hold_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (key) DO NOTHING
RETURNING key
"""

# A recorded answer with the immutable rows it is rebuilt from.
FIND_RECORDED = """
SELECT k.fingerprint, k.request_id, k.outcome, k.wallet_id, k.balance_before, k.amount,
       k.transfer_id, k.held_before, k.hold_id,
       w.created_at AS wallet_created_at, w.currency AS wallet_currency,
       w.metadata AS wallet_metadata,
       o.id AS op_id, o.wallet_id AS op_wallet_id, o.operation_type AS op_operation_type,
       o.amount AS op_amount, o.balance_after AS op_balance_after, o.currency AS op_currency,
       o.created_at AS op_created_at, o.reference AS op_reference, o.metadata AS op_metadata,
       o.transfer_id AS op_transfer_id, o.hold_id AS op_hold_id
  FROM idempotency_keys k
  JOIN wallets w ON w.id = k.wallet_id
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


class PostgresIdempotencyRecords:
    """IdempotencyRecords on an asyncpg pool; waits at most ``timeout`` seconds per call."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout

    async def find_recorded(self, key: str) -> Recorded | None:
        async with bounded_connection(self._pool, seconds_within(self._timeout)) as connection:
            row = await connection.fetchrow(FIND_RECORDED, key)
            if row is None:
                return None
            transfer = hold = captured = None
            if row["hold_id"] is not None:
                hold = await find_hold(connection, row["hold_id"])
                assert hold is not None, "holds are kept"
                if row["outcome"] == Outcome.CAPTURED:
                    captured = await find_capture(connection, hold)
            elif row["transfer_id"] is not None:
                transfer = await find_transfer(connection, row["transfer_id"])
        return replace(_recorded(row), transfer=transfer, hold=hold, captured=captured)

    async def forget_keys_older_than(self, age: timedelta) -> int:
        forgotten = 0
        while True:
            async with bounded_connection(self._pool, seconds_within(self._timeout)) as connection:
                status = await connection.execute(FORGET_KEYS, age, FORGET_BATCH)
            deleted = int(status.split()[-1])
            forgotten += deleted
            if deleted < FORGET_BATCH:
                return forgotten


async def record_outcome(
    connection: Connection,
    idempotency: Idempotency | None,
    outcome: Outcome,
    wallet_id: UUID,
    operation_id: UUID | None = None,
    balance_before: int | None = None,
    amount: int | None = None,
    transfer_id: UUID | None = None,
    held_before: int | None = None,
    hold_id: UUID | None = None,
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
        transfer_id,
        held_before,
        hold_id,
    )
    if recorded is None:
        raise IdempotencyKeyTaken(f"the key {idempotency.key!r} was recorded meanwhile")


def _recorded(row: asyncpg.Record) -> Recorded:
    outcome = Outcome(row["outcome"])
    currency = CURRENCIES[row["wallet_currency"]]
    wallet = operation = before = amount = None
    if outcome is Outcome.CREATED:
        created = row["wallet_created_at"]
        metadata = metadata_from_json(row["wallet_metadata"])
        wallet = Wallet(row["wallet_id"], Money.zero(currency), 0, created, created, metadata)
    elif outcome in (Outcome.APPLIED, Outcome.CAPTURED):
        operation = operation_from_row(row, prefix="op_")
    elif outcome in (Outcome.INSUFFICIENT_FUNDS, Outcome.BALANCE_LIMIT_EXCEEDED):
        before, amount = Money(row["balance_before"], currency), Money(row["amount"], currency)
    return Recorded(
        row["fingerprint"],
        row["request_id"],
        outcome,
        wallet,
        operation,
        before,
        amount,
        held_before=row["held_before"] or 0,
    )
