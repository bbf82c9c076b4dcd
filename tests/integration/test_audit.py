"""``python -m wallet audit``: silent on a sound ledger, loud on every kind of damage."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import asyncpg
import pytest

from tests.integration.conftest import AppFactory
from wallet.adapters.postgres.audit import CHECKS, AuditReport, audit, summary


def run_audit(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WALLET_DATABASE_URL": url, "WALLET_REDIS_URL": ""}
    return subprocess.run(
        [sys.executable, "-m", "wallet", "audit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
async def ledger_url(migrated_url: str, make_client: AppFactory) -> str:
    """A fresh database with three wallets moved through the real service, under keys:
    deposits and withdrawals on each, then two transfers (the first pays the second, the
    second the third), then four holds: one captured whole without a payee (on the third),
    one captured in part to a payee (the second pays the third), one voided (on the first)
    and one still held (on the second)."""
    client = await make_client(database_url=migrated_url, redis_url="")
    wallets: list[str] = []
    for _ in range(3):
        wallet_id = (await (await client.post("/api/v1/wallets")).json())["id"]
        for kind, amount in [("DEPOSIT", "10.00"), ("WITHDRAW", "2.50"), ("DEPOSIT", "0.01")]:
            body = {"operationType": kind, "amount": amount}
            headers = {"Idempotency-Key": f"{wallet_id}:{kind}:{amount}"}
            path = f"/api/v1/wallets/{wallet_id}/operation"
            response = await client.post(path, json=body, headers=headers)
            assert response.status == 200
        wallets.append(wallet_id)
    for payer, payee in [(wallets[0], wallets[1]), (wallets[1], wallets[2])]:
        body = {"fromWalletId": payer, "toWalletId": payee, "amount": "1.25"}
        headers = {"Idempotency-Key": f"transfer:{payer}"}
        response = await client.post("/api/v1/transfers", json=body, headers=headers)
        assert response.status == 201, await response.text()
    first, second, third = wallets
    holds = [
        (third, {"amount": "2.00"}, "capture", None),
        (second, {"amount": "3.00", "toWalletId": third}, "capture", {"amount": "1.50"}),
        (first, {"amount": "1.00"}, "void", None),
        (second, {"amount": "0.50"}, None, None),
    ]
    for n, (wallet_id, body, settle, settling) in enumerate(holds):
        headers = {"Idempotency-Key": f"hold:{n}"}
        path = f"/api/v1/wallets/{wallet_id}/holds"
        response = await client.post(path, json=body, headers=headers)
        assert response.status == 201, await response.text()
        if settle is not None:
            hold_id = (await response.json())["id"]
            headers = {"Idempotency-Key": f"{settle}:{n}"}
            path = f"/api/v1/holds/{hold_id}/{settle}"
            response = await client.post(path, json=settling, headers=headers)
            assert response.status == 200, await response.text()
    return migrated_url


async def test_a_sound_ledger_passes(ledger_url: str) -> None:
    report = await audit(ledger_url)
    assert (report.wallets, report.operations, report.holds, report.clean) == (3, 16, 4, True)

    result = await asyncio.to_thread(run_audit, ledger_url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "audited 3 wallets, 16 operations and 4 holds (amounts in cents)",
        "ok    every operation names a wallet of its own currency",
        "ok    every balance equals the sum of its ledger",
        "ok    every version counts its wallet's operations, holds placed, and holds voided or"
        " marked expired",
        "ok    every balanceAfter is the running total of its ledger, never below zero",
        "ok    every idempotency record names its wallet and what it made there: an entry, a hold",
        "ok    every transfer is its payer's TRANSFER_OUT and its payee's TRANSFER_IN, no more",
        "ok    every hold names a wallet of its own currency, and so does its payee",
        "ok    every wallet's held amount is the sum of its holds marked HELD",
        "ok    every heldBalance (its HELD holds not expired) is from zero to its balance",
        "ok    every captured hold is its entries: a WITHDRAW, or a transfer naming it, of what"
        " it captured; every entry of a hold is its capture's",
        "ok    in each currency the balances add up to its deposits less its withdrawals",
        "ok    no two operations of a wallet share a time: the ledger's order is unambiguous",
        "ok    every event names a change of its wallet and type, and no change has two",
        "ok    every change since the oldest event kept has its event",
    ]


FIRST_WALLET = "(SELECT id FROM wallets ORDER BY id LIMIT 1)"
A_TRANSFER = "(SELECT id FROM transfers WHERE hold_id IS NULL ORDER BY id LIMIT 1)"
CAPTURE_TRANSFER = "(SELECT id FROM transfers WHERE hold_id IS NOT NULL)"
HELD_HOLD = "(SELECT id FROM holds WHERE status = 'HELD')"
VOIDED_HOLD = "(SELECT id FROM holds WHERE status = 'VOIDED')"
VOID_THE_HELD_HOLD = (
    f"UPDATE holds SET status = 'VOIDED', updated_at = clock_timestamp() WHERE id = {HELD_HOLD}"
)
HELD_WALLET = f"(SELECT wallet_id FROM holds WHERE id = {HELD_HOLD})"
# The wallet that pays and is not paid: four entries (three of its own and its transfer's).
FIRST_PAYER = "(SELECT from_wallet_id FROM transfers EXCEPT SELECT to_wallet_id FROM transfers)"
# The ledger's tables refuse updates and deletes; damage that needs one lifts that guard in
# the test's own database first.
UNGUARDED = (
    "ALTER TABLE operations DISABLE TRIGGER operations_append_only;"
    " ALTER TABLE transfers DISABLE TRIGGER transfers_append_only;"
    " ALTER TABLE holds DISABLE TRIGGER holds_settle_once; "
)
# A hold of the first wallet reserving more than its balance (as a change: its version too).
OVERDRAWN_BY_A_HOLD = (
    "INSERT INTO holds (id, wallet_id, currency, amount, expires_at, created_at, updated_at)"
    " SELECT gen_random_uuid(), id, currency, balance + 1, now() + interval '1 day', now(),"
    f" now() FROM wallets WHERE id = {FIRST_WALLET};"
    " UPDATE wallets SET held = held + balance + 1, version = version + 1"
    f" WHERE id = {FIRST_WALLET}"
)
# By the check that finds it: each damage, and the line that names the breach.
DAMAGE = {
    "event of no change": (
        "events",
        "INSERT INTO events (type, wallet_id, subject_id, created_at)"
        f" SELECT 'operation.applied', {FIRST_WALLET}, gen_random_uuid(), clock_timestamp()",
        "FAIL  1 event that names no such change, or a change with several events",
    ),
    "a change announced twice": (
        "events",
        "INSERT INTO events (type, wallet_id, subject_id, created_at)"
        " SELECT type, wallet_id, subject_id, created_at FROM events"
        " WHERE type = 'hold.voided'",
        "FAIL  1 event that names no such change, or a change with several events",
    ),
    "a change without its event": (
        "announced",
        "DELETE FROM events WHERE type = 'transfer.completed'",
        "FAIL  2 changes since the oldest event kept that have no event",
    ),
    "entry of no wallet": (
        "wallet",
        "INSERT INTO operations"
        " (id, wallet_id, operation_type, amount, balance_after, currency, created_at)"
        " VALUES (gen_random_uuid(), gen_random_uuid(), 'DEPOSIT', 1, 1, 'USD', clock_timestamp())",
        "FAIL  1 operation that names no wallet, or a wallet of another currency",
    ),
    "entry in another currency than its wallet": (
        "wallet",
        UNGUARDED + "UPDATE operations SET currency = 'EUR' WHERE id = (SELECT id FROM"
        " operations WHERE operation_type = 'WITHDRAW' AND hold_id IS NULL ORDER BY id LIMIT 1)",
        "FAIL  1 operation that names no wallet, or a wallet of another currency",
    ),
    "balance": (
        "balance",
        f"UPDATE wallets SET balance = balance + 1 WHERE id = {FIRST_WALLET}",
        "FAIL  1 wallet whose balance differs from the sum of its ledger",
    ),
    "version": (
        "version",
        "UPDATE wallets SET version = version + 1",
        "FAIL  3 wallets whose version differs from their operations and hold changes",
    ),
    "hold voided without counting it": (
        "version",
        f"UPDATE wallets SET held = held - 50 WHERE id = {HELD_WALLET}; {VOID_THE_HELD_HOLD}",
        "FAIL  1 wallet whose version differs from its operations and hold changes",
    ),
    "idempotency": (
        "idempotency",
        "INSERT INTO idempotency_keys (key, fingerprint, request_id, outcome, wallet_id,"
        f" operation_id) SELECT 'orphan', '\\x00', 'r', 'APPLIED', {FIRST_WALLET},"
        " gen_random_uuid()",
        "FAIL  1 idempotency record that names no wallet, or not the entry or hold it made there",
    ),
    "idempotency record of a void naming a hold still held": (
        "idempotency",
        f"UPDATE idempotency_keys SET hold_id = {HELD_HOLD}, wallet_id = {HELD_WALLET}"
        " WHERE outcome = 'VOIDED'",
        "FAIL  1 idempotency record that names no wallet, or not the entry or hold it made there",
    ),
    "idempotency record of a capture naming another entry": (
        "idempotency",
        "UPDATE idempotency_keys k SET operation_id = (SELECT id FROM operations o"
        " WHERE o.wallet_id = k.wallet_id AND o.hold_id IS NULL ORDER BY id LIMIT 1)"
        " WHERE outcome = 'CAPTURED'",
        "FAIL  2 idempotency records that name no wallet, or not the entry or hold they made there",
    ),
    "running total": (
        "running total",
        "INSERT INTO operations"
        " (id, wallet_id, operation_type, amount, balance_after, currency, created_at)"
        " SELECT gen_random_uuid(), id, 'DEPOSIT', 1, 1, currency, '2000-01-01'"
        f" FROM wallets WHERE id = {FIRST_PAYER}",
        "FAIL  4 operations whose balanceAfter breaks the running total or goes below zero",
    ),
    "transfer entry of no transfer": (
        "transfers",
        "INSERT INTO operations (id, wallet_id, operation_type, amount, balance_after,"
        " currency, created_at, transfer_id) SELECT gen_random_uuid(), id, 'TRANSFER_IN', 1,"
        f" balance + 1, currency, clock_timestamp(), gen_random_uuid() FROM wallets"
        f" WHERE id = {FIRST_WALLET}",
        "FAIL  1 transfer whose entries differ from it, or transfer entry of no transfer",
    ),
    "transfer credited more than it debited": (
        "transfers",
        UNGUARDED + "UPDATE operations SET amount = amount + 1"
        f" WHERE transfer_id = {A_TRANSFER} AND operation_type = 'TRANSFER_IN'",
        "FAIL  1 transfer whose entries differ from it, or transfer entry of no transfer",
    ),
    "transfer paid to another wallet": (
        "transfers",
        UNGUARDED + "UPDATE transfers SET to_wallet_id = from_wallet_id,"
        f" from_wallet_id = to_wallet_id WHERE id = {A_TRANSFER}",
        "FAIL  1 transfer whose entries differ from it, or transfer entry of no transfer",
    ),
    "transfer with a third entry": (
        "transfers",
        "INSERT INTO operations (id, wallet_id, operation_type, amount, balance_after,"
        " currency, created_at, transfer_id) SELECT gen_random_uuid(), to_wallet_id,"
        f" 'TRANSFER_IN', amount, 0, currency, clock_timestamp(), id FROM transfers"
        f" WHERE id = {A_TRANSFER}",
        "FAIL  1 transfer whose entries differ from it, or transfer entry of no transfer",
    ),
    "hold of no wallet": (
        "hold wallets",
        "INSERT INTO holds (id, wallet_id, currency, amount, expires_at, created_at, updated_at)"
        " VALUES (gen_random_uuid(), gen_random_uuid(), 'USD', 1, now() + interval '1 day',"
        " now(), now())",
        "FAIL  1 hold that names no wallet, or a wallet of another currency",
    ),
    "hold paying no wallet": (
        "hold wallets",
        UNGUARDED + f"UPDATE holds SET to_wallet_id = gen_random_uuid() WHERE id = {HELD_HOLD}",
        "FAIL  1 hold that names no wallet, or a wallet of another currency",
    ),
    "hold in another currency than its wallet": (
        "hold wallets",
        UNGUARDED + f"UPDATE holds SET currency = 'EUR' WHERE id = {HELD_HOLD}",
        "FAIL  1 hold that names no wallet, or a wallet of another currency",
    ),
    "held amount beside its holds": (
        "held",
        f"UPDATE wallets SET held = held + 1 WHERE id = {FIRST_WALLET}",
        "FAIL  1 wallet whose held amount differs from the sum of its holds marked HELD",
    ),
    "hold voided without releasing it": (
        "held",
        VOID_THE_HELD_HOLD,
        "FAIL  1 wallet whose held amount differs from the sum of its holds marked HELD",
    ),
    "hold reserving more than the balance": (
        "held balance",
        OVERDRAWN_BY_A_HOLD,
        "FAIL  1 wallet whose unexpired HELD holds reserve less than zero or more than its balance",
    ),
    "balance below what is held": (
        "held balance",
        f"UPDATE wallets SET balance = 10 WHERE id = {HELD_WALLET}",
        "FAIL  1 wallet whose unexpired HELD holds reserve less than zero or more than its balance",
    ),
    "captured hold without its entries": (
        "captures",
        "UPDATE holds SET status = 'CAPTURED', captured_amount = amount,"
        f" updated_at = clock_timestamp() WHERE id = {HELD_HOLD}",
        "FAIL  1 captured hold whose entries differ from it, or entry or transfer of a hold not"
        " so captured",
    ),
    "capture withdrew more than it captured": (
        "captures",
        UNGUARDED + "UPDATE operations SET amount = amount + 1"
        " WHERE hold_id IS NOT NULL AND operation_type = 'WITHDRAW'",
        "FAIL  1 captured hold whose entries differ from it, or entry or transfer of a hold not"
        " so captured",
    ),
    "captured amount beside its entries": (
        "captures",
        UNGUARDED + "UPDATE holds SET captured_amount = captured_amount - 1"
        " WHERE status = 'CAPTURED' AND to_wallet_id IS NOT NULL",
        "FAIL  1 captured hold whose entries differ from it, or entry or transfer of a hold not"
        " so captured",
    ),
    "capture paid to another wallet": (
        "captures",
        UNGUARDED + "UPDATE holds SET to_wallet_id = (SELECT id FROM wallets w"
        " WHERE w.id <> holds.wallet_id AND w.id <> holds.to_wallet_id)"
        " WHERE status = 'CAPTURED' AND to_wallet_id IS NOT NULL",
        "FAIL  1 captured hold whose entries differ from it, or entry or transfer of a hold not"
        " so captured",
    ),
    "capture's credit naming no hold": (
        "captures",
        UNGUARDED + "UPDATE operations SET hold_id = NULL"
        " WHERE hold_id IS NOT NULL AND operation_type = 'TRANSFER_IN'",
        "FAIL  1 captured hold whose entries differ from it, or entry or transfer of a hold not"
        " so captured",
    ),
    "capture's transfer naming no hold": (
        "captures",
        UNGUARDED + f"UPDATE transfers SET hold_id = NULL WHERE id = {CAPTURE_TRANSFER}",
        "FAIL  1 captured hold whose entries differ from it, or entry or transfer of a hold not"
        " so captured",
    ),
    "entry naming a voided hold": (
        "captures",
        UNGUARDED + f"UPDATE operations SET hold_id = {VOIDED_HOLD} WHERE id ="
        " (SELECT id FROM operations WHERE operation_type = 'DEPOSIT' ORDER BY id LIMIT 1)",
        "FAIL  1 captured hold whose entries differ from it, or entry or transfer of a hold not"
        " so captured",
    ),
    "transfer naming a hold its entries do not": (
        "captures",
        UNGUARDED + f"UPDATE transfers SET hold_id = {HELD_HOLD} WHERE id = {A_TRANSFER}",
        "FAIL  1 captured hold whose entries differ from it, or entry or transfer of a hold not"
        " so captured",
    ),
    "money out of nowhere": (
        "conservation",
        f"UPDATE wallets SET balance = balance + 1 WHERE id = {FIRST_WALLET}",
        "FAIL  1 currency whose balances differ from its deposits less its withdrawals",
    ),
    "deposit in another currency": (
        "conservation",
        UNGUARDED + "UPDATE operations SET currency = 'EUR' WHERE id ="
        " (SELECT id FROM operations WHERE operation_type = 'DEPOSIT' ORDER BY id LIMIT 1)",
        "FAIL  2 currencies whose balances differ from their deposits less their withdrawals",
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
async def test_each_kind_of_damage_is_found_and_fails_the_command(
    ledger_url: str, damage: str
) -> None:
    problem, statement, verdict = DAMAGE[damage]
    connection = await asyncpg.connect(ledger_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()

    report = await audit(ledger_url)
    result = await asyncio.to_thread(run_audit, ledger_url)

    assert report.findings[problem], report.findings
    assert result.returncode == 1
    assert verdict in result.stdout.splitlines(), result.stdout
    assert f"ok    {CHECKS[problem].held}" not in result.stdout


async def test_a_hold_past_its_expiry_reserves_nothing_marked_or_not(ledger_url: str) -> None:
    """A hold of more than the balance, placed two seconds ago to expire one second ago:
    what it reserved is available again, and once marked EXPIRED it counts in the version."""
    placed = (
        "INSERT INTO holds (id, wallet_id, currency, amount, expires_at, created_at, updated_at)"
        " SELECT gen_random_uuid(), id, currency, balance + 1, now() - interval '1 second',"
        " now() - interval '2 seconds', now() - interval '2 seconds'"
        f" FROM wallets WHERE id = {FIRST_WALLET};"
        " UPDATE wallets SET held = held + balance + 1, version = version + 1"
        f" WHERE id = {FIRST_WALLET}"
    )
    marked = (
        "WITH expired AS (UPDATE holds SET status = 'EXPIRED', updated_at = expires_at"
        " WHERE status = 'HELD' AND expires_at <= now() RETURNING wallet_id, amount)"
        " UPDATE wallets w SET held = w.held - e.amount, version = w.version + 1"
        " FROM expired e WHERE w.id = e.wallet_id"
    )
    connection = await asyncpg.connect(ledger_url)
    try:
        await connection.execute(placed)
        unmarked = await audit(ledger_url)
        await connection.execute(marked)
        statuses = await connection.fetch("SELECT status FROM holds ORDER BY status")
    finally:
        await connection.close()
    after = await audit(ledger_url)

    assert unmarked.clean, "\n".join(summary(unmarked))
    assert after.clean, "\n".join(summary(after))
    assert [row["status"] for row in statuses] == [
        "CAPTURED",
        "CAPTURED",
        "EXPIRED",
        "HELD",
        "VOIDED",
    ]
    assert after.holds == 5


async def test_an_ambiguous_order_is_found(ledger_url: str) -> None:
    connection = await asyncpg.connect(ledger_url)
    try:
        wallet_id = await connection.fetchval("SELECT id FROM wallets ORDER BY id LIMIT 1")
        stamp = await connection.fetchval(
            "SELECT max(created_at) FROM operations WHERE wallet_id = $1", wallet_id
        )
        await connection.execute(
            "INSERT INTO operations (id, wallet_id, operation_type, amount, balance_after,"
            " currency, created_at) VALUES ($1, $2, 'WITHDRAW', 1, 750, 'USD', $3)",
            uuid.uuid4(),
            wallet_id,
            stamp,
        )
    finally:
        await connection.close()

    report = await audit(ledger_url)

    assert len(report.findings["order"]) == 1
    assert not report.clean
    assert (
        "FAIL  1 instant at which a wallet has several operations, so their order is ambiguous"
        in summary(report)
    )


def test_more_breaches_than_the_examples_are_counted_as_more() -> None:
    rows: list[dict[str, object]] = [{"wallet_id": n} for n in range(3)]
    report = AuditReport(wallets=3, operations=0, findings={"balance": rows}, examples=2)

    lines = summary(report)

    assert "FAIL  more than 2 wallets whose balance differs from the sum of their ledger" in lines
    assert [line for line in lines if "=" in line] == ["      wallet_id=0", "      wallet_id=1"]
