"""Applying a batch of wallet runs in one statement: one round trip, one commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from wallet.adapters.group_commit import BatchOutcome, Planner, Run, RunApplied
from wallet.adapters.postgres.repository import bounded_connection, transaction_if
from wallet.domain.batch import decided_outcome

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection

# $1..$5 describe each wallet's run, $6..$11 each accepted operation, $12 lists the
# wallets with an accepted operation (found through the primary key). A run with
# accepted operations locks its wallet, moves the balance by the run's net change only
# while it lies in the planned range, and stamps its entries a microsecond apart after
# the wallet's previous one. The lock is the one the UPDATE takes (FOR NO KEY UPDATE),
# which the foreign-key checks of ledger inserts do not conflict with; how a wallet
# locked by another transaction is met is the {locked} part, below. A run with nothing
# accepted only checks the range. $13..$20 describe each operation under an idempotency
# key: its outcome is recorded for the runs that were settled (a refusal with the
# balance it saw); the keys recorded are returned on every row.
_APPLY_RUNS = """
WITH runs AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::integer[], $4::bigint[], $5::bigint[])
        AS r(wallet_id, net, applied, lowest, highest)
), locked AS (
    {locked}
), busy AS (
    SELECT id FROM wallets WHERE id = ANY($12::uuid[]) AND id NOT IN (SELECT id FROM locked)
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
), settled AS (
    SELECT id, start_balance FROM changed
    UNION ALL
    SELECT id, start_balance FROM checked
), keyed AS (
    INSERT INTO idempotency_keys
           (key, fingerprint, request_id, outcome, wallet_id, operation_id, balance_before, amount)
    SELECT k.key, k.fingerprint, k.request_id, k.outcome, k.wallet_id, k.operation_id,
           CASE WHEN k.operation_id IS NULL THEN s.start_balance + k.offset_before END,
           CASE WHEN k.operation_id IS NULL THEN k.amount END
      FROM unnest($13::text[], $14::bytea[], $15::text[], $16::text[], $17::uuid[], $18::uuid[],
                  $19::bigint[], $20::bigint[])
           AS k(key, fingerprint, request_id, outcome, wallet_id, operation_id, offset_before,
                amount)
      JOIN settled s ON s.id = k.wallet_id
    ON CONFLICT (key) DO NOTHING
    RETURNING key
), answered AS (
    SELECT id, start_balance, version, created_at, updated_at, false AS busy FROM changed
    UNION ALL
    SELECT id, start_balance, version, created_at, updated_at, false AS busy FROM checked
    UNION ALL
    SELECT id, NULL, NULL, NULL, NULL, true AS busy FROM busy
)
SELECT id AS wallet_id, start_balance, version, created_at, updated_at, busy,
       (SELECT array_agg(key) FROM keyed) AS keys
  FROM answered
"""

# Waited for briefly, in id order (so concurrent batches never deadlock): another
# process's batch holds a hot wallet's row for a millisecond or so, and waiting is far
# cheaper than leaving the wallet out. A lock held past the wait fails the statement
# (LockNotAvailable); the batch is then applied again with the next form.
APPLY_RUNS = _APPLY_RUNS.replace(
    "{locked}",
    """SELECT id FROM wallets
     WHERE id = ANY($12::uuid[]) AND set_config('lock_timeout', '100ms', true) <> ''
     ORDER BY id FOR NO KEY UPDATE""",
)
# Never waited for: a wallet another transaction holds is left untouched and returned
# as busy, so one row held locked cannot stall everyone else's operations.
APPLY_RUNS_SKIPPING_LOCKED = _APPLY_RUNS.replace(
    "{locked}", "SELECT id FROM wallets WHERE id = ANY($12::uuid[]) FOR NO KEY UPDATE SKIP LOCKED"
)

READ_BALANCES = "SELECT id, balance FROM wallets WHERE id = ANY($1::uuid[])"
LOCK_BALANCES = """
SELECT id, balance FROM wallets WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE
"""


class PostgresBatchStore:
    """BatchStore on an asyncpg pool; waits at most ``timeout`` seconds per batch.

    At most half the pool waits for row locks at a time, so however many wallets are
    held locked elsewhere, the batches still find connections.
    """

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._waiting_for_locks = asyncio.Semaphore(max(1, pool.get_max_size() // 2))

    async def apply_runs(self, runs: Sequence[Run]) -> BatchOutcome:
        keyed = any(key is not None for run in runs for key in run.idempotencies)
        async with bounded_connection(self._pool, self._timeout) as connection:
            try:
                try:
                    async with transaction_if(connection, keyed):
                        rows = await _apply(connection, runs, APPLY_RUNS)
                except asyncpg.LockNotAvailableError:  # a row held past the brief wait
                    async with transaction_if(connection, keyed):
                        rows = await _apply(connection, runs, APPLY_RUNS_SKIPPING_LOCKED)
            except _KeysTaken as taken:
                return BatchOutcome([], {}, taken.keys)
            applied = [RunApplied(*row[:5]) for row in rows if not row["busy"]]
            busy = frozenset(row["wallet_id"] for row in rows if row["busy"])
            done = {run.wallet_id for run in applied} | busy
            stale = [run.wallet_id for run in runs if run.wallet_id not in done]
            found = await connection.fetch(READ_BALANCES, stale) if stale else []
        balances = {row["id"]: row["balance"] for row in found}
        return BatchOutcome(applied, balances, busy=busy)

    async def apply_runs_locked(self, wallet_ids: Sequence[UUID], plan: Planner) -> BatchOutcome:
        async with (
            self._waiting_for_locks,
            bounded_connection(self._pool, self._timeout) as connection,
        ):
            try:
                async with connection.transaction():
                    locked = await connection.fetch(LOCK_BALANCES, list(wallet_ids))
                    runs = plan({row["id"]: row["balance"] for row in locked})
                    rows = (
                        await _apply(connection, runs, APPLY_RUNS_SKIPPING_LOCKED) if runs else []
                    )
            except _KeysTaken as taken:
                return BatchOutcome([], {}, taken.keys)
        return BatchOutcome([RunApplied(*row[:5]) for row in rows], {})


async def _apply(
    connection: Connection, runs: Sequence[Run], statement: str
) -> list[asyncpg.Record]:
    """The batch statement's rows: one per run applied, found still valid, or busy."""
    rows: list[asyncpg.Record] = await connection.fetch(statement, *_arrays(runs))
    _check_keys_recorded(runs, rows)
    return rows


class _KeysTaken(Exception):
    """Some keys were recorded by a concurrent request: roll the whole batch back."""

    def __init__(self, keys: frozenset[str]) -> None:
        super().__init__(f"{len(keys)} idempotency keys recorded meanwhile")
        self.keys = keys


def _check_keys_recorded(runs: Sequence[Run], rows: list[asyncpg.Record]) -> None:
    settled = {row["wallet_id"] for row in rows if not row["busy"]}
    expected = {
        key.key for run in runs if run.wallet_id in settled for key in run.idempotencies if key
    }
    recorded = set(rows[0]["keys"] or ()) if rows else set()
    if expected - recorded:
        raise _KeysTaken(frozenset(expected - recorded))


def _arrays(runs: Sequence[Run]) -> list[list[object]]:
    """The statement's arrays: five per run, six per accepted operation, the wallets to
    lock, and eight per operation under a key."""
    arrays: list[list[object]] = [[] for _ in range(20)]
    per_run, per_operation, to_lock, per_key = arrays[:5], arrays[5:11], arrays[11], arrays[12:]
    for run in runs:
        plan = run.plan
        _append(per_run, run.wallet_id, plan.net, plan.accepted, plan.lowest, plan.highest)
        if plan.accepted:
            to_lock.append(run.wallet_id)
        position = 0
        for decision, operation_id, idempotency in zip(
            plan.decisions, run.operation_ids, run.idempotencies, strict=True
        ):
            if idempotency is not None:
                _append(
                    per_key,
                    idempotency.key,
                    idempotency.fingerprint,
                    idempotency.request_id,
                    decided_outcome(decision).value,
                    run.wallet_id,
                    operation_id if decision.accepted else None,
                    decision.offset_before,
                    decision.request.amount.minor,
                )
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
