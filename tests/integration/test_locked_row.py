"""A wallet row held locked by another session delays only that wallet's operations.

Another connection holds wallet X locked (``SELECT … FOR UPDATE``, or an update left
uncommitted) for longer than the database timeout while the service takes a stream
of operations on other wallets, interleaved with X's so that they would share
batches. The others answer at their usual pace; X's answer 503 within the timeout,
and once the lock goes X works again. Nothing acknowledged is lost or doubled.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import pytest

from tests.integration.conftest import AppFactory, Client
from wallet.adapters.postgres.audit import audit

pytestmark = pytest.mark.faults

TIMEOUT = 2.0
HELD_FOR = 4.5  # longer than the timeout: X's first operations must give up
WAVES = 30  # one every WAVE_INTERVAL: each with an operation on X and OTHERS_PER_WAVE others
WAVE_INTERVAL = 0.1
OTHERS_PER_WAVE = 8
X_WAVES = 20  # X's operations come with the first waves only: they must give up
QUICK = 0.5  # far below the timeout, with room for a loaded two-core machine

LOCKS = {
    "select for update": "SELECT id FROM wallets WHERE id = $1 FOR UPDATE",
    "uncommitted update": "UPDATE wallets SET updated_at = updated_at WHERE id = $1",
}


@dataclass(frozen=True, slots=True)
class Answer:
    wallet_id: str
    amount: Decimal  # negative for a withdrawal
    sent: float
    answered: float
    status: int
    operation_id: str | None
    retry_after: str | None

    @property
    def took(self) -> float:
        return self.answered - self.sent


async def operate(client: Client, wallet_id: str, amount: Decimal) -> Answer:
    kind = "DEPOSIT" if amount > 0 else "WITHDRAW"
    body = {"operationType": kind, "amount": str(abs(amount))}
    sent = time.monotonic()
    response = await client.post(f"/api/v1/wallets/{wallet_id}/operation", json=body)
    payload = await response.json()
    answered = time.monotonic()
    operation_id = payload["operation"]["id"] if response.status == 200 else None
    retry_after = response.headers.get("Retry-After")
    return Answer(wallet_id, amount, sent, answered, response.status, operation_id, retry_after)


async def new_wallet(client: Client, balance: str) -> str:
    response = await client.post("/api/v1/wallets")
    assert response.status == 201
    wallet_id: str = (await response.json())["id"]
    assert (await operate(client, wallet_id, Decimal(balance))).status == 200
    return wallet_id


def figures(answers: list[Answer]) -> str:
    took = sorted(answer.took for answer in answers)
    statuses: dict[int, int] = {}
    for answer in answers:
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
    return (
        f"{len(answers)} answers {statuses}, median {statistics.median(took) * 1000:.0f} ms,"
        f" p95 {took[int(len(took) * 0.95)] * 1000:.0f} ms, max {took[-1] * 1000:.0f} ms"
    )


@pytest.mark.parametrize("lock", sorted(LOCKS))
@pytest.mark.parametrize("group_commit", [True, False], ids=["group-commit", "single"])
async def test_a_row_locked_elsewhere_delays_only_its_own_wallet(
    migrated_url: str, make_client: AppFactory, group_commit: bool, lock: str
) -> None:
    client = await make_client(
        database_url=migrated_url, redis_url="", db_timeout=TIMEOUT, group_commit=group_commit
    )
    locked = await new_wallet(client, "1000.00")
    others = [await new_wallet(client, "1000.00") for _ in range(4)]
    holder = await asyncpg.connect(migrated_url)
    holding = holder.transaction()
    await holding.start()
    await holder.execute(LOCKS[lock], uuid.UUID(locked))
    held_from = time.monotonic()

    async def wave(number: int) -> list[Answer]:
        calls = [
            operate(client, others[(number + n) % len(others)], Decimal(f"{sign}{n + 1}.25"))
            for n, sign in zip(range(OTHERS_PER_WAVE), "+-" * OTHERS_PER_WAVE, strict=False)
        ]
        if number < X_WAVES:
            calls.insert(number % OTHERS_PER_WAVE, operate(client, locked, Decimal("1.01")))
        return await asyncio.gather(*calls)

    async def waves() -> list[Answer]:
        tasks = []
        for number in range(WAVES):
            tasks.append(asyncio.create_task(wave(number)))
            await asyncio.sleep(WAVE_INTERVAL)
        return [answer for answers in await asyncio.gather(*tasks) for answer in answers]

    async def release_later() -> float:
        await asyncio.sleep(HELD_FOR)
        await holding.rollback()
        return time.monotonic()

    async def after_release() -> Answer:
        """Sent a second before the release: it waits for the lock, then goes through."""
        await asyncio.sleep(HELD_FOR - 1.0)
        return await operate(client, locked, Decimal("2.02"))

    try:
        released = asyncio.create_task(release_later())
        answers, late, released_at = await asyncio.gather(waves(), after_release(), released)
    finally:
        await holder.close()
    on_others = [answer for answer in answers if answer.wallet_id != locked]
    on_locked = [answer for answer in answers if answer.wallet_id == locked]
    print(f"\nothers: {figures(on_others)}\nlocked: {figures(on_locked)}")

    assert released_at - held_from >= HELD_FOR
    assert all(answer.status == 200 for answer in on_others), figures(on_others)
    assert max(answer.took for answer in on_others) < QUICK, figures(on_others)
    assert len(on_locked) == X_WAVES
    gave_up = [answer for answer in on_locked if answer.sent + TIMEOUT < released_at]
    assert len(gave_up) >= X_WAVES // 2
    assert all(answer.status == 503 and answer.retry_after for answer in gave_up), gave_up
    assert all(answer.status in (200, 503) for answer in on_locked), figures(on_locked)
    assert all(answer.answered > released_at for answer in on_locked if answer.status == 200)
    assert max(answer.took for answer in on_locked) < TIMEOUT + 0.5, figures(on_locked)
    assert late.status == 200, late
    assert late.answered - released_at < 1.0, late
    again = await operate(client, locked, Decimal("-3.03"))
    assert again.status == 200
    assert again.took < QUICK

    acknowledged = [a for a in [*answers, late, again] if a.status == 200]
    connection = await asyncpg.connect(migrated_url)
    try:
        rows = await connection.fetch(
            "SELECT id::text, wallet_id::text, balance_after FROM operations"
            " WHERE wallet_id = ANY($1::uuid[])",
            [locked, *others],
        )
        balances = {
            row["id"]: row["balance"]
            for row in await connection.fetch("SELECT id::text, balance FROM wallets")
        }
    finally:
        await connection.close()
    entries = {row["id"] for row in rows}
    acknowledged_ids = {a.operation_id for a in acknowledged}
    assert acknowledged_ids <= entries, "an acknowledged operation is missing from the ledger"
    assert len(entries) == len(acknowledged_ids) + 1 + len(others), "an unanswered entry"
    for wallet_id in [locked, *others]:
        moved = sum(a.amount for a in acknowledged if a.wallet_id == wallet_id)
        assert balances[wallet_id] == int((Decimal("1000.00") + moved) * 100)
    report = await audit(migrated_url)
    assert report.clean, report.findings
