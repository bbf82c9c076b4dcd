"""The ledger audit: every wallet's balance, version and holds against its operations and
holds, in SQL."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from wallet.domain.model import OperationType

# Each entry type's sign, as the domain declares it, bound as $2 and $3 of the queries
# that sum signed amounts (they name ``signed``): the ledger's arithmetic is the domain's.
SIGNED = """
    WITH signed AS (
        SELECT o.*, s.sign * o.amount AS effect
          FROM operations o
          JOIN unnest($2::text[], $3::integer[]) AS s(operation_type, sign)
            ON s.operation_type = o.operation_type
    )"""


def over_signed(query: str) -> str:
    """``query`` with the ledger's entries and their signed effects at hand, as ``signed``."""
    return SIGNED + query


@dataclass(frozen=True, slots=True)
class Check:
    """One invariant: what holds on a sound ledger, what a breach is, and the query for breaches."""

    held: str  # e.g. "every balance equals the sum of its ledger"
    breach: str  # what one row of the query is: "wallet whose balance …"
    breaches: str  # and several: "wallets whose balance …"
    query: str  # the breaching rows, at most $1 of them


CHECKS: dict[str, Check] = {
    "wallet": Check(
        held="every operation names a wallet of its own currency",
        breach="operation that names no wallet, or a wallet of another currency",
        breaches="operations that name no wallet, or a wallet of another currency",
        query="""
            SELECT o.id AS operation_id, o.wallet_id, o.currency, w.currency AS wallet_currency
              FROM operations o
              LEFT JOIN wallets w ON w.id = o.wallet_id
             WHERE w.id IS NULL OR w.currency <> o.currency
             LIMIT $1
        """,
    ),
    "balance": Check(
        held="every balance equals the sum of its ledger",
        breach="wallet whose balance differs from the sum of its ledger",
        breaches="wallets whose balance differs from the sum of their ledger",
        query=over_signed("""
            SELECT w.id AS wallet_id, w.balance, coalesce(l.total, 0) AS ledger_total
              FROM wallets w
              LEFT JOIN (
                  SELECT wallet_id, sum(effect) AS total FROM signed GROUP BY wallet_id
              ) l ON l.wallet_id = w.id
             WHERE w.balance <> coalesce(l.total, 0)
             LIMIT $1
        """),
    ),
    "version": Check(
        held="every version counts its wallet's operations, holds placed, and holds voided or"
        " marked expired",
        breach="wallet whose version differs from its operations and hold changes",
        breaches="wallets whose version differs from their operations and hold changes",
        # A capture is counted by its entry (one on each wallet it moves).
        query="""
            SELECT w.id AS wallet_id, w.version, coalesce(l.entries, 0) AS entries,
                   coalesce(h.placed, 0) AS holds, coalesce(h.released, 0) AS released
              FROM wallets w
              LEFT JOIN (
                  SELECT wallet_id, count(*) AS entries FROM operations GROUP BY wallet_id
              ) l ON l.wallet_id = w.id
              LEFT JOIN (
                  SELECT wallet_id, count(*) AS placed,
                         count(*) FILTER (WHERE status IN ('VOIDED', 'EXPIRED')) AS released
                    FROM holds GROUP BY wallet_id
              ) h ON h.wallet_id = w.id
             WHERE w.version
                   <> coalesce(l.entries, 0) + coalesce(h.placed, 0) + coalesce(h.released, 0)
             LIMIT $1
        """,
    ),
    "running total": Check(
        held="every balanceAfter is the running total of its ledger, never below zero",
        breach="operation whose balanceAfter breaks the running total or goes below zero",
        breaches="operations whose balanceAfter breaks the running total or goes below zero",
        query=over_signed("""
            SELECT wallet_id, id AS operation_id, balance_after, running
              FROM (
                  SELECT wallet_id, id, balance_after,
                         sum(effect) OVER (PARTITION BY wallet_id ORDER BY created_at, id)
                             AS running
                    FROM signed
              ) chain
             WHERE balance_after <> running OR running < 0
             LIMIT $1
        """),
    ),
    "idempotency": Check(
        held="every idempotency record names its wallet and what it made there: an entry, a hold",
        breach="idempotency record that names no wallet, or not the entry or hold it made there",
        breaches="idempotency records that name no wallet, or not the entry or hold they made"
        " there",
        query="""
            SELECT k.key, k.outcome, k.wallet_id, k.operation_id, k.hold_id
              FROM idempotency_keys k
              LEFT JOIN wallets w ON w.id = k.wallet_id
              LEFT JOIN operations o ON o.id = k.operation_id AND o.wallet_id = k.wallet_id
              LEFT JOIN holds h ON h.id = k.hold_id AND h.wallet_id = k.wallet_id
             WHERE w.id IS NULL
                OR (k.outcome IN ('APPLIED', 'CAPTURED') AND o.id IS NULL)
                OR (k.outcome IN ('HELD', 'CAPTURED', 'VOIDED') AND h.id IS NULL)
                OR (k.outcome = 'CAPTURED'
                    AND (h.status <> 'CAPTURED' OR o.hold_id IS DISTINCT FROM k.hold_id))
                OR (k.outcome = 'VOIDED' AND h.status <> 'VOIDED')
             LIMIT $1
        """,
    ),
    "transfers": Check(
        held="every transfer is its payer's TRANSFER_OUT and its payee's TRANSFER_IN, no more",
        breach="transfer whose entries differ from it, or transfer entry of no transfer",
        breaches="transfers whose entries differ from them, or transfer entries of no transfer",
        query="""
            SELECT t.id AS transfer_id, NULL::uuid AS operation_id,
                   coalesce(n.entries, 0) AS entries
              FROM transfers t
              LEFT JOIN operations o
                ON o.id = t.out_operation_id AND o.operation_type = 'TRANSFER_OUT'
               AND o.wallet_id = t.from_wallet_id AND o.transfer_id = t.id
               AND o.amount = t.amount AND o.currency = t.currency
              LEFT JOIN operations i
                ON i.id = t.in_operation_id AND i.operation_type = 'TRANSFER_IN'
               AND i.wallet_id = t.to_wallet_id AND i.transfer_id = t.id
               AND i.amount = t.amount AND i.currency = t.currency
              LEFT JOIN (
                  SELECT transfer_id, count(*) AS entries
                    FROM operations WHERE transfer_id IS NOT NULL GROUP BY transfer_id
              ) n ON n.transfer_id = t.id
             WHERE o.id IS NULL OR i.id IS NULL OR n.entries IS DISTINCT FROM 2
            UNION ALL
            SELECT e.transfer_id, e.id, NULL
              FROM operations e
              LEFT JOIN transfers t ON t.id = e.transfer_id
             WHERE (e.operation_type IN ('TRANSFER_OUT', 'TRANSFER_IN')
                    OR e.transfer_id IS NOT NULL)
               AND t.id IS NULL
             LIMIT $1
        """,
    ),
    "hold wallets": Check(
        held="every hold names a wallet of its own currency, and so does its payee",
        breach="hold that names no wallet, or a wallet of another currency",
        breaches="holds that name no wallet, or a wallet of another currency",
        query="""
            SELECT h.id AS hold_id, h.wallet_id, h.to_wallet_id, h.currency,
                   w.currency AS wallet_currency, p.currency AS payee_currency
              FROM holds h
              LEFT JOIN wallets w ON w.id = h.wallet_id
              LEFT JOIN wallets p ON p.id = h.to_wallet_id
             WHERE w.id IS NULL OR w.currency <> h.currency
                OR (h.to_wallet_id IS NOT NULL AND (p.id IS NULL OR p.currency <> h.currency))
             LIMIT $1
        """,
    ),
    "held": Check(
        held="every wallet's held amount is the sum of its holds marked HELD",
        breach="wallet whose held amount differs from the sum of its holds marked HELD",
        breaches="wallets whose held amount differs from the sum of their holds marked HELD",
        query="""
            SELECT w.id AS wallet_id, w.held, coalesce(h.total, 0) AS holds_marked_held
              FROM wallets w
              LEFT JOIN (
                  SELECT wallet_id, sum(amount) AS total FROM holds
                   WHERE status = 'HELD' GROUP BY wallet_id
              ) h ON h.wallet_id = w.id
             WHERE w.held <> coalesce(h.total, 0)
             LIMIT $1
        """,
    ),
    "held balance": Check(
        held="every heldBalance (its HELD holds not expired) is from zero to its balance",
        breach="wallet whose unexpired HELD holds reserve less than zero or more than its balance",
        breaches="wallets whose unexpired HELD holds reserve less than zero or more than their"
        " balance",
        # As the service reads it, from the wallet's held amount (wallet_held_now), and as
        # the holds add up: at the snapshot's moment, a hold from its expires_at on reserves
        # nothing, marked expired or not.
        query="""
            SELECT w.id AS wallet_id, w.balance, w.held_now, coalesce(h.total, 0) AS unexpired
              FROM (
                  SELECT id, balance,
                         CASE WHEN held = 0 THEN 0 ELSE wallet_held_now(id, held) END AS held_now
                    FROM wallets
              ) w
              LEFT JOIN (
                  SELECT wallet_id, sum(amount) AS total FROM holds
                   WHERE status = 'HELD' AND expires_at > clock_timestamp()
                   GROUP BY wallet_id
              ) h ON h.wallet_id = w.id
             WHERE coalesce(h.total, 0) > w.balance OR w.held_now < 0 OR w.held_now > w.balance
             LIMIT $1
        """,
    ),
    "captures": Check(
        held="every captured hold is its entries: a WITHDRAW, or a transfer naming it, of what it"
        " captured; every entry of a hold is its capture's",
        breach="captured hold whose entries differ from it, or entry or transfer of a hold not so"
        " captured",
        breaches="captured holds whose entries differ from them, or entries or transfers of holds"
        " not so captured",
        # A captured hold without a payee: one WITHDRAW on its wallet of what it captured, in
        # no transfer. With one: a TRANSFER_OUT on its wallet and a TRANSFER_IN on the payee's,
        # both of what it captured, in one transfer from the one to the other that names the
        # hold. Each entry naming it is one of these; an entry naming a hold names a captured
        # one; and a transfer naming a hold is made of entries that name it.
        query="""
            SELECT h.id AS hold_id, NULL::uuid AS operation_id, coalesce(n.entries, 0) AS entries
              FROM holds h
              LEFT JOIN (
                  SELECT hold_id, count(*) AS entries
                    FROM operations WHERE hold_id IS NOT NULL GROUP BY hold_id
              ) n ON n.hold_id = h.id
              LEFT JOIN operations o
                ON o.hold_id = h.id AND o.wallet_id = h.wallet_id
               AND o.amount = h.captured_amount AND o.currency = h.currency
               AND CASE WHEN h.to_wallet_id IS NULL
                        THEN o.operation_type = 'WITHDRAW' AND o.transfer_id IS NULL
                        ELSE o.operation_type = 'TRANSFER_OUT' END
              LEFT JOIN operations i
                ON i.hold_id = h.id AND i.wallet_id = h.to_wallet_id
               AND i.operation_type = 'TRANSFER_IN' AND i.transfer_id = o.transfer_id
               AND i.amount = h.captured_amount AND i.currency = h.currency
              LEFT JOIN transfers t
                ON t.id = o.transfer_id AND t.hold_id = h.id
               AND t.from_wallet_id = h.wallet_id AND t.to_wallet_id = h.to_wallet_id
               AND t.amount = h.captured_amount
             WHERE h.status = 'CAPTURED'
               AND (o.id IS NULL
                    OR n.entries IS DISTINCT FROM 1 + (h.to_wallet_id IS NOT NULL)::integer
                    OR (h.to_wallet_id IS NOT NULL AND (i.id IS NULL OR t.id IS NULL)))
            UNION ALL
            SELECT e.hold_id, e.id, NULL
              FROM operations e
              LEFT JOIN holds h ON h.id = e.hold_id
             WHERE e.hold_id IS NOT NULL AND h.status IS DISTINCT FROM 'CAPTURED'
            UNION ALL
            SELECT t.hold_id, t.out_operation_id, NULL
              FROM transfers t
              LEFT JOIN operations o ON o.id = t.out_operation_id
             WHERE t.hold_id IS NOT NULL AND o.hold_id IS DISTINCT FROM t.hold_id
             LIMIT $1
        """,
    ),
    "conservation": Check(
        # A capture without a payee is a WITHDRAW entry, counted here; a capture to a
        # payee is a transfer, which moves money within the currency.
        held="in each currency the balances add up to its deposits less its withdrawals",
        breach="currency whose balances differ from its deposits less its withdrawals",
        breaches="currencies whose balances differ from their deposits less their withdrawals",
        query=over_signed("""
            SELECT currency, coalesce(b.total, 0) AS balances,
                   coalesce(l.total, 0) AS deposits_less_withdrawals
              FROM (SELECT currency, sum(balance) AS total FROM wallets GROUP BY currency) b
              FULL JOIN (
                  SELECT currency, sum(effect) AS total
                    FROM signed
                   WHERE operation_type IN ('DEPOSIT', 'WITHDRAW')
                   GROUP BY currency
              ) l USING (currency)
             WHERE coalesce(b.total, 0) <> coalesce(l.total, 0)
             LIMIT $1
        """),
    ),
    "order": Check(
        held="no two operations of a wallet share a time: the ledger's order is unambiguous",
        breach="instant at which a wallet has several operations, so their order is ambiguous",
        breaches="instants at which a wallet has several operations, so their order is ambiguous",
        query="""
            SELECT wallet_id, created_at, count(*) AS entries
              FROM operations
             GROUP BY wallet_id, created_at
            HAVING count(*) > 1
             LIMIT $1
        """,
    ),
    "events": Check(
        held="every event names a change of its wallet and type, and no change has two",
        breach="event that names no such change, or a change with several events",
        breaches="events that name no such change, or changes with several events",
        query="""
            SELECT e.id AS event_id, e.type, e.wallet_id, e.subject_id
              FROM events e
              LEFT JOIN wallets w
                ON e.type = 'wallet.created' AND w.id = e.subject_id AND w.id = e.wallet_id
               AND e.payee_id IS NULL
              LEFT JOIN operations o
                ON e.type = 'operation.applied' AND o.id = e.subject_id
               AND o.wallet_id = e.wallet_id AND o.hold_id IS NULL AND e.payee_id IS NULL
               AND o.operation_type IN ('DEPOSIT', 'WITHDRAW')
              LEFT JOIN transfers t
                ON e.type = 'transfer.completed' AND t.id = e.subject_id
               AND t.from_wallet_id = e.wallet_id AND t.to_wallet_id = e.payee_id
               AND t.hold_id IS NULL
              LEFT JOIN holds h
                ON h.id = e.subject_id AND h.wallet_id = e.wallet_id
               AND (e.type = 'hold.created' AND e.payee_id IS NULL
                    OR e.type = 'hold.captured' AND h.status = 'CAPTURED'
                       AND e.payee_id IS NOT DISTINCT FROM h.to_wallet_id
                    OR e.type = 'hold.voided' AND h.status = 'VOIDED' AND e.payee_id IS NULL
                    OR e.type = 'hold.expired' AND h.status = 'EXPIRED' AND e.payee_id IS NULL)
             WHERE w.id IS NULL AND o.id IS NULL AND t.id IS NULL AND h.id IS NULL
            UNION ALL
            SELECT max(id), type, NULL, subject_id FROM events
             GROUP BY type, subject_id HAVING count(*) > 1
             LIMIT $1
        """,
    ),
    # Changes made before the feed began have none, nor those whose events the retention
    # dropped: once it has, the check covers the changes made after the oldest event kept,
    # less a margin for an expiry marked late (stamped with the moment the hold expired).
    "announced": Check(
        held="every change since the oldest event kept has its event",
        breach="change since the oldest event kept that has no event",
        breaches="changes since the oldest event kept that have no event",
        query="""
            WITH since AS (
                SELECT CASE WHEN f.dropped_through = 0 THEN f.began_at
                            ELSE greatest(f.began_at, (SELECT min(created_at) FROM events)
                                                      + interval '2 minutes') END AS at
                  FROM event_feed f
            ),
            changes AS (
                SELECT 'wallet.created' AS type, id, created_at FROM wallets
                UNION ALL
                SELECT 'operation.applied', id, created_at FROM operations
                 WHERE hold_id IS NULL AND operation_type IN ('DEPOSIT', 'WITHDRAW')
                UNION ALL
                SELECT 'transfer.completed', id, created_at FROM transfers WHERE hold_id IS NULL
                UNION ALL
                SELECT 'hold.created', id, created_at FROM holds
                UNION ALL
                SELECT 'hold.' || lower(status), id, updated_at FROM holds WHERE status <> 'HELD'
            )
            SELECT c.type, c.id AS subject_id, c.created_at
              FROM changes c
              JOIN since ON c.created_at > since.at
              LEFT JOIN events e ON e.type = c.type AND e.subject_id = c.id
             WHERE e.id IS NULL
             LIMIT $1
        """,
    ),
}

COUNTS = (
    "SELECT (SELECT count(*) FROM wallets) AS wallets, (SELECT count(*) FROM operations) AS ops,"
    " (SELECT count(*) FROM holds) AS holds"
)


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The ledger's size and, by check name, the breaching rows found (an empty list: it held).

    A check returns at most ``examples + 1`` rows, so a list that long means "more than
    ``examples``".
    """

    wallets: int
    operations: int
    findings: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    examples: int = 20
    holds: int = 0

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
                name: [
                    dict(row)
                    for row in await connection.fetch(check.query, *_arguments(check, examples + 1))
                ]
                for name, check in CHECKS.items()
            }
    finally:
        await connection.close()
    return AuditReport(counts["wallets"], counts["ops"], findings, examples, counts["holds"])


def _arguments(check: Check, limit: int) -> tuple[object, ...]:
    """The check's arguments: the limit, and the entry signs where it sums them."""
    if SIGNED not in check.query:
        return (limit,)
    types = list(OperationType)
    return (limit, [t.value for t in types], [t.sign for t in types])


def summary(report: AuditReport) -> list[str]:
    """The report as lines for people: each check named by what held, or by its breaches."""
    lines = [
        f"audited {report.wallets} wallets, {report.operations} operations and {report.holds}"
        " holds (amounts in cents)"
    ]
    for name, check in CHECKS.items():
        rows = report.findings.get(name, [])
        if not rows:
            lines.append(f"ok    {check.held}")
            continue
        if len(rows) > report.examples:
            lines.append(f"FAIL  more than {report.examples} {check.breaches}")
        else:
            lines.append(f"FAIL  {len(rows)} {check.breach if len(rows) == 1 else check.breaches}")
        shown = rows[: report.examples]
        lines += ["      " + ", ".join(f"{k}={v}" for k, v in row.items()) for row in shown]
    return lines
