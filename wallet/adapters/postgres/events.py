"""The event feed on PostgreSQL: the events table read in commit order, below a horizon.

Every change writes its event row in its own transaction, its id taken from a sequence
once the transaction holds an id of its own (after its first write). Ids are taken in
one order and committed in another: a transaction may commit id 7 after others have
committed 8 and 9. A reader that returned 9 and then met 7 would have skipped it, so a
reader returns only ids up to a *horizon*: a value the sequence had reached at a moment
after which every transaction then writing has finished. Such a transaction had its own
id before it took any event id, so the ones that could still commit an id up to the
horizon are exactly those running at that moment; once they are gone, nothing can ever
appear below it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from wallet.adapters.postgres.connections import bounded_connection
from wallet.adapters.postgres.hold_reads import find_captures, hold_from_row
from wallet.adapters.postgres.rows import (
    OPERATION_COLUMNS,
    WALLET_COLUMNS,
    operation_from_row,
    transfer_from_rows,
    wallet_from_row,
)
from wallet.adapters.postgres.transfers import FIND_TRANSFERS
from wallet.deadlines import seconds_within
from wallet.domain.errors import EventsExpired
from wallet.domain.events import Event, EventSubject, EventType
from wallet.domain.model import Wallet
from wallet.domain.money import Money
from wallet.domain.transfers import Transfer

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection

# How far the sequence has come, then the transactions of this database still writing
# (read in that order: one that took an id up to ``taken`` either has finished by then,
# or is listed). PL/pgSQL runs its statements in order; the activity view is read once
# per transaction, at its first use, which comes after the sequence.
HORIZON = "SELECT taken, writing FROM events_horizon()"
STILL_WRITING = """
SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_xid::text = ANY($1::text[]))
"""
HORIZON_POLL = 0.001  # seconds between looks at whether the writers have finished
HORIZON_WAIT = 0.5  # at most this long for them, then the last horizon known serves

# The pool's sessions keep one generic plan per statement (pool.py). A page's lookups by
# arrays of ids get plans of their own instead: a generic plan made while a table was
# small scans it whole, and would go on scanning it as it grows.
CUSTOM_PLANS = "SET LOCAL plan_cache_mode = force_custom_plan"
DROPPED_THROUGH = "SELECT dropped_through FROM event_feed"
_EVENT_COLUMNS = "id, type, wallet_id, subject_id, created_at"
READ_EVENTS = f"""
SELECT {_EVENT_COLUMNS} FROM events
 WHERE id > $1 AND id <= $2
 ORDER BY id LIMIT $3
"""  # nosec B608
# A wallet's own events and those paying it, each side by its index, merged by id.
READ_WALLET_EVENTS = f"""
SELECT {_EVENT_COLUMNS} FROM (
    (SELECT {_EVENT_COLUMNS} FROM events
      WHERE wallet_id = $4 AND id > $1 AND id <= $2 ORDER BY id LIMIT $3)
    UNION ALL
    (SELECT {_EVENT_COLUMNS} FROM events
      WHERE payee_id = $4 AND id > $1 AND id <= $2 ORDER BY id LIMIT $3)
) both_sides
 ORDER BY id LIMIT $3
"""  # nosec B608
READ_WALLETS = f"SELECT {WALLET_COLUMNS} FROM wallets WHERE id = ANY($1::uuid[])"  # nosec B608
READ_OPERATIONS = f"SELECT {OPERATION_COLUMNS} FROM operations WHERE id = ANY($1::uuid[])"  # nosec B608
# Holds as marked: a hold's events are read after it settled (or as placed, from its row).
READ_HOLDS = """
SELECT id, wallet_id, to_wallet_id, currency, amount, captured_amount, status, expires_at,
       reference, metadata, created_at, updated_at
  FROM holds WHERE id = ANY($1::uuid[])
"""

# The oldest events first, a bounded number per statement; only a run of them from the
# oldest is dropped, so the feed never has a hole below events it still keeps.
OLDEST_EVENTS = """
SELECT id, created_at < clock_timestamp() - $2::interval AS old
  FROM events ORDER BY id LIMIT $1
"""
DROP_EVENTS = """
WITH gone AS (DELETE FROM events WHERE id <= $1 RETURNING id)
UPDATE event_feed SET dropped_through = greatest(dropped_through, $1)
RETURNING (SELECT count(*) FROM gone)
"""
EVENTS_DROPPED_PER_STATEMENT = 1000


class PostgresEventFeed:
    """Events on an asyncpg pool, each call bounded by ``timeout`` seconds."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._horizon = 0  # the highest horizon found: below it, nothing can appear

    async def read_events(
        self, after: int | None, limit: int, wallet_id: UUID | None
    ) -> list[Event]:
        async with self._connection() as connection:
            horizon = await self._settled_horizon(connection)
            # One snapshot for the retention's mark and the events, taken after the horizon
            # settled: every event up to it that committed is in it.
            async with connection.transaction(isolation="repeatable_read", readonly=True):
                await connection.execute(CUSTOM_PLANS)
                dropped = await connection.fetchval(DROPPED_THROUGH)
                if after is not None and after < dropped:
                    raise EventsExpired(after, dropped)
                start = after or 0
                if wallet_id is None:
                    rows = await connection.fetch(READ_EVENTS, start, horizon, limit)
                else:
                    rows = await connection.fetch(
                        READ_WALLET_EVENTS, start, horizon, limit, wallet_id
                    )
                return await _events_from_rows(connection, rows)

    async def forget_events_older_than(self, age: timedelta) -> int:
        """A thousand at a time, each in a statement of its own, until none is that old."""
        total = 0
        while dropped := await self._drop_oldest(age):
            total += dropped
            if dropped < EVENTS_DROPPED_PER_STATEMENT:
                break
        return total

    async def _drop_oldest(self, age: timedelta) -> int:
        async with self._connection() as connection:
            oldest = await connection.fetch(OLDEST_EVENTS, EVENTS_DROPPED_PER_STATEMENT, age)
            through = None
            for row in oldest:
                if not row["old"]:
                    break
                through = row["id"]
            if through is None:
                return 0
            dropped: int = await connection.fetchval(DROP_EVENTS, through)
            return dropped

    async def _settled_horizon(self, connection: Connection) -> int:
        """An id up to which every event that will ever commit has committed."""
        row = await connection.fetchrow(HORIZON)
        assert row is not None, "the function answers one row"
        taken, writing = row["taken"], row["writing"]
        if writing:
            loop = asyncio.get_running_loop()
            give_up = loop.time() + min(HORIZON_WAIT, seconds_within(self._timeout) / 2)
            while await connection.fetchval(STILL_WRITING, writing):
                if loop.time() >= give_up:
                    return self._horizon  # a long transaction: what was settled before
                await asyncio.sleep(HORIZON_POLL)
        self._horizon = max(self._horizon, taken)
        return self._horizon

    def _connection(self) -> AbstractAsyncContextManager[Connection]:
        return bounded_connection(self._pool, seconds_within(self._timeout))


async def _events_from_rows(connection: Connection, rows: Sequence[asyncpg.Record]) -> list[Event]:
    """The events with what each names, read in a few statements for the whole page."""
    subjects = _SubjectIds.of(rows)
    wallets = {
        row["id"]: _as_created(wallet_from_row(row))
        for row in await _fetch(connection, READ_WALLETS, subjects.wallets)
    }
    operations = {
        row["id"]: operation_from_row(row)
        for row in await _fetch(connection, READ_OPERATIONS, subjects.operations)
    }
    holds = {
        row["id"]: hold_from_row(row)
        for row in await _fetch(connection, READ_HOLDS, subjects.holds)
    }
    transfers = await _transfers(connection, subjects.transfers)
    captured = [holds[row["subject_id"]] for row in rows if row["type"] == EventType.HOLD_CAPTURED]
    captures = await find_captures(connection, captured) if captured else {}
    events = []
    for row in rows:
        kind = EventType(row["type"])
        subject_id = row["subject_id"]
        subject: EventSubject
        if kind is EventType.WALLET_CREATED:
            subject = wallets[subject_id]
        elif kind is EventType.OPERATION_APPLIED:
            subject = operations[subject_id]
        elif kind is EventType.TRANSFER_COMPLETED:
            subject = transfers[subject_id]
        elif kind is EventType.HOLD_CREATED:
            subject = holds[subject_id].as_placed()
        elif kind is EventType.HOLD_CAPTURED:
            subject = captures[subject_id]
        else:
            subject = holds[subject_id]
        events.append(Event(row["id"], kind, row["wallet_id"], row["created_at"], subject))
    return events


class _SubjectIds:
    """What a page's events name, by table."""

    __slots__ = ("holds", "operations", "transfers", "wallets")

    def __init__(self) -> None:
        self.wallets: list[UUID] = []
        self.operations: list[UUID] = []
        self.transfers: list[UUID] = []
        self.holds: list[UUID] = []

    @classmethod
    def of(cls, rows: Iterable[asyncpg.Record]) -> _SubjectIds:
        ids = cls()
        by_type = {
            EventType.WALLET_CREATED: ids.wallets,
            EventType.OPERATION_APPLIED: ids.operations,
            EventType.TRANSFER_COMPLETED: ids.transfers,
        }
        for row in rows:
            by_type.get(EventType(row["type"]), ids.holds).append(row["subject_id"])
        return ids


async def _fetch(connection: Connection, query: str, ids: list[UUID]) -> list[asyncpg.Record]:
    return await connection.fetch(query, ids) if ids else []


async def _transfers(connection: Connection, ids: list[UUID]) -> dict[UUID, Transfer]:
    rows = await _fetch(connection, FIND_TRANSFERS, ids)
    found: dict[UUID, Transfer] = {}
    for out_row, in_row in zip(rows[::2], rows[1::2], strict=True):
        out, into = operation_from_row(out_row, "op_"), operation_from_row(in_row, "op_")
        found[out_row["id"]] = transfer_from_rows(out_row, out, into)
    return found


def _as_created(wallet: Wallet) -> Wallet:
    """The wallet as its creation left it: nothing in it, nothing held, not yet changed."""
    return Wallet(
        wallet.id,
        Money(0, wallet.currency),
        0,
        wallet.created_at,
        wallet.created_at,
        wallet.metadata,
    )
