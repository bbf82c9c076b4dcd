"""Holds on PostgreSQL, as read back: the hold with the status it has now, and a capture's
entries."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from wallet.adapters.json_metadata import metadata_from_json
from wallet.adapters.postgres.rows import OPERATION_COLUMNS, operation_from_row
from wallet.domain.currency import CURRENCIES
from wallet.domain.holds import Captured, Hold, HoldStatus
from wallet.domain.model import Operation
from wallet.domain.money import Money
from wallet.domain.transfers import Transfer

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection

# A hold as it is now: one still marked HELD past its expiry reads EXPIRED, changed then.
_EXPIRED_NOW = "(status = 'HELD' AND expires_at <= clock_timestamp())"
HOLD_STATUS_NOW = f"CASE WHEN {_EXPIRED_NOW} THEN 'EXPIRED' ELSE status END"
HOLD_COLUMNS = f"""id, wallet_id, to_wallet_id, currency, amount, captured_amount,
       {HOLD_STATUS_NOW} AS status,
       expires_at, reference, metadata, created_at,
       CASE WHEN {_EXPIRED_NOW} THEN expires_at ELSE updated_at END AS updated_at"""

FIND_HOLD = f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1"  # nosec B608
FIND_HOLDS = f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = ANY($1::uuid[])"  # nosec B608
# The entries of captured holds, each hold's together, its TRANSFER_OUT before its IN.
CAPTURE_ENTRIES = f"""
SELECT {OPERATION_COLUMNS} FROM operations WHERE hold_id = ANY($1::uuid[])
 ORDER BY hold_id, operation_type = 'TRANSFER_IN'
"""  # nosec B608


async def find_hold(connection: Connection, hold_id: UUID) -> Hold | None:
    """The hold as it is now, if there is one by that id."""
    row = await connection.fetchrow(FIND_HOLD, hold_id)
    return None if row is None else hold_from_row(row)


async def find_holds(connection: Connection, hold_ids: list[UUID]) -> dict[UUID, Hold]:
    """The holds as they are now, of those ids that name one."""
    rows = await connection.fetch(FIND_HOLDS, hold_ids)
    return {row["id"]: hold_from_row(row) for row in rows}


async def find_capture(connection: Connection, hold: Hold) -> Captured:
    """A captured hold with the entries its capture wrote (and their transfer)."""
    return (await find_captures(connection, [hold]))[hold.id]


async def find_captures(connection: Connection, holds: list[Hold]) -> dict[UUID, Captured]:
    """Captured holds with their captures' entries, in one statement, by hold id."""
    entries: dict[UUID, list[Operation]] = {hold.id: [] for hold in holds}
    for row in await connection.fetch(CAPTURE_ENTRIES, list(entries)):
        entries[row["hold_id"]].append(operation_from_row(row))
    return {hold.id: _captured(hold, tuple(entries[hold.id])) for hold in holds}


def _captured(hold: Hold, entries: tuple[Operation, ...]) -> Captured:
    """The capture's answer from its entries: a transfer too, when it paid a wallet."""
    transfer = None
    if len(entries) == 2 and hold.captured_amount is not None:
        out, into = entries
        assert out.transfer_id is not None
        transfer = captured_transfer(out.transfer_id, hold, hold.captured_amount, (out, into))
    return Captured(hold, entries, transfer)


def hold_from_row(row: asyncpg.Record | None) -> Hold:
    assert row is not None, "the hold is there: it was found, and is locked"
    currency = CURRENCIES[row["currency"]]
    captured = row["captured_amount"]
    return Hold(
        id=row["id"],
        wallet_id=row["wallet_id"],
        amount=Money(row["amount"], currency),
        status=HoldStatus(row["status"]),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        to_wallet_id=row["to_wallet_id"],
        captured_amount=None if captured is None else Money(captured, currency),
        reference=row["reference"],
        metadata=metadata_from_json(row["metadata"]),
    )


def captured_transfer(
    transfer_id: UUID, hold: Hold, amount: Money, entries: tuple[Operation, Operation]
) -> Transfer:
    assert hold.to_wallet_id is not None
    return Transfer(
        transfer_id,
        hold.wallet_id,
        hold.to_wallet_id,
        amount,
        entries[0].created_at,
        entries,
        hold.reference,
        hold.metadata,
        hold.id,
    )
