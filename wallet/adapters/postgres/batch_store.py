"""Applying a batch of wallet runs in one statement: one round trip, one commit."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple
from uuid import UUID

import asyncpg

from wallet.adapters.group_commit import (
    BatchOutcome,
    EntryWritten,
    PlannedBatch,
    Planner,
    RunApplied,
)
from wallet.adapters.json_metadata import metadata_from_json, metadata_to_json
from wallet.adapters.postgres.connections import bounded_connection, transaction_if
from wallet.adapters.postgres.rows import HELD_NOW, HELD_UNTIL, held_columns
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
from wallet.domain.batch import ACCEPTED, Decision
from wallet.domain.idempotency import Idempotency

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection


class _RunRow(NamedTuple):
    """A wallet's part of the batch: its net change, its accepted count, the range where
    its decisions hold, and the component of linked wallets it is applied with."""

    wallet_id: Uuid
    net: Bigint
    applied: Integer
    lowest: Bigint
    highest: Bigint
    component: Integer
    held: Bigint  # what the plan took holds to reserve: it holds only while they still do


class _AcceptedRow(NamedTuple):
    """An accepted leg: the entry to write, and its place among its wallet's entries."""

    id: Uuid
    wallet_id: Uuid
    operation_type: Text
    amount: Bigint
    offset_after: Bigint
    position: Integer
    arrival: Integer  # its place in the batch, in the order the movements were decided


class _LabelRow(NamedTuple):
    """What an accepted leg carries beyond its money, sent only for a leg that has any
    (most carry none: their rows cost nothing to send)."""

    id: Uuid
    reference: Text | None
    metadata: JsonText  # cast to jsonb as it is written
    transfer_id: Uuid | None


class _TransferRow(NamedTuple):
    """An accepted transfer: recorded with the ids of its two entries."""

    id: Uuid
    from_wallet_id: Uuid
    to_wallet_id: Uuid
    amount: Bigint
    reference: Text | None
    metadata: JsonText
    out_operation_id: Uuid
    in_operation_id: Uuid


class _KeyRow(NamedTuple):
    """A movement under an idempotency key: the outcome to record for it."""

    key: Text
    fingerprint: Bytea
    request_id: Text
    outcome: Text
    wallet_id: Uuid  # the first leg's; for a refusal, the wallet whose rule it broke
    operation_id: Uuid | None  # None: refused, recorded with the balance it saw
    transfer_id: Uuid | None
    offset_before: Bigint
    amount: Bigint


@dataclass(frozen=True, slots=True)
class _BatchInputs:
    """What the batch statement reads; each field is the table (or array) of its name."""

    runs: list[_RunRow]
    accepted: list[_AcceptedRow]
    labels: list[_LabelRow]
    new_transfers: list[_TransferRow]
    to_lock: list[Uuid]  # the wallets to change, and every wallet a transfer links
    keys: list[_KeyRow]


_HELD_COLUMNS = held_columns()


# The wallets to lock are locked first (found through the primary key; how one another
# transaction holds is met is the ``locked`` part, below), and each run's balance is read:
# the locked row's, else the statement's snapshot. A component is settled when every one
# of its wallets exists, was locked if it was to be, and lies in its run's range: then
# its runs move the balances by their net changes and write their entries a microsecond
# apart after each wallet's previous one, its transfers are recorded, and each of its
# movements under a key has its outcome recorded (a refusal with the balance it saw). A
# new balance is the locked balance plus the net change, never the row as the UPDATE's
# snapshot saw it: PostgreSQL checks the constraints on the value computed from the
# snapshot before it re-reads a row another transaction changed meanwhile, and that
# stale value could break them for nothing. The lock is the one an UPDATE takes (FOR NO
# KEY UPDATE). Each wallet settled is answered with its row as the batch left it, the
# balance it started from and its entries as written, each with the version it gave the
# wallet; a wallet to lock found held is answered as busy; the keys recorded are returned
# on every row.
#
# The statement is put together from the parts a batch needs (``_Shape``): PostgreSQL sets
# up every part's plan on each execution, rows or none, and most batches are deposits and
# withdrawals with no key, label or transfer.
_CHANGED = """
WITH runs AS (
    SELECT * FROM {runs}
), locked AS (
    {locked}
){seen}, changed AS (
    UPDATE wallets w
       SET balance = s.balance + s.net,
           version = w.version + s.applied,
           updated_at = greatest(clock_timestamp(), w.updated_at + interval '1 microsecond')
                        + (s.applied - 1) * interval '1 microsecond'
      FROM seen s
     WHERE w.id = s.wallet_id AND s.applied > 0 AND {settled}
    RETURNING w.id, s.balance AS start_balance, w.balance, w.currency, w.version,
              w.created_at, w.updated_at, w.metadata, s.applied, s.held_now, s.held_until
)"""
_HELD_NOW_OF_W = HELD_NOW.format(wallet="w")
_HELD_UNTIL_OF_W = HELD_UNTIL.format(wallet="w")
_SEEN = f""", seen AS (
    SELECT r.*, coalesce(l.balance, w.balance) AS balance,
           coalesce(l.held_now, {_HELD_NOW_OF_W}) AS held_now,
           CASE WHEN l.id IS NULL THEN {_HELD_UNTIL_OF_W}
                ELSE l.held_until END AS held_until,
           l.id IS NOT NULL OR r.wallet_id <> ALL({{to_lock}}) AS reachable
      FROM runs r
      LEFT JOIN locked l ON l.id = r.wallet_id
      LEFT JOIN wallets w ON w.id = r.wallet_id
), settled_components AS (
    SELECT component FROM seen GROUP BY component
    HAVING bool_and(reachable AND coalesce(balance BETWEEN lowest AND highest
                                           AND held_now = held, false))
)"""  # nosec B608
_IN_SETTLED_COMPONENT = "s.component IN (SELECT component FROM settled_components)"
# When every run is a component of its own and accepts something, every wallet is one to
# lock: its balance is the locked row's, and a run is settled when that lies in its range.
_SEEN_LOCKED = """, seen AS (
    SELECT r.*, l.balance, l.held_now, l.held_until, l.id IS NOT NULL AS reachable
      FROM runs r LEFT JOIN locked l ON l.id = r.wallet_id
)"""
_IN_RANGE = "s.reachable AND s.balance BETWEEN s.lowest AND s.highest AND s.held_now = s.held"
# A run with nothing accepted (its movements all refused) has only its range checked.
_CHECKED = """, checked AS (
    SELECT w.id, s.balance AS start_balance, s.balance, w.version, w.created_at,
           w.updated_at, w.metadata, s.held_now, s.held_until
      FROM seen s JOIN wallets w ON w.id = s.wallet_id
     WHERE s.applied = 0 AND {settled}
)"""
# Only the form that skips locked rows can find one held: the other waits, or fails.
_BUSY = """, busy AS (
    SELECT id FROM wallets WHERE id = ANY({to_lock}) AND id NOT IN (SELECT id FROM locked)
)"""
_WRITTEN = """, written AS (
    SELECT accepted.id, accepted.wallet_id, accepted.operation_type, accepted.amount,
           accepted.position, accepted.arrival, {label_columns},
           c.start_balance + accepted.offset_after AS balance_after,
           c.updated_at - (c.applied - 1 - accepted.position) * interval '1 microsecond'
               AS created_at,
           c.version - c.applied + 1 + accepted.position AS version, c.currency
      FROM {accepted}
      JOIN changed c ON c.id = accepted.wallet_id{labels_join}
), recorded AS (
    INSERT INTO operations
           (id, wallet_id, operation_type, amount, balance_after, currency, created_at,
            reference, metadata, transfer_id)
    SELECT id, wallet_id, operation_type, amount, balance_after, currency, created_at,
           reference, metadata, transfer_id
      FROM written
)"""
# Each movement's event, in the order the movements were decided (so each wallet's events
# follow its entries): a DEPOSIT's or WITHDRAW's entry, or a transfer by its payer's entry.
_ANNOUNCED_ENTRIES = """, announced AS (
    INSERT INTO events (type, wallet_id, subject_id, created_at)
    SELECT 'operation.applied', wallet_id, id, created_at FROM written ORDER BY arrival
)"""
_ANNOUNCED_MOVEMENTS = """, announced AS (
    INSERT INTO events (type, wallet_id, payee_id, subject_id, created_at)
    SELECT CASE WHEN o.transfer_id IS NULL THEN 'operation.applied'
                ELSE 'transfer.completed' END,
           o.wallet_id, i.wallet_id, coalesce(o.transfer_id, o.id), o.created_at
      FROM written o
      LEFT JOIN written i ON i.transfer_id = o.transfer_id AND i.operation_type = 'TRANSFER_IN'
     WHERE o.operation_type <> 'TRANSFER_IN'
     ORDER BY o.arrival
)"""
_LABELS = (
    "labels.reference, coalesce(labels.metadata::jsonb, jsonb_build_object()) AS metadata, "
    "labels.transfer_id"
)
_LABELS_JOIN = "\n      LEFT JOIN {labels} ON labels.id = accepted.id"
_NO_LABELS = "NULL::text AS reference, '{}'::jsonb AS metadata, NULL::uuid AS transfer_id"
_MOVED = """, moved AS (
    INSERT INTO transfers
           (id, from_wallet_id, to_wallet_id, currency, amount, reference, metadata,
            created_at, out_operation_id, in_operation_id)
    SELECT t.id, t.from_wallet_id, t.to_wallet_id, o.currency, t.amount, t.reference,
           t.metadata::jsonb, o.created_at, t.out_operation_id, t.in_operation_id
      FROM (SELECT * FROM {new_transfers}) t JOIN written o ON o.id = t.out_operation_id
)"""
_KEYED = """, settled AS (
    {settled}
), keyed AS (
    INSERT INTO idempotency_keys
           (key, fingerprint, request_id, outcome, wallet_id, operation_id, transfer_id,
            balance_before, amount, held_before)
    SELECT keys.key, keys.fingerprint, keys.request_id, keys.outcome, keys.wallet_id,
           keys.operation_id, keys.transfer_id,
           CASE WHEN keys.operation_id IS NULL THEN s.start_balance + keys.offset_before END,
           CASE WHEN keys.operation_id IS NULL THEN keys.amount END,
           CASE WHEN keys.operation_id IS NULL THEN s.held_now END
      FROM {keys}
      JOIN settled s ON s.id = keys.wallet_id
    ON CONFLICT (key) DO NOTHING
    RETURNING key
)"""
_ANSWERED = """, entries AS (
    SELECT wallet_id,
           array_agg(id ORDER BY position) AS entry_ids,
           array_agg(created_at ORDER BY position) AS entry_times,
           array_agg(balance_after ORDER BY position) AS entry_balances,
           array_agg(version ORDER BY position) AS entry_versions
      FROM written
     GROUP BY wallet_id
), answered AS (
    {answered}
)
SELECT a.id AS wallet_id, a.start_balance, a.balance, a.version, a.created_at, a.updated_at,
       a.metadata, a.held_now, a.held_until, a.busy,
       e.entry_ids, e.entry_times, e.entry_balances, e.entry_versions,
       {keys_recorded} AS keys
  FROM answered a LEFT JOIN entries e ON e.wallet_id = a.id
"""
_SETTLED = {
    "changed": "SELECT id, start_balance, held_now FROM changed",
    "checked": "SELECT id, start_balance, held_now FROM checked",
}
_ANSWERS = {
    "changed": "SELECT id, start_balance, balance, version, created_at, updated_at, metadata,"
    " held_now, held_until, false AS busy FROM changed",
    "checked": "SELECT id, start_balance, balance, version, created_at, updated_at, metadata,"
    " held_now, held_until, false AS busy FROM checked",
    "busy": "SELECT id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, true AS busy FROM busy",
}

# Waited for briefly, in id order (so concurrent batches never deadlock): another
# process's batch holds a hot wallet's row for a millisecond or so, and waiting is far
# cheaper than leaving the wallet out. A lock held past the wait fails the statement
# (LockNotAvailable); the batch is then applied again with the next form.
_WAITING_BRIEFLY = """SELECT id, balance, {held_columns} FROM wallets
     WHERE id = ANY({to_lock}) AND set_config('lock_timeout', '100ms', true) <> ''
     ORDER BY id FOR NO KEY UPDATE"""
# Never waited for: a wallet another transaction holds is left untouched and returned
# as busy, so one row held locked cannot stall everyone else's operations.
_SKIPPING_LOCKED = (
    "SELECT id, balance, {held_columns} FROM wallets"
    " WHERE id = ANY({to_lock}) FOR NO KEY UPDATE SKIP LOCKED"
)


@dataclass(frozen=True, slots=True)
class _Shape:
    """The parts of the batch statement a batch needs."""

    skipping_locked: bool  # the form that leaves held rows alone (and answers them as busy)
    linked: bool  # a component of several wallets (a transfer's two)
    checking: bool  # a run with nothing accepted
    labelled: bool  # a leg with a reference, metadata or a transfer
    transferring: bool  # a transfer to record
    keyed: bool  # a movement under an idempotency key

    @classmethod
    def of(cls, inputs: _BatchInputs, skipping_locked: bool) -> _Shape:
        return cls(
            skipping_locked,
            linked=len({run.component for run in inputs.runs}) < len(inputs.runs),
            checking=any(not run.applied for run in inputs.runs),
            labelled=bool(inputs.labels),
            transferring=bool(inputs.new_transfers),
            keyed=bool(inputs.keys),
        )


class _Statement(NamedTuple):
    sql: str
    reads: frozenset[str]  # the inputs it reads: only those are sent


@functools.cache
def _statement(shape: _Shape) -> _Statement:
    """The batch statement with the parts ``shape`` needs, its inputs' SQL in place."""
    reads = {"runs", "accepted", "to_lock"}
    sql = _CHANGED.replace(
        "{locked}", _SKIPPING_LOCKED if shape.skipping_locked else _WAITING_BRIEFLY
    ).replace("{held_columns}", _HELD_COLUMNS)
    lone_runs = not (shape.linked or shape.checking)
    sql = sql.replace("{seen}", _SEEN_LOCKED if lone_runs else _SEEN)
    settled = ["changed"] + (["checked"] if shape.checking else [])
    answered = settled + (["busy"] if shape.skipping_locked else [])
    if shape.checking:
        sql += _CHECKED
    if shape.skipping_locked:
        sql += _BUSY
    if shape.labelled:
        reads.add("labels")
        sql += _WRITTEN.replace("{label_columns}", _LABELS).replace("{labels_join}", _LABELS_JOIN)
    else:
        sql += _WRITTEN.replace("{label_columns}", _NO_LABELS).replace("{labels_join}", "")
    if shape.transferring:
        reads.add("new_transfers")
        sql += _MOVED + _ANNOUNCED_MOVEMENTS
    else:
        sql += _ANNOUNCED_ENTRIES
    if shape.keyed:
        reads.add("keys")
        union = "\n    UNION ALL\n    "
        sql += _KEYED.replace("{settled}", union.join(_SETTLED[name] for name in settled))
    sql += _ANSWERED.replace(
        "{answered}", "\n    UNION ALL\n    ".join(_ANSWERS[name] for name in answered)
    ).replace(
        "{keys_recorded}",
        "(SELECT array_agg(key) FROM keyed)" if shape.keyed else "NULL::text[]",
    )
    sql = sql.replace("{settled}", _IN_RANGE if lone_runs else _IN_SETTLED_COMPONENT)
    for name, placeholder in placeholders(_BatchInputs, reads).items():
        sql = sql.replace("{" + name + "}", placeholder)
    return _Statement(sql, frozenset(reads))


_EVERY_PART = {
    "linked": True,
    "checking": True,
    "labelled": True,
    "transferring": True,
    "keyed": True,
}
APPLY_BATCH = _statement(_Shape(skipping_locked=False, **_EVERY_PART)).sql
APPLY_BATCH_SKIPPING_LOCKED = _statement(_Shape(skipping_locked=True, **_EVERY_PART)).sql

LOCKED_PLANS = 3  # plans of a batch under its locks, should holds expire in between
READ_BALANCES = f"""
SELECT id, balance, {_HELD_COLUMNS} FROM wallets WHERE id = ANY($1::uuid[])
"""  # nosec B608
LOCK_BALANCES = f"""
SELECT id, balance, {_HELD_COLUMNS} FROM wallets
 WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE
"""  # nosec B608


class PostgresBatchStore:
    """BatchStore on an asyncpg pool; waits at most ``timeout`` seconds per batch.

    At most half the pool waits for row locks at a time, so however many wallets are
    held locked elsewhere, the batches still find connections.
    """

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._waiting_for_locks = asyncio.Semaphore(max(1, pool.get_max_size() // 2))

    async def apply_batch(self, batch: PlannedBatch) -> BatchOutcome:
        keyed = any(key is not None for key in batch.idempotencies)
        inputs = _batch_inputs(batch)
        async with bounded_connection(self._pool, self._timeout) as connection:
            try:
                try:
                    async with transaction_if(connection, keyed):
                        rows = await _apply(connection, batch, inputs, skipping_locked=False)
                except asyncpg.LockNotAvailableError:  # a row held past the brief wait
                    async with transaction_if(connection, keyed):
                        rows = await _apply(connection, batch, inputs, skipping_locked=True)
            except _KeysTaken as taken:
                return BatchOutcome([], {}, taken.keys)
            applied = [_run_applied(row) for row in rows if not row["busy"]]
            busy = frozenset(row["wallet_id"] for row in rows if row["busy"])
            done = {run.wallet_id for run in applied} | busy
            stale = [wallet_id for wallet_id in batch.plan.runs if wallet_id not in done]
            found = await connection.fetch(READ_BALANCES, stale) if stale else []
        balances = {row["id"]: row["balance"] for row in found}
        held = {row["id"]: row["held_now"] for row in found if row["held_now"]}
        return BatchOutcome(applied, balances, busy=busy, held=held)

    async def apply_batch_locked(self, wallet_ids: Sequence[UUID], plan: Planner) -> BatchOutcome:
        async with (
            self._waiting_for_locks,
            bounded_connection(self._pool, self._timeout) as connection,
        ):
            try:
                async with connection.transaction():
                    for attempt in range(LOCKED_PLANS):
                        locked = await connection.fetch(LOCK_BALANCES, list(wallet_ids))
                        batch = plan(
                            {row["id"]: row["balance"] for row in locked},
                            {row["id"]: row["held_now"] for row in locked if row["held_now"]},
                        )
                        rows = []
                        if batch is None:
                            break
                        inputs = _batch_inputs(batch)
                        try:
                            async with connection.transaction():  # a savepoint
                                rows = await _apply(connection, batch, inputs, skipping_locked=True)
                                if len(rows) < len(batch.plan.runs) and attempt + 1 < LOCKED_PLANS:
                                    raise _HoldExpired()
                        except _HoldExpired:
                            continue  # undone: planned again with what holds reserve now
                        break
                    applied = [_run_applied(row) for row in rows if not row["busy"]]
                    left = {run.wallet_id for run in applied}.symmetric_difference(
                        batch.plan.runs if batch is not None else ()
                    )
                    found = await connection.fetch(READ_BALANCES, list(left)) if left else []
            except _KeysTaken as taken:
                return BatchOutcome([], {}, taken.keys)
        balances = {row["id"]: row["balance"] for row in found}
        held = {row["id"]: row["held_now"] for row in found if row["held_now"]}
        return BatchOutcome(applied, balances, held=held)


async def _apply(
    connection: Connection, batch: PlannedBatch, inputs: _BatchInputs, *, skipping_locked: bool
) -> list[asyncpg.Record]:
    """The batch statement's rows: one per wallet settled, or busy."""
    statement = _statement(_Shape.of(inputs, skipping_locked))
    rows: list[asyncpg.Record] = await connection.fetch(
        statement.sql, *parameters(inputs, statement.reads)
    )
    _check_keys_recorded(batch, rows)
    return rows


class _HoldExpired(Exception):
    """A run planned under its wallet's lock was left: a hold expired meanwhile (nothing
    else changes what a locked wallet's holds reserve)."""


class _KeysTaken(Exception):
    """Some keys were recorded by a concurrent request: roll the whole batch back."""

    def __init__(self, keys: frozenset[str]) -> None:
        super().__init__(f"{len(keys)} idempotency keys recorded meanwhile")
        self.keys = keys


def _check_keys_recorded(batch: PlannedBatch, rows: list[asyncpg.Record]) -> None:
    settled = {row["wallet_id"] for row in rows if not row["busy"]}
    expected = {
        key.key
        for decision, key in zip(batch.plan.decisions, batch.idempotencies, strict=True)
        if key is not None and decision.legs[0].wallet_id in settled
    }
    if not expected:
        return
    recorded = set(rows[0]["keys"] or ()) if rows else set()
    if expected - recorded:
        raise _KeysTaken(frozenset(expected - recorded))


def _run_applied(row: asyncpg.Record) -> RunApplied:
    entries = list(
        map(
            EntryWritten._make,
            zip(
                row["entry_ids"] or (),
                row["entry_times"] or (),
                row["entry_balances"] or (),
                row["entry_versions"] or (),
                strict=True,
            ),
        )
    )
    return RunApplied(
        wallet_id=row["wallet_id"],
        start_balance=row["start_balance"],
        balance=row["balance"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        entries=entries,
        metadata=metadata_from_json(row["metadata"]),
        held=row["held_now"],
        held_until=row["held_until"],
    )


def _batch_inputs(batch: PlannedBatch) -> _BatchInputs:
    """The statement's inputs: each wallet's run, each accepted leg with its place among
    its wallet's entries, each accepted transfer, the wallets to lock, and each movement
    under a key."""
    plan = batch.plan
    linked = Counter(run.component for run in plan.runs.values())
    inputs = _BatchInputs(runs=[], accepted=[], labels=[], new_transfers=[], to_lock=[], keys=[])
    for run in plan.runs.values():
        inputs.runs.append(
            _RunRow(
                run.wallet_id,
                run.net,
                run.accepted,
                run.lowest,
                run.highest,
                run.component,
                run.held,
            )
        )
        if run.accepted or linked[run.component] > 1:
            inputs.to_lock.append(run.wallet_id)
    accepted = inputs.accepted
    for decision, entry_ids, idempotency in zip(
        plan.decisions, batch.entry_ids, batch.idempotencies, strict=True
    ):
        legs, refused_by, offsets_before, positions = decision
        if idempotency is not None:
            inputs.keys.append(_key_row(decision, entry_ids, idempotency))
        if refused_by != ACCEPTED:
            continue
        for index, (wallet_id, request) in enumerate(legs):
            # Positional, and the type as the str it is: made for every entry of a batch.
            accepted.append(
                _AcceptedRow(
                    entry_ids[index],
                    wallet_id,
                    request.type,
                    request.amount.minor,
                    offsets_before[index] + request.delta_minor,  # Decision.offset_after
                    positions[index],
                    len(accepted),
                )
            )
            if request.reference is not None or request.metadata or request.transfer_id:
                inputs.labels.append(
                    _LabelRow(
                        id=entry_ids[index],
                        reference=request.reference,
                        metadata=metadata_to_json(request.metadata),
                        transfer_id=request.transfer_id,
                    )
                )
        transfer_id = legs[0].request.transfer_id
        if transfer_id is not None:
            out, into = legs
            inputs.new_transfers.append(
                _TransferRow(
                    id=transfer_id,
                    from_wallet_id=out.wallet_id,
                    to_wallet_id=into.wallet_id,
                    amount=out.request.amount.minor,
                    reference=out.request.reference,
                    metadata=metadata_to_json(out.request.metadata),
                    out_operation_id=entry_ids[0],
                    in_operation_id=entry_ids[1],
                )
            )
    return inputs


def _key_row(decision: Decision, entry_ids: tuple[UUID, ...], idempotency: Idempotency) -> _KeyRow:
    """What a movement under a key records: its first entry (and transfer) when applied,
    else the wallet whose rule refused it, with the offset of its balance then."""
    legs = decision.legs
    leg = 0 if decision.accepted else decision.refused_by
    return _KeyRow(
        key=idempotency.key,
        fingerprint=idempotency.fingerprint,
        request_id=idempotency.request_id,
        outcome=decision.outcome.value,
        wallet_id=legs[leg].wallet_id,
        operation_id=entry_ids[0] if decision.accepted else None,
        transfer_id=legs[0].request.transfer_id if decision.accepted else None,
        offset_before=decision.offsets_before[leg],
        amount=legs[leg].request.amount.minor,
    )
