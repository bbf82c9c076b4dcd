"""Holds on PostgreSQL: placed, captured and voided under their wallets' row locks, read
with the status they have now, and marked expired by the background job.

Every change to a hold takes its wallet's row lock first (with a payee's, in id order,
as transfers and batches do), then the hold's: so no two of them ever wait for each other
in a cycle, and what a wallet reserves (``wallets.held``) changes only beside its holds.
The database's clock decides expiry: a hold past its ``expires_at`` is EXPIRED to every
statement, whether or not the job has marked it yet.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from wallet.adapters.ids import time_ordered_uuids
from wallet.adapters.json_metadata import metadata_to_json
from wallet.adapters.postgres.connections import bounded_connection
from wallet.adapters.postgres.hold_reads import (
    HOLD_COLUMNS,
    HOLD_STATUS_NOW,
    captured_transfer,
    find_hold,
    hold_from_row,
)
from wallet.adapters.postgres.idempotency_records import record_outcome
from wallet.adapters.postgres.rows import (
    WALLET_COLUMNS,
    held_columns,
    wallet_from_row,
)
from wallet.deadlines import seconds_within
from wallet.domain.currency import CURRENCIES
from wallet.domain.errors import (
    BalanceLimitExceeded,
    HoldNotFound,
    InsufficientFunds,
    WalletNotFound,
)
from wallet.domain.holds import Captured, Hold, HoldChanged, HoldRequest, HoldStatus
from wallet.domain.idempotency import Idempotency, Outcome, refusal_outcome
from wallet.domain.model import (
    Leg,
    OperationRequest,
    OperationType,
    Wallet,
    next_balance,
)
from wallet.domain.money import Money
from wallet.domain.pagination import Position

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection

LOCK_HOLD = f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1 FOR UPDATE"
HOLD_WALLETS = "SELECT wallet_id, to_wallet_id FROM holds WHERE id = $1"
LOCK_WALLETS = f"""
SELECT id, balance, currency, {held_columns()} FROM wallets
 WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE
"""
READ_WALLETS = f"SELECT {WALLET_COLUMNS} FROM wallets WHERE id = ANY($1::uuid[])"
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
"""

# The hold, stamped now, and its amount reserved on the wallet (a change: its version).
PLACE_HOLD = """
WITH placed AS (
    INSERT INTO holds
           (id, wallet_id, to_wallet_id, currency, amount, expires_at, reference, metadata,
            created_at, updated_at)
    SELECT $1, $2, $3, $4, $5, at + make_interval(secs => $6), $7, $8::text::jsonb, at, at
      FROM (SELECT clock_timestamp() AS at) now
    RETURNING amount, created_at
)
UPDATE wallets w
   SET held = w.held + p.amount,
       version = w.version + 1,
       updated_at = greatest(p.created_at, w.updated_at + interval '1 microsecond')
  FROM placed p
 WHERE w.id = $2
"""

# One leg of a capture: the wallet's balance moved (and, for the payer, the whole hold
# released), and its entry written beside it, one microsecond after the wallet's last.
CAPTURE_LEG = """
WITH changed AS (
    UPDATE wallets
       SET balance = balance + $2,
           held = held - $3,
           version = version + 1,
           updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
     WHERE id = $1
    RETURNING id, balance, currency, updated_at
), recorded AS (
    INSERT INTO operations
           (id, wallet_id, operation_type, amount, balance_after, currency, created_at,
            reference, metadata, transfer_id, hold_id)
    SELECT $4, id, $5, $6, balance, currency, updated_at, $7, $8::text::jsonb, $9, $10
      FROM changed
)
SELECT balance, updated_at FROM changed
"""
RECORD_TRANSFER = """
INSERT INTO transfers
       (id, from_wallet_id, to_wallet_id, currency, amount, reference, metadata, created_at,
        out_operation_id, in_operation_id, hold_id)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $10, $11)
"""
SETTLE_HOLD = f"""
UPDATE holds SET status = $2, captured_amount = $3, updated_at = $4 WHERE id = $1
RETURNING {HOLD_COLUMNS}
"""
RELEASE_HOLD = """
UPDATE wallets
   SET held = held - $2,
       version = version + 1,
       updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
 WHERE id = $1
RETURNING updated_at
"""

# The job: the holds past their expiry of up to $1 wallets marked EXPIRED (as of the moment
# they expired), and each wallet's reservation released, a change of its version per hold.
# A wallet another transaction holds is left for the next run.
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
    RETURNING h.wallet_id, h.amount
), released AS (
    SELECT wallet_id, sum(amount) AS amount, count(*) AS holds FROM expired GROUP BY wallet_id
)
UPDATE wallets w
   SET held = w.held - r.amount,
       version = w.version + r.holds,
       updated_at = greatest(clock_timestamp(), w.updated_at + interval '1 microsecond')
  FROM released r
 WHERE w.id = r.wallet_id
RETURNING w.id, r.holds
"""

COUNT_OPEN = "SELECT count(*) FROM holds WHERE status = 'HELD' AND expires_at > clock_timestamp()"


class PostgresHolds:
    """Holds, their reading and their expiry on an asyncpg pool; waits at most ``timeout``
    seconds per call."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout

    async def place(
        self, hold_id: UUID, request: HoldRequest, idempotency: Idempotency | None = None
    ) -> HoldChanged:
        async with self._connection() as connection, connection.transaction():
            (wallet,) = await _lock_wallets(connection, [request.wallet_id])
            try:  # a hold needs what a withdrawal of its amount needs: that much available
                withdrawal = OperationRequest(OperationType.WITHDRAW, request.amount)
                next_balance(wallet.balance, withdrawal, wallet.held_minor)
            except InsufficientFunds as refusal:
                await _record_refusal(connection, idempotency, refusal, wallet, request.amount)
                refused = refusal
            else:
                await connection.execute(
                    PLACE_HOLD,
                    hold_id,
                    request.wallet_id,
                    request.to_wallet_id,
                    request.amount.currency.code,
                    request.amount.minor,
                    request.expires_in,
                    request.reference,
                    metadata_to_json(request.metadata),
                )
                await record_outcome(
                    connection, idempotency, Outcome.HELD, request.wallet_id, hold_id=hold_id
                )
                hold = await find_hold(connection, hold_id)
                assert hold is not None
                return HoldChanged(hold, tuple(await _read_wallets(connection, [wallet.id])))
        raise refused  # after the transaction: the refusal stays recorded

    async def capture(
        self, hold_id: UUID, amount: Money, idempotency: Idempotency | None = None
    ) -> HoldChanged:
        async with self._connection() as connection, connection.transaction():
            hold, wallets = await _lock_hold(connection, hold_id)
            hold.check_active()
            transfer_id = None if hold.to_wallet_id is None else time_ordered_uuids(1)[0]
            legs = hold.capture_legs(amount, transfer_id)
            refused = None
            if hold.to_wallet_id is not None:  # never refused for funds (they were held)
                payee = wallets[hold.to_wallet_id]
                try:
                    next_balance(payee.balance, legs[1].request, payee.held_minor)
                except BalanceLimitExceeded as refusal:
                    await _record_refusal(connection, idempotency, refusal, payee, amount)
                    refused = refusal
            if refused is None:
                captured = await _write_capture(connection, hold, legs, amount)
                await record_outcome(
                    connection,
                    idempotency,
                    Outcome.CAPTURED,
                    hold.wallet_id,
                    operation_id=captured.operations[0].id,
                    transfer_id=transfer_id,
                    hold_id=hold.id,
                )
                changed = await _read_wallets(connection, list(wallets))
                return HoldChanged(captured.hold, tuple(changed), captured)
        raise refused  # after the transaction: the refusal stays recorded

    async def void(self, hold_id: UUID, idempotency: Idempotency | None = None) -> HoldChanged:
        async with self._connection() as connection, connection.transaction():
            hold, _ = await _lock_hold(connection, hold_id)
            hold.check_active()
            at = await connection.fetchval(RELEASE_HOLD, hold.wallet_id, hold.amount.minor)
            row = await connection.fetchrow(SETTLE_HOLD, hold.id, HoldStatus.VOIDED.value, None, at)
            await record_outcome(
                connection, idempotency, Outcome.VOIDED, hold.wallet_id, hold_id=hold.id
            )
            wallets = await _read_wallets(connection, [hold.wallet_id])
            return HoldChanged(hold_from_row(row), tuple(wallets))

    async def find_hold(self, hold_id: UUID) -> Hold | None:
        async with self._connection() as connection:
            return await find_hold(connection, hold_id)

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
        async with self._connection() as connection:
            rows = await connection.fetch(EXPIRE_DUE, wallets)
            changed = await _read_wallets(connection, [row["id"] for row in rows]) if rows else []
        return sum(row["holds"] for row in rows), changed

    async def count_open(self) -> int:
        async with self._connection() as connection:
            count: int = await connection.fetchval(COUNT_OPEN)
        return count

    def _connection(self) -> AbstractAsyncContextManager[Connection]:
        return bounded_connection(self._pool, seconds_within(self._timeout))


async def _write_capture(
    connection: Connection, hold: Hold, legs: tuple[Leg, ...], amount: Money
) -> Captured:
    """Write the capture's entries (the payer's releasing the whole hold), its transfer
    when it pays a wallet, and the hold as captured."""
    entries = []
    for (wallet_id, request), entry_id in zip(legs, time_ordered_uuids(len(legs)), strict=True):
        release = hold.amount.minor if wallet_id == hold.wallet_id else 0
        row = await connection.fetchrow(
            CAPTURE_LEG,
            wallet_id,
            request.delta_minor,
            release,
            entry_id,
            request.type.value,
            request.amount.minor,
            request.reference,
            metadata_to_json(request.metadata),
            request.transfer_id,
            hold.id,
        )
        assert row is not None, "the wallet is locked"
        balance = Money(row["balance"], amount.currency)
        entries.append(request.entry(entry_id, wallet_id, balance, row["updated_at"]))
    transfer = None
    if len(entries) == 2:
        out, into = entries
        assert out.transfer_id is not None
        transfer = captured_transfer(out.transfer_id, hold, amount, (out, into))
        await connection.execute(
            RECORD_TRANSFER,
            transfer.id,
            transfer.from_wallet_id,
            transfer.to_wallet_id,
            amount.currency.code,
            amount.minor,
            hold.reference,
            metadata_to_json(hold.metadata),
            out.created_at,
            out.id,
            into.id,
            hold.id,
        )
    row = await connection.fetchrow(
        SETTLE_HOLD, hold.id, HoldStatus.CAPTURED.value, amount.minor, entries[0].created_at
    )
    return Captured(hold_from_row(row), tuple(entries), transfer)


async def _lock_wallets(connection: Connection, wallet_ids: list[UUID]) -> list[Wallet]:
    """The wallets locked in id order, as they are now. Raises WalletNotFound."""
    rows = await connection.fetch(LOCK_WALLETS, wallet_ids)
    found = {row["id"]: row for row in rows}
    for wallet_id in wallet_ids:
        if wallet_id not in found:
            raise WalletNotFound(wallet_id)
    return [_locked_wallet(found[wallet_id]) for wallet_id in wallet_ids]


async def _lock_hold(connection: Connection, hold_id: UUID) -> tuple[Hold, dict[UUID, Wallet]]:
    """The hold locked after its wallets (the payer's, and the payee's if it has one), as
    they all are now. Raises HoldNotFound."""
    row = await connection.fetchrow(HOLD_WALLETS, hold_id)
    if row is None:
        raise HoldNotFound(hold_id)
    wallet_ids = [row["wallet_id"]] + ([row["to_wallet_id"]] if row["to_wallet_id"] else [])
    wallets = await _lock_wallets(connection, wallet_ids)
    held = await connection.fetchrow(LOCK_HOLD, hold_id)
    return hold_from_row(held), {wallet.id: wallet for wallet in wallets}


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


def _locked_wallet(row: asyncpg.Record) -> Wallet:
    """A locked wallet's balance and what its holds reserve now (all a decision needs)."""
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
