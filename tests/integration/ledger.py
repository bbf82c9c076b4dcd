"""Checks of the ledger's invariants, straight from the tables."""

from __future__ import annotations

import uuid

import asyncpg


async def assert_ledger_consistent(
    pool: asyncpg.Pool, wallet_id: uuid.UUID
) -> list[asyncpg.Record]:
    """balance = sum(deposits) - sum(withdrawals), and each balanceAfter is the running total."""
    balance = await pool.fetchval("SELECT balance FROM wallets WHERE id = $1", wallet_id)
    rows = await pool.fetch(
        "SELECT operation_type, amount, balance_after, created_at FROM operations"
        " WHERE wallet_id = $1 ORDER BY created_at, id",
        wallet_id,
    )
    running = 0
    for row in rows:
        running += row["amount"] if row["operation_type"] == "DEPOSIT" else -row["amount"]
        assert running >= 0, f"negative running balance at {row}"
        assert row["balance_after"] == running, f"balanceAfter breaks the chain at {row}"
    assert balance == running
    times = [row["created_at"] for row in rows]
    assert times == sorted(set(times)), "ledger times are not strictly increasing"
    return rows
