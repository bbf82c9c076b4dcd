"""Domain values from the rows of the wallets and operations tables."""

from __future__ import annotations

import asyncpg

from wallet.adapters.json_metadata import metadata_from_json
from wallet.domain.currency import CURRENCIES
from wallet.domain.model import Operation, OperationType, Wallet
from wallet.domain.money import Money
from wallet.domain.transfers import Transfer


def wallet_from_row(row: asyncpg.Record) -> Wallet:
    return Wallet(
        id=row["id"],
        balance=Money(row["balance"], CURRENCIES[row["currency"]]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        metadata=metadata_from_json(row["metadata"]),
    )


def operation_from_row(row: asyncpg.Record, prefix: str = "") -> Operation:
    """A ledger entry from its columns (named with ``prefix`` when joined beside others)."""
    currency = CURRENCIES[row[prefix + "currency"]]
    return Operation(
        id=row[prefix + "id"],
        wallet_id=row[prefix + "wallet_id"],
        type=OperationType(row[prefix + "operation_type"]),
        amount=Money(row[prefix + "amount"], currency),
        balance_after=Money(row[prefix + "balance_after"], currency),
        created_at=row[prefix + "created_at"],
        reference=row[prefix + "reference"],
        metadata=metadata_from_json(row[prefix + "metadata"]),
        transfer_id=row[prefix + "transfer_id"],
    )


def transfer_from_rows(head: asyncpg.Record, out: Operation, into: Operation) -> Transfer:
    """A transfer from its row and its two entries."""
    return Transfer(
        id=head["id"],
        from_wallet_id=head["from_wallet_id"],
        to_wallet_id=head["to_wallet_id"],
        amount=out.amount,
        created_at=head["created_at"],
        operations=(out, into),
        reference=head["reference"],
        metadata=metadata_from_json(head["metadata"]),
    )
