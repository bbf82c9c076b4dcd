"""Many concurrent operations on one wallet through the HTTP app: nothing lost, nothing negative."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from decimal import Decimal

import asyncpg

from tests.integration.conftest import Client
from tests.integration.ledger import assert_ledger_consistent

OPERATIONS = 1200


async def test_concurrent_deposits_and_withdrawals_on_one_wallet(
    client: Client, pool: asyncpg.Pool
) -> None:
    created = await (await client.post("/api/v1/wallets")).json()
    wallet_id = created["id"]
    path = f"/api/v1/wallets/{wallet_id}/operation"
    rng = random.Random(7)
    plan = [(rng.choice(["DEPOSIT", "WITHDRAW"]), f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}")
            for _ in range(OPERATIONS)]  # fmt: skip

    async def send(kind: str, amount: str) -> tuple[int, dict[str, object]]:
        response = await client.post(path, json={"operationType": kind, "amount": amount})
        return response.status, await response.json()

    results = await asyncio.gather(*(send(kind, amount) for kind, amount in plan))

    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {200, 400}, statuses
    refusals = {body["code"] for status, body in results if status == 400}
    assert refusals <= {"INSUFFICIENT_FUNDS"}
    assert statuses[200] > OPERATIONS // 4

    expected = sum(
        Decimal(amount) * (1 if kind == "DEPOSIT" else -1)
        for (kind, amount), (status, _) in zip(plan, results, strict=True)
        if status == 200
    )
    rows = await assert_ledger_consistent(pool, uuid.UUID(wallet_id))
    assert len(rows) == statuses[200]
    final = await (await client.get(f"/api/v1/wallets/{wallet_id}")).json()
    assert Decimal(final["balance"]) == expected
    acknowledged = {body["operation"]["balanceAfter"] for status, body in results if status == 200}  # type: ignore[index]
    assert acknowledged == {
        f"{row['balance_after'] // 100}.{row['balance_after'] % 100:02d}" for row in rows
    }


async def test_concurrent_deposits_on_many_wallets(client: Client, pool: asyncpg.Pool) -> None:
    wallets = [(await (await client.post("/api/v1/wallets")).json())["id"] for _ in range(20)]

    async def deposit(wallet_id: str) -> int:
        response = await client.post(
            f"/api/v1/wallets/{wallet_id}/operation",
            json={"operationType": "DEPOSIT", "amount": "0.10"},
        )
        return response.status

    statuses = await asyncio.gather(*(deposit(w) for w in wallets for _ in range(25)))

    assert set(statuses) == {200}
    for wallet_id in wallets:
        await assert_ledger_consistent(pool, uuid.UUID(wallet_id))
        body = await (await client.get(f"/api/v1/wallets/{wallet_id}")).json()
        assert body["balance"] == "2.50"
