"""Applying a batch of wallet runs in one statement: one round trip, one commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple
from uuid import UUID

import asyncpg

from wallet.adapters.group_commit import BatchOutcome, EntryWritten, Planner, Run, RunApplied
from wallet.adapters.json_metadata import metadata_from_json, metadata_to_json
from wallet.adapters.postgres.connections import bounded_connection, transaction_if
from wallet.adapters.postgres.unnest import (
    Bigint,
    Bytea,
    Integer,
    JsonText,
    Text,
    Uuid,
    parameters,
    placeholders,
)
from wallet.domain.batch import decided_outcome

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection


class _RunRow(NamedTuple):
    """A wallet's run: its net change, its accepted count, the range where its plan holds."""

    wallet_id: Uuid
    net: Bigint
    applied: Integer
    lowest: Bigint
    highest: Bigint


class _AcceptedRow(NamedTuple):
    """An accepted operation: the entry to write, and its place among its run's entries."""

    id: Uuid
    wallet_id: Uuid
    operation_type: Text
    amount: Bigint
    offset_after: Bigint
    position: Integer
    reference: Text | None
    metadata: JsonText  # cast to jsonb as it is written


class _KeyRow(NamedTuple):
    """An operation under an idempotency key: the outcome to record for it."""

    key: Text
    fingerprint: Bytea
    request_id: Text
    outcome: Text
    wallet_id: Uuid
    operation_id: Uuid | None  # None: refused, recorded with the balance it saw
    offset_before: Bigint
    amount: Bigint


@dataclass(frozen=True, slots=True)
class _BatchInputs:
    """What the batch statement reads; each field is the table (or array) of its name."""

    runs: list[_RunRow]
    accepted: list[_AcceptedRow]
    to_lock: list[Uuid]  # the wallets with an accepted operation
    keys: list[_KeyRow]


# A run with accepted operations locks its wallet (found through the primary key), moves
# the balance by the run's net change only while it lies in the planned range, and
# writes its entries a microsecond apart after the wallet's previous one. The lock is
# the one the UPDATE takes (FOR NO KEY UPDATE), which the foreign-key checks of ledger
# inserts do not conflict with; how a wallet locked by another transaction is met is
# the {locked} part, below. A run with nothing accepted only checks the range. Each
# operation under a key has its outcome recorded for the runs that were settled (a
# refusal with the balance it saw); the keys recorded are returned on every row. Each
# run settled is answered with the wallet as the run left it (its metadata too), the
# balance it started from and its entries as written, each with the version it gave the
# wallet.
_APPLY_RUNS = """
WITH runs AS (
    SELECT * FROM {runs}
), locked AS (
    {locked}
), busy AS (
    SELECT id FROM wallets WHERE id = ANY({to_lock}) AND id NOT IN (SELECT id FROM locked)
), changed AS (
    UPDATE wallets w
       SET balance = w.balance + r.net,
           version = w.version + r.applied,
           updated_at = greatest(clock_timestamp(), w.updated_at + interval '1 microsecond')
                        + (r.applied - 1) * interval '1 microsecond'
      FROM runs r
     WHERE w.id = r.wallet_id AND w.id IN (SELECT id FROM locked)
       AND w.balance BETWEEN r.lowest AND r.highest
    RETURNING w.id, w.balance - r.net AS start_balance, w.balance, w.currency, w.version,
              w.created_at, w.updated_at, w.metadata, r.applied
), checked AS (
    SELECT w.id, w.balance AS start_balance, w.balance, w.version, w.created_at, w.updated_at,
           w.metadata
      FROM wallets w JOIN runs r ON r.wallet_id = w.id
     WHERE r.applied = 0 AND w.balance BETWEEN r.lowest AND r.highest
), written AS (
    SELECT accepted.id, accepted.wallet_id, accepted.operation_type, accepted.amount,
           accepted.position, accepted.reference, accepted.metadata::jsonb AS metadata,
           c.start_balance + accepted.offset_after AS balance_after,
           c.updated_at - (c.applied - 1 - accepted.position) * interval '1 microsecond'
               AS created_at,
           c.version - c.applied + 1 + accepted.position AS version, c.currency
      FROM {accepted}
      JOIN changed c ON c.id = accepted.wallet_id
), recorded AS (
    INSERT INTO operations
           (id, wallet_id, operation_type, amount, balance_after, currency, created_at,
            reference, metadata)
    SELECT id, wallet_id, operation_type, amount, balance_after, currency, created_at,
           reference, metadata
      FROM written
), settled AS (
    SELECT id, start_balance FROM changed
    UNION ALL
    SELECT id, start_balance FROM checked
), keyed AS (
    INSERT INTO idempotency_keys
           (key, fingerprint, request_id, outcome, wallet_id, operation_id, balance_before, amount)
    SELECT keys.key, keys.fingerprint, keys.request_id, keys.outcome, keys.wallet_id,
           keys.operation_id,
           CASE WHEN keys.operation_id IS NULL THEN s.start_balance + keys.offset_before END,
           CASE WHEN keys.operation_id IS NULL THEN keys.amount END
      FROM {keys}
      JOIN settled s ON s.id = keys.wallet_id
    ON CONFLICT (key) DO NOTHING
    RETURNING key
), entries AS (
    SELECT wallet_id,
           array_agg(id ORDER BY position) AS entry_ids,
           array_agg(created_at ORDER BY position) AS entry_times,
           array_agg(balance_after ORDER BY position) AS entry_balances,
           array_agg(version ORDER BY position) AS entry_versions
      FROM written
     GROUP BY wallet_id
), answered AS (
    SELECT id, start_balance, balance, version, created_at, updated_at, metadata,
           false AS busy
      FROM changed
    UNION ALL
    SELECT id, start_balance, balance, version, created_at, updated_at, metadata,
           false AS busy
      FROM checked
    UNION ALL
    SELECT id, NULL, NULL, NULL, NULL, NULL, NULL, true AS busy FROM busy
)
SELECT a.id AS wallet_id, a.start_balance, a.balance, a.version, a.created_at, a.updated_at,
       a.metadata, a.busy, e.entry_ids, e.entry_times, e.entry_balances, e.entry_versions,
       (SELECT array_agg(key) FROM keyed) AS keys
  FROM answered a LEFT JOIN entries e ON e.wallet_id = a.id
"""

# Waited for briefly, in id order (so concurrent batches never deadlock): another
# process's batch holds a hot wallet's row for a millisecond or so, and waiting is far
# cheaper than leaving the wallet out. A lock held past the wait fails the statement
# (LockNotAvailable); the batch is then applied again with the next form.
_WAITING_BRIEFLY = """SELECT id FROM wallets
     WHERE id = ANY({to_lock}) AND set_config('lock_timeout', '100ms', true) <> ''
     ORDER BY id FOR NO KEY UPDATE"""
# Never waited for: a wallet another transaction holds is left untouched and returned
# as busy, so one row held locked cannot stall everyone else's operations.
_SKIPPING_LOCKED = "SELECT id FROM wallets WHERE id = ANY({to_lock}) FOR NO KEY UPDATE SKIP LOCKED"


def _statement(locked: str) -> str:
    """The batch statement with its ``locked`` part, its inputs' SQL in place."""
    statement = _APPLY_RUNS.replace("{locked}", locked)
    for name, sql in placeholders(_BatchInputs).items():
        statement = statement.replace("{" + name + "}", sql)
    return statement


APPLY_RUNS = _statement(_WAITING_BRIEFLY)
APPLY_RUNS_SKIPPING_LOCKED = _statement(_SKIPPING_LOCKED)

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
            applied = [_run_applied(row) for row in rows if not row["busy"]]
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
        return BatchOutcome([_run_applied(row) for row in rows], {})


async def _apply(
    connection: Connection, runs: Sequence[Run], statement: str
) -> list[asyncpg.Record]:
    """The batch statement's rows: one per run applied, found still valid, or busy."""
    rows: list[asyncpg.Record] = await connection.fetch(statement, *parameters(_batch_inputs(runs)))
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


def _run_applied(row: asyncpg.Record) -> RunApplied:
    entries = [
        EntryWritten(operation_id, created_at, balance_after, version)
        for operation_id, created_at, balance_after, version in zip(
            row["entry_ids"] or (),
            row["entry_times"] or (),
            row["entry_balances"] or (),
            row["entry_versions"] or (),
            strict=True,
        )
    ]
    return RunApplied(
        wallet_id=row["wallet_id"],
        start_balance=row["start_balance"],
        balance=row["balance"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        entries=entries,
        metadata=metadata_from_json(row["metadata"]),
    )


def _batch_inputs(runs: Sequence[Run]) -> _BatchInputs:
    """The statement's inputs: each run, each accepted operation with its place in its
    run, the wallets to lock, and each operation under a key."""
    inputs = _BatchInputs(runs=[], accepted=[], to_lock=[], keys=[])
    for run in runs:
        plan = run.plan
        inputs.runs.append(
            _RunRow(
                wallet_id=run.wallet_id,
                net=plan.net,
                applied=plan.accepted,
                lowest=plan.lowest,
                highest=plan.highest,
            )
        )
        if plan.accepted:
            inputs.to_lock.append(run.wallet_id)
        position = 0
        for decision, operation_id, idempotency in zip(
            plan.decisions, run.operation_ids, run.idempotencies, strict=True
        ):
            request = decision.request
            if idempotency is not None:
                inputs.keys.append(
                    _KeyRow(
                        key=idempotency.key,
                        fingerprint=idempotency.fingerprint,
                        request_id=idempotency.request_id,
                        outcome=decided_outcome(decision).value,
                        wallet_id=run.wallet_id,
                        operation_id=operation_id if decision.accepted else None,
                        offset_before=decision.offset_before,
                        amount=request.amount.minor,
                    )
                )
            if decision.accepted:
                inputs.accepted.append(
                    _AcceptedRow(
                        id=operation_id,
                        wallet_id=run.wallet_id,
                        operation_type=request.type.value,
                        amount=request.amount.minor,
                        offset_after=decision.offset_after,
                        position=position,
                        reference=request.reference,
                        metadata=metadata_to_json(request.metadata),
                    )
                )
                position += 1
    return inputs
