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
    second the third)."""
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
    return migrated_url


async def test_a_sound_ledger_passes(ledger_url: str) -> None:
    report = await audit(ledger_url)
    assert (report.wallets, report.operations, report.clean) == (3, 13, True)

    result = await asyncio.to_thread(run_audit, ledger_url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "audited 3 wallets and 13 operations (amounts in cents)",
        "ok    every operation names a wallet of its own currency",
        "ok    every balance equals the sum of its ledger",
        "ok    every version equals the number of its wallet's operations",
        "ok    every balanceAfter is the running total of its ledger, never below zero",
        "ok    every idempotency record names its wallet and, once applied, a ledger entry of it",
        "ok    every transfer is its payer's TRANSFER_OUT and its payee's TRANSFER_IN, no more",
        "ok    in each currency the balances add up to its deposits less its withdrawals",
        "ok    no two operations of a wallet share a time: the ledger's order is unambiguous",
    ]


FIRST_WALLET = "(SELECT id FROM wallets ORDER BY id LIMIT 1)"
A_TRANSFER = "(SELECT id FROM transfers ORDER BY id LIMIT 1)"
# The wallet that pays and is not paid: four entries (three of its own and its transfer's).
FIRST_PAYER = "(SELECT from_wallet_id FROM transfers EXCEPT SELECT to_wallet_id FROM transfers)"
# The ledger's tables refuse updates and deletes; damage that needs one lifts that guard in
# the test's own database first.
UNGUARDED = (
    "ALTER TABLE operations DISABLE TRIGGER operations_append_only;"
    " ALTER TABLE transfers DISABLE TRIGGER transfers_append_only; "
)
# By the check that finds it: each damage, and the line that names the breach.
DAMAGE = {
    "entry of no wallet": (
        "wallet",
        "INSERT INTO operations"
        " (id, wallet_id, operation_type, amount, balance_after, currency, created_at)"
        " VALUES (gen_random_uuid(), gen_random_uuid(), 'DEPOSIT', 1, 1, 'USD', clock_timestamp())",
        "FAIL  1 operation that names no wallet, or a wallet of another currency",
    ),
    "entry in another currency than its wallet": (
        "wallet",
        UNGUARDED + "UPDATE operations SET currency = 'EUR' WHERE id ="
        " (SELECT id FROM operations WHERE operation_type = 'WITHDRAW' ORDER BY id LIMIT 1)",
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
        "FAIL  3 wallets whose version differs from the number of their operations",
    ),
    "idempotency": (
        "idempotency",
        "INSERT INTO idempotency_keys (key, fingerprint, request_id, outcome, wallet_id,"
        f" operation_id) SELECT 'orphan', '\\x00', 'r', 'APPLIED', {FIRST_WALLET},"
        " gen_random_uuid()",
        "FAIL  1 idempotency record that names no wallet, or no ledger entry of its wallet",
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
