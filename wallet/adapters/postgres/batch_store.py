"""Applying a batch of wallet runs in one statement: one round trip, one commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

from wallet.adapters.group_commit import BatchOutcome, Run, RunApplied
from wallet.adapters.postgres.repository import UNAVAILABLE
from wallet.domain.errors import StorageUnavailable

# $1..$5 describe each wallet's run, $6..$11 each accepted operation, $12 lists the
# wallets with an accepted operation (found through the primary key). A run with
# accepted operations locks its wallet (all in id order, so concurrent batches never
# deadlock), moves the balance by the run's net change only while it lies in the
# planned range, and stamps its entries a microsecond apart after the wallet's
# previous one. A run with nothing accepted only checks the range.
APPLY_RUNS = """
WITH runs AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::integer[], $4::bigint[], $5::bigint[])
        AS r(wallet_id, net, applied, lowest, highest)
), locked AS (
    SELECT id FROM wallets WHERE id = ANY($12::uuid[]) ORDER BY id FOR UPDATE
), changed AS (
    UPDATE wallets w
       SET balance = w.balance + r.net,
           version = w.version + r.applied,
           updated_at = greatest(clock_timestamp(), w.updated_at + interval '1 microsecond')
                        + (r.applied - 1) * interval '1 microsecond'
      FROM runs r
     WHERE w.id = r.wallet_id AND w.id IN (SELECT id FROM locked)
       AND w.balance BETWEEN r.lowest AND r.highest
    RETURNING w.id, w.balance - r.net AS start_balance, w.version, w.created_at, w.updated_at,
              r.applied
), checked AS (
    SELECT w.id, w.balance AS start_balance, w.version, w.created_at, w.updated_at, 0 AS applied
      FROM wallets w JOIN runs r ON r.wallet_id = w.id
     WHERE r.applied = 0 AND w.balance BETWEEN r.lowest AND r.highest
), recorded AS (
    INSERT INTO operations (id, wallet_id, operation_type, amount, balance_after, created_at)
    SELECT o.id, o.wallet_id, o.operation_type, o.amount, c.start_balance + o.offset_after,
           c.updated_at - (c.applied - 1 - o.position) * interval '1 microsecond'
      FROM unnest($6::uuid[], $7::uuid[], $8::text[], $9::bigint[], $10::bigint[], $11::integer[])
           AS o(id, wallet_id, operation_type, amount, offset_after, position)
      JOIN changed c ON c.id = o.wallet_id
)
SELECT id AS wallet_id, start_balance, version, created_at, updated_at FROM changed
UNION ALL
SELECT id AS wallet_id, start_balance, version, created_at, updated_at FROM checked
"""

READ_BALANCES = "SELECT id, balance FROM wallets WHERE id = ANY($1::uuid[])"


class PostgresBatchStore:
    """BatchStore on an asyncpg pool; waits at most ``timeout`` seconds per batch."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout

    async def apply_runs(self, runs: Sequence[Run]) -> BatchOutcome:
        try:
            async with asyncio.timeout(self._timeout), self._pool.acquire() as connection:
                rows = await connection.fetch(APPLY_RUNS, *_arrays(runs))
                applied = [RunApplied(**row) for row in rows]
                done = {run.wallet_id for run in applied}
                stale = [run.wallet_id for run in runs if run.wallet_id not in done]
                found = await connection.fetch(READ_BALANCES, stale) if stale else []
                balances = {row["id"]: row["balance"] for row in found}
        except UNAVAILABLE as error:
            raise StorageUnavailable("the database is unavailable") from error
        return BatchOutcome(applied, balances)


def _arrays(runs: Sequence[Run]) -> list[list[object]]:
    """The statement's arrays: five per run, six per accepted operation, the wallets to lock."""
    arrays: list[list[object]] = [[] for _ in range(12)]
    per_run, per_operation, to_lock = arrays[:5], arrays[5:11], arrays[11]
    for run in runs:
        plan = run.plan
        _append(per_run, run.wallet_id, plan.net, plan.accepted, plan.lowest, plan.highest)
        if plan.accepted:
            to_lock.append(run.wallet_id)
        position = 0
        for decision, operation_id in zip(plan.decisions, run.operation_ids, strict=True):
            if decision.accepted:
                request = decision.request
                _append(
                    per_operation,
                    operation_id,
                    run.wallet_id,
                    request.type.value,
                    request.amount.minor,
                    decision.offset_after,
                    position,
                )
                position += 1
    return arrays


def _append(arrays: list[list[object]], *values: object) -> None:
    for array, value in zip(arrays, values, strict=True):
        array.append(value)
