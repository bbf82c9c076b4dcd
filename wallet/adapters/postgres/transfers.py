"""Transfers on PostgreSQL, as read back: the transfer row and its two ledger entries."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from wallet.adapters.postgres.rows import operation_from_row, transfer_from_rows
from wallet.domain.transfers import Transfer

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection

# Transfers by id, each as two rows: its TRANSFER_OUT, then its TRANSFER_IN.
FIND_TRANSFERS = """
SELECT t.id, t.from_wallet_id, t.to_wallet_id, t.reference, t.metadata, t.created_at,
       t.hold_id,
       o.id AS op_id, o.wallet_id AS op_wallet_id, o.operation_type AS op_operation_type,
       o.amount AS op_amount, o.balance_after AS op_balance_after, o.currency AS op_currency,
       o.created_at AS op_created_at, o.reference AS op_reference, o.metadata AS op_metadata,
       o.transfer_id AS op_transfer_id, o.hold_id AS op_hold_id
  FROM transfers t
  JOIN operations o ON o.id IN (t.out_operation_id, t.in_operation_id)
 WHERE t.id = ANY($1::uuid[])
 ORDER BY t.id, o.id = t.in_operation_id
"""


async def find_transfer(connection: Connection, transfer_id: UUID) -> Transfer | None:
    """The transfer with its two entries, if there is one by that id."""
    rows = await connection.fetch(FIND_TRANSFERS, [transfer_id])
    if not rows:
        return None
    out, into = (operation_from_row(row, prefix="op_") for row in rows)
    return transfer_from_rows(rows[0], out, into)
