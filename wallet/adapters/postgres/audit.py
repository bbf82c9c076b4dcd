"""The ledger audit: every wallet's balance and version against its operations, in SQL."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

# Each query returns the rows that break one invariant, at most $1 of them.
CHECKS: dict[str, str] = {
    "balance differs from the sum of the ledger": """
        SELECT w.id AS wallet_id, w.balance, coalesce(l.total, 0) AS ledger_total
          FROM wallets w
          LEFT JOIN (
              SELECT wallet_id,
                     sum(CASE operation_type WHEN 'DEPOSIT' THEN amount ELSE -amount END)
                         AS total
                FROM operations GROUP BY wallet_id
          ) l ON l.wallet_id = w.id
         WHERE w.balance <> coalesce(l.total, 0)
         LIMIT $1
    """,
    "version differs from the number of operations": """
        SELECT w.id AS wallet_id, w.version, coalesce(l.entries, 0) AS entries
          FROM wallets w
          LEFT JOIN (SELECT wallet_id, count(*) AS entries FROM operations GROUP BY wallet_id) l
                 ON l.wallet_id = w.id
         WHERE w.version <> coalesce(l.entries, 0)
         LIMIT $1
    """,
    "balanceAfter breaks the running total": """
        SELECT wallet_id, id AS operation_id, balance_after, running
          FROM (
              SELECT wallet_id, id, balance_after,
                     sum(CASE operation_type WHEN 'DEPOSIT' THEN amount ELSE -amount END)
                         OVER (PARTITION BY wallet_id ORDER BY created_at, id) AS running
                FROM operations
          ) chain
         WHERE balance_after <> running OR running < 0
         LIMIT $1
    """,
    "an idempotency record names no wallet or ledger entry of its wallet": """
        SELECT k.key, k.outcome, k.wallet_id, k.operation_id
          FROM idempotency_keys k
          LEFT JOIN wallets w ON w.id = k.wallet_id
          LEFT JOIN operations o ON o.id = k.operation_id AND o.wallet_id = k.wallet_id
         WHERE w.id IS NULL OR (k.outcome = 'APPLIED' AND o.id IS NULL)
         LIMIT $1
    """,
    "two operations of a wallet share a time, so their order is ambiguous": """
        SELECT wallet_id, created_at, count(*) AS entries
          FROM operations
         GROUP BY wallet_id, created_at
        HAVING count(*) > 1
         LIMIT $1
    """,
}

COUNTS = (
    "SELECT (SELECT count(*) FROM wallets) AS wallets, (SELECT count(*) FROM operations) AS ops"
)


@dataclass(frozen=True, slots=True)
class AuditReport:
    wallets: int
    operations: int
    findings: dict[str, list[dict[str, object]]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not any(self.findings.values())


async def audit(dsn: str, examples: int = 20) -> AuditReport:
    """Check every invariant of the ledger in one repeatable-read snapshot."""
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            counts = await connection.fetchrow(COUNTS)
            assert counts is not None
            findings = {
                name: [dict(row) for row in await connection.fetch(query, examples)]
                for name, query in CHECKS.items()
            }
    finally:
        await connection.close()
    return AuditReport(counts["wallets"], counts["ops"], findings)
