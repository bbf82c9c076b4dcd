"""Domain values from the rows of the wallets and operations tables."""

from __future__ import annotations

import asyncpg

from wallet.adapters.json_metadata import metadata_from_json
from wallet.domain.currency import CURRENCIES
from wallet.domain.model import Operation, OperationType, Wallet
from wallet.domain.money import Money
from wallet.domain.transfers import Transfer

# Statements interpolate only constant fragments such as these, so bandit's B608 is
# silenced where they do; every value reaches PostgreSQL as a bind parameter.

# What a wallet's holds reserve now, and when the next of them expires: computed only for
# a wallet whose holds reserve anything (most reserve nothing, and pay nothing for holds).
HELD_NOW = (
    "CASE WHEN {wallet}.held = 0 THEN 0::bigint"
    " ELSE wallet_held_now({wallet}.id, {wallet}.held) END"
)
HELD_UNTIL = (
    "CASE WHEN {wallet}.held = 0 THEN NULL::timestamptz"
    " ELSE wallet_held_until({wallet}.id, {wallet}.held) END"
)


def held_columns(wallet: str = "wallets") -> str:
    """The columns ``held_now`` and ``held_until`` of the wallet row named ``wallet``."""
    return (
        f"{HELD_NOW.format(wallet=wallet)} AS held_now, "
        f"{HELD_UNTIL.format(wallet=wallet)} AS held_until"
    )


# A wallet as ``wallet_from_row`` reads it, from the table ``wallets``.
WALLET_COLUMNS = "id, balance, currency, version, created_at, updated_at, metadata, " + (
    held_columns()
)


# A ledger entry as ``operation_from_row`` reads it, from the table ``operations``.
OPERATION_COLUMNS = (
    "id, wallet_id, operation_type, amount, balance_after, currency, created_at, "
    "reference, metadata, transfer_id, hold_id"
)


def wallet_from_row(row: asyncpg.Record) -> Wallet:
    return Wallet(
        id=row["id"],
        balance=Money(row["balance"], CURRENCIES[row["currency"]]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        metadata=metadata_from_json(row["metadata"]),
        held_minor=row.get("held_now") or 0,
        held_until=row.get("held_until"),
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
        hold_id=row[prefix + "hold_id"],
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
        hold_id=head["hold_id"],
    )
