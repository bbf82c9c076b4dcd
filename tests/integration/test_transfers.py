"""Transfers through the real app on the real PostgreSQL and Redis, by both write paths:
money moves atomically, refusals write nothing, keys replay, and no mix of concurrent
transfers deadlocks, fails or makes or loses a cent."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.integration.conftest import AppFactory, Client
from tests.integration.servers import ServiceProcess
from wallet.adapters.postgres.audit import audit, summary
from wallet.domain.model import MAX_BALANCE

pytestmark = pytest.mark.parametrize(
    "group_commit", [True, False], ids=["group-commit", "one-by-one"]
)

MAXIMUM = MAX_BALANCE.minor  # a USD wallet's most, in cents
IN_FLIGHT = 60
Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Service:
    """The app (in the test's process or a server of its own) on a database of the
    test's own, and that database straight."""

    client: Client | aiohttp.ClientSession
    url: str

    async def wallet(self, funding: str | None = None, currency: str = "USD") -> str:
        response = await self.client.post("/api/v1/wallets", json={"currency": currency})
        assert response.status == 201, await response.text()
        wallet_id: str = (await response.json())["id"]
        if funding is not None:
            body = {"operationType": "DEPOSIT", "amount": funding}
            path = f"/api/v1/wallets/{wallet_id}/operation"
            response = await self.client.post(path, json=body)
            assert response.status == 200, await response.text()
        return wallet_id

    async def transfer(
        self, payer: str, payee: str, amount: str, key: str | None = None, **extra: object
    ) -> tuple[int, Body, dict[str, str]]:
        body = {"fromWalletId": payer, "toWalletId": payee, "amount": amount, **extra}
        headers = {} if key is None else {"Idempotency-Key": key}
        response = await self.client.post("/api/v1/transfers", json=body, headers=headers)
        assert response.status < 500, f"POST /api/v1/transfers {body}: {await response.text()}"
        return response.status, await response.json(), dict(response.headers)

    async def get(self, path: str) -> Body:
        response = await self.client.get(path)
        assert response.status == 200, await response.text()
        answer: Body = await response.json()
        return answer

    async def balances(self, wallets: Iterable[str]) -> dict[str, int]:
        """Each wallet's balance in cents, from its row."""
        rows = await self.fetch(
            "SELECT id::text, balance FROM wallets WHERE id = ANY($1::uuid[])", list(wallets)
        )
        return {row["id"]: row["balance"] for row in rows}

    async def fetch(self, query: str, *arguments: object) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.url)
        try:
            return list(await connection.fetch(query, *arguments))
        finally:
            await connection.close()

    async def written(self) -> tuple[int, ...]:
        """How many rows each table the writes touch holds, and the sum of all balances."""
        rows = await self.fetch(
            "SELECT (SELECT count(*) FROM operations), (SELECT count(*) FROM transfers),"
            " (SELECT count(*) FROM idempotency_keys),"
            " (SELECT coalesce(sum(balance), 0) FROM wallets),"
            " (SELECT coalesce(sum(version), 0) FROM wallets)"
        )
        return tuple(rows[0])

    async def assert_audit_clean(self) -> None:
        report = await audit(self.url)
        assert report.clean, "\n".join(summary(report))


@pytest.fixture
async def service(migrated_url: str, make_client: AppFactory, group_commit: bool) -> Service:
    """The app on a database of its own (made before the app, so dropped after it)."""
    client = await make_client(database_url=migrated_url, group_commit=group_commit)
    return Service(client, migrated_url)


def cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


async def test_a_transfer_moves_money_and_both_histories_show_it(service: Service) -> None:
    payer = await service.wallet("100.00")
    payee = await service.wallet()
    metadata = {"orderId": "42", "channel": "web"}

    status, body, headers = await service.transfer(
        payer, payee, "25.00", reference="order-42", metadata=metadata
    )

    assert status == 201, body
    assert headers["Location"] == f"/api/v1/transfers/{body['id']}"
    assert "Idempotent-Replayed" not in headers
    assert {k: body[k] for k in ("fromWalletId", "toWalletId", "currency", "amount")} == {
        "fromWalletId": payer,
        "toWalletId": payee,
        "currency": "USD",
        "amount": "25.00",
    }
    assert (body["reference"], body["metadata"], body["holdId"]) == ("order-42", metadata, None)
    out, into = body["operations"]
    assert (out["operationType"], out["walletId"], out["balanceAfter"]) == (
        "TRANSFER_OUT",
        payer,
        "75.00",
    )
    assert (into["operationType"], into["walletId"], into["balanceAfter"]) == (
        "TRANSFER_IN",
        payee,
        "25.00",
    )
    for entry in (out, into):
        assert (entry["transferId"], entry["amount"], entry["currency"]) == (
            body["id"],
            "25.00",
            "USD",
        )
        assert (entry["reference"], entry["metadata"]) == ("order-42", metadata)

    assert await service.get(headers["Location"]) == body
    assert (await service.get(f"/api/v1/wallets/{payer}"))["balance"] == "75.00"
    assert (await service.get(f"/api/v1/wallets/{payee}"))["balance"] == "25.00"
    assert await service.balances([payer, payee]) == {payer: 7500, payee: 2500}

    payer_history = await service.get(f"/api/v1/wallets/{payer}/operations")
    payee_history = await service.get(f"/api/v1/wallets/{payee}/operations")
    assert [e["operationType"] for e in payer_history["items"]] == ["TRANSFER_OUT", "DEPOSIT"]
    assert payer_history["items"][0] == out
    assert payee_history["items"] == [into]
    found_by_payer = await service.get(f"/api/v1/wallets/{payer}/operations?reference=order-42")
    found_by_payee = await service.get(f"/api/v1/wallets/{payee}/operations?reference=order-42")
    assert (found_by_payer["items"], found_by_payee["items"]) == ([out], [into])
    elsewhere = await service.get(f"/api/v1/wallets/{payer}/operations?reference=order-43")
    assert elsewhere["items"] == []

    missing = await service.client.get(f"/api/v1/transfers/{uuid.uuid4()}")
    assert (missing.status, (await missing.json())["code"]) == (404, "TRANSFER_NOT_FOUND")
    await service.assert_audit_clean()


async def test_every_refusal_writes_nothing(service: Service) -> None:
    payer = await service.wallet("10.00")
    payee = await service.wallet("1.00")
    full = await service.wallet()
    await service.fetch(
        "UPDATE wallets SET balance = $2 WHERE id = $1", uuid.UUID(full), MAXIMUM - 5
    )
    euros = await service.wallet("10.00", currency="EUR")
    nobody = str(uuid.uuid4())
    before = await service.written()

    refusals = [
        ((payer, payee, "10.01"), 400, "INSUFFICIENT_FUNDS", ""),
        ((payee, full, "0.06"), 400, "BALANCE_LIMIT_EXCEEDED", ""),
        ((payer, euros, "1.00"), 400, "CURRENCY_MISMATCH", "EUR"),
        ((euros, payer, "1.00"), 400, "CURRENCY_MISMATCH", "USD"),
        ((nobody, payee, "1.00"), 404, "WALLET_NOT_FOUND", nobody),
        ((payer, nobody, "1.00"), 404, "WALLET_NOT_FOUND", nobody),
        ((payer, payer, "1.00"), 400, "VALIDATION_ERROR", ""),
        ((payer, payee, "1.005"), 400, "VALIDATION_ERROR", ""),
        ((payer, payee, "0.00"), 400, "VALIDATION_ERROR", ""),
        ((payer, payee, "-1.00"), 400, "VALIDATION_ERROR", ""),
    ]
    for (source, target, amount), status, code, named in refusals:
        got, body, _ = await service.transfer(source, target, amount)

        assert (got, body.get("code")) == (status, code), (source, target, amount, body)
        assert named in body["detail"], body
        assert await service.written() == before, (code, amount)

    # The payee is exactly full: one cent less than the limit passes, and then nothing more.
    status, body, _ = await service.transfer(payee, full, "0.05")
    assert status == 201, body
    status, body, _ = await service.transfer(payee, full, "0.01")
    assert (status, body["code"]) == (400, "BALANCE_LIMIT_EXCEEDED")
    assert (await service.balances([full]))[full] == MAXIMUM


async def test_a_key_replays_its_transfer_and_its_refusal(service: Service) -> None:
    payer = await service.wallet("10.00")
    payee = await service.wallet()
    key = f"transfer-{uuid.uuid4()}"

    first = await service.transfer(payer, payee, "4.00", key, reference="r-1")
    again = await service.transfer(payer, payee, "4", key, reference="r-1")
    other = await service.transfer(payer, payee, "4.01", key, reference="r-1")

    assert first[0] == 201, first[1]
    assert "Idempotent-Replayed" not in first[2]
    assert (again[0], again[1], again[2].get("Idempotent-Replayed")) == (201, first[1], "true")
    assert again[2]["Location"] == first[2]["Location"]
    assert (other[0], other[1]["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert await service.balances([payer, payee]) == {payer: 600, payee: 400}
    assert len(await service.fetch("SELECT id FROM transfers")) == 1

    refused_key = f"refused-{uuid.uuid4()}"
    refused = await service.transfer(payer, payee, "7.00", refused_key)
    assert (refused[0], refused[1]["code"]) == (400, "INSUFFICIENT_FUNDS")
    await service.transfer(payee, payer, "4.00")  # now the payer could pay it
    replayed = await service.transfer(payer, payee, "7.00", refused_key)

    assert (replayed[0], replayed[1]) == (400, refused[1])
    assert replayed[2].get("Idempotent-Replayed") == "true"
    assert await service.balances([payer, payee]) == {payer: 1000, payee: 0}
    await service.assert_audit_clean()


Plan = list[tuple[str, str, str]]
Answer = tuple[int, Body, dict[str, str]]


def mixed_plan(wallets: list[str], rng: random.Random, rounds: int = 1) -> Plan:
    """Random transfers among ``wallets``, with opposing pairs and 3-cycles among them:
    440 a round."""

    def amount() -> str:
        return f"{rng.randint(1, 1500) / 100:.2f}"

    plan: Plan = []
    for _ in range(rounds):
        part: Plan = []
        for _ in range(300):
            payer, payee = rng.sample(wallets, 2)
            part.append((payer, payee, amount()))
        for _ in range(40):
            a, b = rng.sample(wallets, 2)
            part += [(a, b, amount()), (b, a, amount())]
        for _ in range(20):
            a, b, c = rng.sample(wallets, 3)
            same = amount()
            part += [(a, b, same), (b, c, same), (c, a, same)]
        rng.shuffle(part)
        plan += part
    return plan


async def run_all(plan: Plan, *services: Service) -> list[Answer]:
    """Every transfer of ``plan``, ``IN_FLIGHT`` at a time, dealt to ``services`` in turn;
    a deadlock fails the test."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def send(n: int, payer: str, payee: str, amount: str) -> Answer:
        async with gate:
            return await services[n % len(services)].transfer(payer, payee, amount)

    sent = asyncio.gather(*(send(n, *step) for n, step in enumerate(plan)))
    return await asyncio.wait_for(sent, timeout=180)


async def fund(service: Service, amounts: Iterable[int]) -> dict[str, int]:
    """New wallets funded with ``amounts`` (in dollars), by id: their balances in cents."""
    return {await service.wallet(f"{amount}.00"): amount * 100 for amount in amounts}


async def assert_every_cent_kept(
    service: Service, funding: dict[str, int], plan: Plan, results: list[Answer]
) -> None:
    """Only transfers or a lack of funds were answered, each wallet holds its funding plus
    the net of the transfers answered 201 and nothing else, and the audit is clean."""
    outcomes = Counter((status, body.get("code")) for status, body, _ in results)
    assert set(outcomes) <= {(201, None), (400, "INSUFFICIENT_FUNDS")}, outcomes
    assert outcomes[(201, None)] > len(plan) // 2, outcomes
    expected = dict(funding)
    for (payer, payee, amount), (status, body, _) in zip(plan, results, strict=True):
        if status == 201:
            assert (body["fromWalletId"], body["toWalletId"], body["amount"]) == (
                payer,
                payee,
                amount,
            )
            expected[payer] -= cents(amount)
            expected[payee] += cents(amount)
    balances = await service.balances(funding)
    assert sum(balances.values()) == sum(funding.values())
    assert balances == expected
    for wallet_id in funding:
        shown = (await service.get(f"/api/v1/wallets/{wallet_id}"))["balance"]
        assert cents(shown) == expected[wallet_id]
    applied = {body["id"] for status, body, _ in results if status == 201}
    recorded = await service.fetch("SELECT id::text FROM transfers")
    assert {row["id"] for row in recorded} == applied
    await service.assert_audit_clean()


async def test_concurrent_transfers_in_every_direction_keep_every_cent(service: Service) -> None:
    funding = await fund(service, (20, 30, 40, 50, 60, 70))
    plan = mixed_plan(list(funding), random.Random(20261204))
    assert len(plan) >= 300

    results = await run_all(plan, service)

    await assert_every_cent_kept(service, funding, plan, results)


async def test_two_instances_transfer_among_the_same_wallets(
    service: Service, make_client: AppFactory, group_commit: bool
) -> None:
    """Two apps, each with its own pool and batches, share the wallets only through the
    database."""
    other = Service(
        await make_client(database_url=service.url, group_commit=group_commit), service.url
    )
    funding = await fund(service, (20, 30, 40, 50, 60, 70))
    plan = mixed_plan(list(funding), random.Random(4), rounds=3)

    results = await run_all(plan, service, other)

    await assert_every_cent_kept(service, funding, plan, results)


async def test_many_payers_pay_one_payee_at_once(service: Service, group_commit: bool) -> None:
    payee = await service.wallet()
    payers = [await service.wallet("10.00") for _ in range(50)]
    rng = random.Random(7)
    plan = [(payers[n % 50], payee, f"{rng.randint(1, 250) / 100:.2f}") for n in range(200)]

    results = await run_all(plan, service)

    assert Counter(status for status, _, _ in results) == {201: 200}
    total = sum(cents(amount) for _, _, amount in plan)
    assert (await service.balances([payee]))[payee] == total
    assert cents((await service.get(f"/api/v1/wallets/{payee}"))["balance"]) == total
    # Each transfer's two entries commit in one transaction (they share its xmin); the
    # group commit puts several transfers in one.
    commits = await service.fetch(
        "SELECT transfer_id, count(DISTINCT xmin::text) AS commits FROM operations"
        " WHERE transfer_id IS NOT NULL GROUP BY transfer_id"
    )
    assert len(commits) == 200
    assert {row["commits"] for row in commits} == {1}
    shared = await service.fetch(
        "SELECT count(DISTINCT xmin::text) AS commits FROM operations WHERE transfer_id IS NOT NULL"
    )
    if group_commit:
        assert shared[0]["commits"] < 200, "no two transfers shared a batch"
    else:
        assert shared[0]["commits"] == 200
    await service.assert_audit_clean()


@pytest.fixture
async def two_processes(
    migrated_url: str, redis_url: str, group_commit: bool, tmp_path: Path
) -> AsyncIterator[tuple[Service, Service]]:
    """``python -m wallet serve`` twice on one database and one Redis."""
    env = {
        "WALLET_DATABASE_URL": migrated_url,
        "WALLET_REDIS_URL": redis_url,
        "WALLET_WORKERS": "1",
        "WALLET_GROUP_COMMIT": "true" if group_commit else "false",
    }
    processes = [ServiceProcess(env, tmp_path / f"service-{n}.log") for n in (1, 2)]
    try:
        for process in processes:
            process.start()
        async with (
            aiohttp.ClientSession(processes[0].url) as first,
            aiohttp.ClientSession(processes[1].url) as second,
        ):
            yield Service(first, migrated_url), Service(second, migrated_url)
    finally:
        for process in processes:
            process.stop()


async def test_two_processes_transfer_among_the_same_wallets(
    two_processes: tuple[Service, Service],
) -> None:
    first, second = two_processes
    funding = await fund(first, (20, 30, 40, 50, 60, 70))
    plan = mixed_plan(list(funding), random.Random(5), rounds=3)

    results = await run_all(plan, first, second)

    await assert_every_cent_kept(second, funding, plan, results)
