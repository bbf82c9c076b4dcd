"""Holds on PostgreSQL: placed, captured and voided under their wallets' row locks, read
with the status they have now, and marked expired by the job. A change under a key, or a
capture paying a wallet, is one statement of its own; the others on a wallet are made
together (``hold_changes``), a batch per call.

Every change to a hold locks its wallets first (the payer's, and a payee's, in id order, as
transfers and batches do), then the hold: so no two of them ever wait for each other in a
cycle, and what a wallet reserves (``wallets.held``) changes only beside its holds. One
statement per change or batch, so a hot wallet's row is held for a statement and its
commit, never across a round trip. The database's clock decides expiry: a hold past its
``expires_at`` is EXPIRED to every statement, whether or not the job has marked it yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from wallet.adapters.coalesce import Coalescer
from wallet.adapters.ids import time_ordered_uuids
from wallet.adapters.json_metadata import metadata_from_json, metadata_to_json
from wallet.adapters.postgres.connections import bounded_connection, transaction_if
from wallet.adapters.postgres.hold_changes import HoldChange, HoldChanges
from wallet.adapters.postgres.hold_reads import (
    HOLD_COLUMNS,
    HOLD_STATUS_NOW,
    captured_transfer,
    find_holds,
    hold_from_row,
)
from wallet.adapters.postgres.idempotency_records import record_outcome
from wallet.adapters.postgres.rows import WALLET_COLUMNS, held_columns, wallet_from_row
from wallet.adapters.turns import Turns
from wallet.deadlines import deadline_within, seconds_within
from wallet.domain.currency import CURRENCIES
from wallet.domain.errors import (
    BalanceLimitExceeded,
    HoldNotActive,
    HoldNotFound,
    InsufficientFunds,
    StorageUnavailable,
    WalletNotFound,
)
from wallet.domain.holds import Captured, Hold, HoldChanged, HoldRequest, HoldStatus
from wallet.domain.idempotency import Idempotency, Outcome, refusal_outcome
from wallet.domain.model import Leg, Operation, Wallet, max_balance
from wallet.domain.money import Money
from wallet.domain.pagination import Position

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection

READ_WALLETS = f"SELECT {WALLET_COLUMNS} FROM wallets WHERE id = ANY($1::uuid[])"  # nosec B608
WALLET_EXISTS = "SELECT EXISTS (SELECT 1 FROM wallets WHERE id = $1)"

# A wallet's holds, newest first, strictly before a position; with a status, only the
# holds that have it now.
LIST_HOLDS = f"""
SELECT {HOLD_COLUMNS} FROM holds
 WHERE wallet_id = $1
   AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
   AND ($5::text IS NULL OR {HOLD_STATUS_NOW} = $5)
 ORDER BY created_at DESC, id DESC
 LIMIT $2
"""  # nosec B608

# The wallet locked, and when its available balance covers the amount, the hold stamped
# now and its amount reserved on the wallet (a change: its version). Answered with the
# wallet as it was (for a refusal's detail) and, when placed, the hold and the wallet after.
PLACE_HOLD = f"""
WITH wallet AS (
    SELECT id, balance, currency, {held_columns()} FROM wallets WHERE id = $2
       FOR NO KEY UPDATE
), placed AS (
    INSERT INTO holds
           (id, wallet_id, to_wallet_id, currency, amount, expires_at, reference, metadata,
            created_at, updated_at)
    SELECT $1, w.id, $3, w.currency, $4, now.at + make_interval(secs => $5), $6,
           $7::text::jsonb, now.at, now.at
      FROM wallet w, (SELECT clock_timestamp() AS at) now
     WHERE w.balance - w.held_now >= $4
    RETURNING wallet_id, amount, expires_at, created_at
), changed AS (
    UPDATE wallets w
       SET held = w.held + p.amount,
           version = w.version + 1,
           updated_at = greatest(p.created_at, w.updated_at + interval '1 microsecond')
      FROM placed p
     WHERE w.id = p.wallet_id
    RETURNING w.version, w.created_at, w.updated_at, w.metadata, p.expires_at,
              p.created_at AS placed_at
), announced AS (
    INSERT INTO events (type, wallet_id, subject_id, created_at)
    SELECT 'hold.created', wallet_id, $1, created_at FROM placed
)
SELECT w.id, w.balance, w.currency, w.held_now, w.held_until, c.* FROM wallet w
  LEFT JOIN changed c ON true
"""  # nosec B608

# The hold's wallets locked in id order, then the hold (the subquery on ``locked`` in its
# WHERE runs first); it is captured when it is HELD now and a payee stays within its
# maximum ($13): each leg's wallet moved (the payer's releasing the whole hold) with its
# entry one microsecond after the wallet's last, the transfer when it pays a wallet, and
# the hold marked captured as of the payer's entry. Answered with the hold's status as
# found, the payee's balance then, and each wallet changed as it is now.
CAPTURE = f"""
WITH locked AS (
    SELECT id, balance FROM wallets WHERE id IN ($11, $12) ORDER BY id FOR NO KEY UPDATE
), hold AS (
    SELECT {HOLD_STATUS_NOW} AS status FROM holds
     WHERE id = $10 AND (SELECT count(*) FROM locked) >= 0
       FOR UPDATE
), legs AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::uuid[], $5::text[])
           AS l(wallet_id, delta, released, entry_id, operation_type)
     WHERE (SELECT status FROM hold) = 'HELD'
       AND ($12::uuid IS NULL OR (SELECT balance FROM locked WHERE id = $12) + $6 <= $13)
), changed AS (
    UPDATE wallets w
       SET balance = w.balance + l.delta,
           held = w.held - l.released,
           version = w.version + 1,
           updated_at = greatest(clock_timestamp(), w.updated_at + interval '1 microsecond')
      FROM legs l
     WHERE w.id = l.wallet_id
    RETURNING w.id, w.balance, w.currency, w.version, w.created_at, w.updated_at, w.metadata,
              w.held, l.entry_id, l.operation_type
), entries AS (
    INSERT INTO operations
           (id, wallet_id, operation_type, amount, balance_after, currency, created_at,
            reference, metadata, transfer_id, hold_id)
    SELECT entry_id, id, operation_type, $6, balance, currency, updated_at, $7,
           $8::text::jsonb, $9, $10
      FROM changed
), payer AS (
    SELECT entry_id, updated_at FROM changed WHERE id = $11
), moved AS (
    INSERT INTO transfers
           (id, from_wallet_id, to_wallet_id, currency, amount, reference, metadata, created_at,
            out_operation_id, in_operation_id, hold_id)
    SELECT $9, $11, $12, c.currency, $6, $7, $8::text::jsonb, p.updated_at, p.entry_id,
           c.entry_id, $10
      FROM payer p JOIN changed c ON c.id = $12
), settled AS (
    UPDATE holds h SET status = 'CAPTURED', captured_amount = $6, updated_at = p.updated_at
      FROM payer p
     WHERE h.id = $10
), announced AS (
    INSERT INTO events (type, wallet_id, payee_id, subject_id, created_at)
    SELECT 'hold.captured', $11, $12, $10, updated_at FROM payer
)
SELECT (SELECT status FROM hold) AS hold_status,
       (SELECT balance FROM locked WHERE id = $12) AS payee_balance,
       c.id, c.balance, c.currency, c.version, c.created_at, c.updated_at, c.metadata,
       {held_columns("c")}
  FROM (SELECT 1) AS answer LEFT JOIN changed c ON true
"""  # nosec B608

# The wallet locked, then the hold; when it is HELD now, its amount released (a change of
# the wallet's version) and the hold marked voided then. Answered as CAPTURE is.
VOID = f"""
WITH locked AS (
    SELECT id FROM wallets WHERE id = $2 FOR NO KEY UPDATE
), hold AS (
    SELECT {HOLD_STATUS_NOW} AS status, amount FROM holds
     WHERE id = $1 AND (SELECT count(*) FROM locked) >= 0
       FOR UPDATE
), changed AS (
    UPDATE wallets w
       SET held = w.held - h.amount,
           version = w.version + 1,
           updated_at = greatest(clock_timestamp(), w.updated_at + interval '1 microsecond')
      FROM hold h
     WHERE w.id = $2 AND h.status = 'HELD'
    RETURNING w.id, w.balance, w.currency, w.version, w.created_at, w.updated_at, w.metadata,
              w.held
), settled AS (
    UPDATE holds h SET status = 'VOIDED', updated_at = c.updated_at
      FROM changed c
     WHERE h.id = $1
), announced AS (
    INSERT INTO events (type, wallet_id, subject_id, created_at)
    SELECT 'hold.voided', $2, $1, updated_at FROM changed
)
SELECT (SELECT status FROM hold) AS hold_status, c.id, c.balance, c.currency, c.version,
       c.created_at, c.updated_at, c.metadata, {held_columns("c")}
  FROM (SELECT 1) AS answer LEFT JOIN changed c ON true
"""  # nosec B608

# The job: the holds past their expiry of up to $1 wallets marked EXPIRED (as of the moment
# they expired), each with its event, and each wallet's reservation released, a change of
# its version per hold. A wallet another transaction holds is left alone (answered as
# skipped), so the job never queues behind a hot wallet's batches: it tries again.
EXPIRE_DUE = """
WITH due AS (
    SELECT DISTINCT wallet_id FROM holds
     WHERE status = 'HELD' AND expires_at <= clock_timestamp()
     LIMIT $1
), locked AS (
    SELECT id FROM wallets WHERE id IN (SELECT wallet_id FROM due)
     ORDER BY id FOR NO KEY UPDATE SKIP LOCKED
), expired AS (
    UPDATE holds h SET status = 'EXPIRED', updated_at = h.expires_at
     WHERE h.wallet_id IN (SELECT id FROM locked)
       AND h.status = 'HELD' AND h.expires_at <= clock_timestamp()
    RETURNING h.id, h.wallet_id, h.amount, h.expires_at
), released AS (
    SELECT wallet_id, sum(amount) AS amount, count(*) AS holds FROM expired GROUP BY wallet_id
), changed AS (
    UPDATE wallets w
       SET held = w.held - r.amount,
           version = w.version + r.holds,
           updated_at = greatest(clock_timestamp(), w.updated_at + interval '1 microsecond')
      FROM released r
     WHERE w.id = r.wallet_id
    RETURNING w.id, r.holds
), announced AS (
    INSERT INTO events (type, wallet_id, subject_id, created_at)
    SELECT 'hold.expired', wallet_id, id, expires_at FROM expired ORDER BY expires_at, id
)
SELECT c.id, c.holds, (SELECT count(*) FROM due) - (SELECT count(*) FROM locked) AS skipped
  FROM (SELECT 1) AS answer LEFT JOIN changed c ON true
"""

EXPIRY_TRIES = 50  # statements of one run, while a due wallet is locked by another
EXPIRY_RETRY_PAUSE = 0.005  # seconds between them

COUNT_OPEN = "SELECT count(*) FROM holds WHERE status = 'HELD' AND expires_at > clock_timestamp()"


class PostgresHolds:
    """Holds, their reading and their expiry on an asyncpg pool; waits at most ``timeout``
    seconds per call. A change under a key records its outcome in the same transaction."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        # This process's changes to one wallet's holds take turns (they would wait for its
        # row lock one after another anyway): a hot wallet has one waiter per process.
        self._turns: Turns[UUID] = Turns()
        # Changes without a key are made together, a batch per wallet at a time.
        self._changes = HoldChanges(pool, timeout)
        # Lookups queued while one runs share the next: a query never older than its asking.
        self._finds: Coalescer[UUID, dict[UUID, Hold]] = Coalescer(self._find_holds)

    async def place(
        self, hold_id: UUID, request: HoldRequest, idempotency: Idempotency | None = None
    ) -> HoldChanged:
        if idempotency is None:
            return await self._place_together(hold_id, request)
        async with (
            self._changing(request.wallet_id) as connection,
            connection.transaction(),  # the key is recorded beside the change
        ):
            row = await connection.fetchrow(
                PLACE_HOLD,
                hold_id,
                request.wallet_id,
                request.to_wallet_id,
                request.amount.minor,
                request.expires_in,
                request.reference,
                metadata_to_json(request.metadata),
            )
            if row is None:
                raise WalletNotFound(request.wallet_id)
            if row["placed_at"] is None:  # its available balance is less than the amount
                before = _wallet_before(row)
                refused = InsufficientFunds(before.available, request.amount, before.held_minor)
                await _record_refusal(connection, idempotency, refused, before, request.amount)
            else:
                await record_outcome(
                    connection, idempotency, Outcome.HELD, request.wallet_id, hold_id=hold_id
                )
                return _placed(hold_id, request, row)
        raise refused  # after the transaction: the refusal stays recorded

    async def capture(
        self, hold: Hold, amount: Money, idempotency: Idempotency | None = None
    ) -> HoldChanged:
        if idempotency is None and hold.to_wallet_id is None:
            return await self._capture_together(hold, amount)
        transfer_id = None if hold.to_wallet_id is None else time_ordered_uuids(1)[0]
        legs = hold.capture_legs(amount, transfer_id)
        entry_ids = time_ordered_uuids(len(legs))
        payee_max = max_balance(hold.currency).minor if hold.to_wallet_id else None
        async with (
            self._changing(hold.wallet_id) as connection,
            transaction_if(connection, idempotency is not None),
        ):
            rows = await connection.fetch(
                CAPTURE,
                [wallet_id for wallet_id, _ in legs],
                [request.delta_minor for _, request in legs],
                [hold.amount.minor if wallet_id == hold.wallet_id else 0 for wallet_id, _ in legs],
                entry_ids,
                [request.type.value for _, request in legs],
                amount.minor,
                hold.reference,
                metadata_to_json(hold.metadata),
                transfer_id,
                hold.id,
                hold.wallet_id,
                hold.to_wallet_id,
                payee_max,
            )
            _check_settled(hold, rows[0]["hold_status"])
            if rows[0]["id"] is None:  # the payee would pass its maximum
                payee = Money(rows[0]["payee_balance"], hold.currency)
                refused = BalanceLimitExceeded(payee, amount, max_balance(hold.currency))
                await record_outcome(
                    connection,
                    idempotency,
                    refusal_outcome(refused),
                    hold.to_wallet_id or hold.wallet_id,
                    balance_before=payee.minor,
                    amount=amount.minor,
                )
            else:
                wallets = {row["id"]: wallet_from_row(row) for row in rows}
                captured = _captured(hold, amount, legs, entry_ids, wallets)
                await record_outcome(
                    connection,
                    idempotency,
                    Outcome.CAPTURED,
                    hold.wallet_id,
                    operation_id=entry_ids[0],
                    transfer_id=transfer_id,
                    hold_id=hold.id,
                )
                return HoldChanged(captured.hold, tuple(wallets.values()), captured)
        raise refused  # after the transaction: the refusal stays recorded

    async def void(self, hold: Hold, idempotency: Idempotency | None = None) -> HoldChanged:
        if idempotency is None:
            changed = await self._changes.make(hold.wallet_id, HoldChange("VOID", hold.id))
            _check_settled(hold, _status_of(changed))
            wallet = _wallet_after(hold.wallet_id, changed)
            voided = replace(hold, status=HoldStatus.VOIDED, updated_at=wallet.updated_at)
            return HoldChanged(voided, (wallet,))
        async with (
            self._changing(hold.wallet_id) as connection,
            connection.transaction(),  # the key is recorded beside the change
        ):
            row = await connection.fetchrow(VOID, hold.id, hold.wallet_id)
            assert row is not None, "the statement answers one row"
            _check_settled(hold, row["hold_status"])
            wallet = wallet_from_row(row)
            voided = replace(hold, status=HoldStatus.VOIDED, updated_at=wallet.updated_at)
            await record_outcome(
                connection, idempotency, Outcome.VOIDED, hold.wallet_id, hold_id=hold.id
            )
        return HoldChanged(voided, (wallet,))

    async def _place_together(self, hold_id: UUID, request: HoldRequest) -> HoldChanged:
        """``place`` without a key: beside the wallet's other hold changes of the moment."""
        change = HoldChange(
            "PLACE",
            hold_id,
            request.amount.minor,
            request.to_wallet_id,
            request.expires_in,
            request.reference,
            metadata_to_json(request.metadata),
        )
        row = await self._changes.make(request.wallet_id, change)
        wallet = _wallet_after(request.wallet_id, row)
        if row["change_outcome"] == "REFUSED":
            raise InsufficientFunds(wallet.available, request.amount, wallet.held_minor)
        hold = _new_hold(hold_id, request, wallet.updated_at, row["hold_expires_at"])
        return HoldChanged(hold, (wallet,))

    async def _capture_together(self, hold: Hold, amount: Money) -> HoldChanged:
        """``capture`` of a hold paying no wallet, without a key: beside the wallet's other
        hold changes of the moment."""
        entry_id = time_ordered_uuids(1)[0]
        change = HoldChange("CAPTURE", hold.id, amount.minor, entry_id=entry_id)
        row = await self._changes.make(hold.wallet_id, change)
        _check_settled(hold, _status_of(row))
        wallet = _wallet_after(hold.wallet_id, row)
        legs = hold.capture_legs(amount, None)
        captured = _captured(hold, amount, legs, [entry_id], {wallet.id: wallet})
        return HoldChanged(captured.hold, (wallet,), captured)

    async def find_hold(self, hold_id: UUID) -> Hold | None:
        try:
            async with asyncio.timeout(seconds_within(self._timeout)):
                found = await self._finds.submit(hold_id)
        except TimeoutError:
            raise StorageUnavailable("the database did not answer in time") from None
        return found.get(hold_id)

    async def _find_holds(self, hold_ids: list[UUID]) -> dict[UUID, Hold]:
        """The holds asked for while the previous lookup ran, read by one query."""
        async with bounded_connection(self._pool, self._timeout) as connection:
            return await find_holds(connection, hold_ids)

    async def list_holds(
        self, wallet_id: UUID, limit: int, before: Position | None, status: HoldStatus | None
    ) -> list[Hold]:
        after = (None, None) if before is None else (before.created_at, before.id)
        status_text = None if status is None else status.value
        async with self._connection() as connection:
            rows = await connection.fetch(LIST_HOLDS, wallet_id, limit, *after, status_text)
            if not rows and not await connection.fetchval(WALLET_EXISTS, wallet_id):
                raise WalletNotFound(wallet_id)
        return [hold_from_row(row) for row in rows]

    async def expire_due(self, wallets: int) -> tuple[int, list[Wallet]]:
        """Wallets locked by others (a hot wallet's batches hold it most of the time) are
        tried again a few times a moment apart, so an expiry is marked within the run."""
        async with self._connection() as connection:
            rows = []
            for _ in range(EXPIRY_TRIES):
                found = await connection.fetch(EXPIRE_DUE, wallets)
                rows += [row for row in found if row["id"] is not None]
                if not found[0]["skipped"] or len(rows) >= wallets:
                    break
                await asyncio.sleep(EXPIRY_RETRY_PAUSE)
            changed = await _read_wallets(connection, [row["id"] for row in rows]) if rows else []
        return sum(row["holds"] for row in rows), changed

    async def count_open(self) -> int:
        async with self._connection() as connection:
            count: int = await connection.fetchval(COUNT_OPEN)
        return count

    def _connection(self) -> AbstractAsyncContextManager[Connection]:
        return bounded_connection(self._pool, seconds_within(self._timeout))

    @asynccontextmanager
    async def _changing(self, wallet_id: UUID) -> AsyncIterator[Connection]:
        """A connection for a change to the wallet's holds, once this process's turn on the
        wallet has come; both within the timeout."""
        loop = asyncio.get_running_loop()
        deadline = deadline_within(self._timeout)
        async with (
            self._turns.turn(wallet_id, deadline),
            bounded_connection(self._pool, deadline - loop.time()) as connection,
        ):
            yield connection


def _status_of(row: asyncpg.Record) -> str | None:
    """The status ``change_holds`` found the hold in (None: not found)."""
    status: str | None = row["hold_status_found"]
    return status


def _wallet_after(wallet_id: UUID, row: asyncpg.Record) -> Wallet:
    """The wallet as ``change_holds`` left it after the row's change (before, if refused)."""
    return Wallet(
        wallet_id,
        Money(row["wallet_balance"], CURRENCIES[row["wallet_currency"]]),
        row["wallet_version"],
        row["wallet_created_at"],
        row["wallet_updated_at"],
        metadata_from_json(row["wallet_metadata"]),
        row["wallet_held"],
        row["wallet_held_until"],
    )


def _check_settled(hold: Hold, status: str | None) -> None:
    """HoldNotFound or HoldNotActive, as the statement found the hold, unless still held."""
    if status is None:
        raise HoldNotFound(hold.id)
    if status != HoldStatus.HELD:
        raise HoldNotActive(hold.id, status)


def _captured(
    hold: Hold,
    amount: Money,
    legs: tuple[Leg, ...],
    entry_ids: list[UUID],
    wallets: dict[UUID, Wallet],
) -> Captured:
    """The capture as ``CAPTURE`` wrote it: the hold as captured, with its entries (each
    leaves its wallet as it is now: one change per wallet)."""
    entries: list[Operation] = []
    for (wallet_id, request), entry_id in zip(legs, entry_ids, strict=True):
        wallet = wallets[wallet_id]
        entries.append(request.entry(entry_id, wallet_id, wallet.balance, wallet.updated_at))
    at = entries[0].created_at
    captured = replace(hold, status=HoldStatus.CAPTURED, captured_amount=amount, updated_at=at)
    transfer = None
    if len(entries) == 2:
        out, into = entries
        assert out.transfer_id is not None
        transfer = captured_transfer(out.transfer_id, hold, amount, (out, into))
    return Captured(captured, tuple(entries), transfer)


def _new_hold(
    hold_id: UUID, request: HoldRequest, placed_at: datetime, expires_at: datetime
) -> Hold:
    """The hold ``request`` placed at ``placed_at``, held until ``expires_at``."""
    return Hold(
        hold_id,
        request.wallet_id,
        request.amount,
        HoldStatus.HELD,
        expires_at,
        placed_at,
        placed_at,
        request.to_wallet_id,
        None,
        request.reference,
        request.metadata,
    )


def _placed(hold_id: UUID, request: HoldRequest, row: asyncpg.Record) -> HoldChanged:
    """The hold placed by ``PLACE_HOLD``, and its wallet after it: reserving the amount
    more, until whichever expires first of its holds and this one."""
    placed_at, expires_at = row["placed_at"], row["expires_at"]
    hold = _new_hold(hold_id, request, placed_at, expires_at)
    until = row["held_until"]
    wallet = Wallet(
        request.wallet_id,
        Money(row["balance"], request.amount.currency),
        row["version"],
        row["created_at"],
        row["updated_at"],
        metadata_from_json(row["metadata"]),
        row["held_now"] + request.amount.minor,
        expires_at if until is None else min(until, expires_at),
    )
    return HoldChanged(hold, (wallet,))


async def _read_wallets(connection: Connection, wallet_ids: list[UUID]) -> list[Wallet]:
    rows = await connection.fetch(READ_WALLETS, wallet_ids)
    return [wallet_from_row(row) for row in rows]


async def _record_refusal(
    connection: Connection,
    idempotency: Idempotency | None,
    refusal: InsufficientFunds | BalanceLimitExceeded,
    wallet: Wallet,
    amount: Money,
) -> None:
    await record_outcome(
        connection,
        idempotency,
        refusal_outcome(refusal),
        wallet.id,
        balance_before=wallet.balance.minor,
        amount=amount.minor,
        held_before=wallet.held_minor,
    )


def _wallet_before(row: asyncpg.Record) -> Wallet:
    """The locked wallet's balance and what its holds reserved (all a refusal tells)."""
    epoch = datetime.min
    return Wallet(
        row["id"],
        Money(row["balance"], CURRENCIES[row["currency"]]),
        0,
        epoch,
        epoch,
        held_minor=row["held_now"],
        held_until=row["held_until"],
    )
