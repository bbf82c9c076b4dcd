"""A wallet's keyless hold changes made together by ``change_holds``: one call for those
queued meanwhile, decided in arrival order under the wallet's lock, each answered alone."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import asyncpg
import pytest

from wallet.adapters.postgres.hold_changes import HoldChange, HoldChanges
from wallet.adapters.postgres.holds import PostgresHolds
from wallet.deadlines import request_budget
from wallet.domain.errors import (
    HoldNotActive,
    HoldNotFound,
    InsufficientFunds,
    StorageUnavailable,
    WalletNotFound,
)
from wallet.domain.holds import HoldRequest, HoldStatus
from wallet.domain.money import Money


async def wallet_with(pool: asyncpg.Pool, balance: int) -> uuid.UUID:
    wallet_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO wallets (id, balance, version) VALUES ($1, $2, 1)", wallet_id, balance
    )
    return wallet_id


class CountingChanges(HoldChanges):
    """Counts the calls of ``change_holds`` and the changes each made."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        super().__init__(pool, timeout)
        self.calls: list[int] = []

    async def _call(self, wallet_id: uuid.UUID, batch: list[HoldChange]) -> None:
        self.calls.append(len(batch))
        await super()._call(wallet_id, batch)


def counted(pool: asyncpg.Pool) -> tuple[PostgresHolds, CountingChanges]:
    holds = PostgresHolds(pool, 10.0)
    changes = CountingChanges(pool, 10.0)
    holds._changes = changes
    return holds, changes


async def test_placements_queued_meanwhile_share_calls_and_never_reserve_more_than_the_balance(
    pool: asyncpg.Pool,
) -> None:
    holds, changes = counted(pool)
    wallet_id = await wallet_with(pool, 1000)
    requests = [HoldRequest(wallet_id, Money(30)) for _ in range(50)]

    answers = await asyncio.gather(
        *(holds.place(uuid.uuid4(), request) for request in requests), return_exceptions=True
    )

    placed = [answer for answer in answers if not isinstance(answer, BaseException)]
    refused = [answer for answer in answers if isinstance(answer, InsufficientFunds)]
    assert (len(placed), len(refused)) == (33, 17)  # 33 holds of 30 reserve 990 of 1000
    assert len(changes.calls) < 10
    assert sum(changes.calls) == 50
    assert {str(error) for error in refused} == {
        "Available balance 0.10 (9.90 held) is less than 0.30"
    }
    row = await pool.fetchrow("SELECT balance, held, version FROM wallets WHERE id = $1", wallet_id)
    assert (row["balance"], row["held"], row["version"]) == (1000, 990, 1 + 33)
    versions = [changed.wallets[0].version for changed in placed]
    assert sorted(versions) == list(range(2, 35))
    stamps = [changed.hold.created_at for changed in placed]
    assert len(set(stamps)) == 33, "each change is stamped after the wallet's last"
    assert all(changed.wallets[0].held_minor <= 1000 for changed in placed)


async def test_a_capture_and_a_void_of_one_hold_in_one_call_one_wins(pool: asyncpg.Pool) -> None:
    holds, changes = counted(pool)
    wallet_id = await wallet_with(pool, 100)
    placed = await holds.place(uuid.uuid4(), HoldRequest(wallet_id, Money(40)))
    hold = placed.hold

    capture, void = await asyncio.gather(
        holds.capture(hold, Money(25)), holds.void(hold), return_exceptions=True
    )

    assert changes.calls[-1] == 2, "both went in one call"
    assert not isinstance(capture, BaseException)
    assert isinstance(void, HoldNotActive)
    assert "CAPTURED" in str(void)
    assert capture.hold.status is HoldStatus.CAPTURED
    assert capture.wallets[0].balance == Money(75)
    assert capture.wallets[0].held_minor == 0
    row = await pool.fetchrow("SELECT balance, held, version FROM wallets WHERE id = $1", wallet_id)
    assert (row["balance"], row["held"], row["version"]) == (75, 0, 1 + 1 + 1)
    entry = await pool.fetchrow("SELECT * FROM operations WHERE hold_id = $1", hold.id)
    assert (entry["operation_type"], entry["amount"], entry["balance_after"]) == (
        "WITHDRAW",
        25,
        75,
    )
    assert entry["created_at"] == capture.hold.updated_at


async def test_an_expired_hold_is_neither_captured_nor_voided_and_reserves_nothing(
    pool: asyncpg.Pool,
) -> None:
    holds, _ = counted(pool)
    wallet_id = await wallet_with(pool, 100)
    placed = await holds.place(uuid.uuid4(), HoldRequest(wallet_id, Money(60), expires_in=1))
    await asyncio.sleep(1.05)

    capture, void, again = await asyncio.gather(
        holds.capture(placed.hold, Money(60)),
        holds.void(placed.hold),
        holds.place(uuid.uuid4(), HoldRequest(wallet_id, Money(100))),
        return_exceptions=True,
    )

    assert isinstance(capture, HoldNotActive)
    assert "EXPIRED" in str(capture)
    assert isinstance(void, HoldNotActive)
    assert "EXPIRED" in str(void)
    assert not isinstance(again, BaseException)
    assert again.wallets[0].held_minor == 100


async def test_a_hold_of_another_wallet_is_not_found_and_a_missing_wallet_refused(
    pool: asyncpg.Pool,
) -> None:
    holds, _ = counted(pool)
    wallet_id, other = await wallet_with(pool, 100), await wallet_with(pool, 100)
    placed = await holds.place(uuid.uuid4(), HoldRequest(wallet_id, Money(10)))

    with pytest.raises(HoldNotFound):
        await holds.void(replace(placed.hold, wallet_id=other))
    with pytest.raises(WalletNotFound):
        await holds.place(uuid.uuid4(), HoldRequest(uuid.uuid4(), Money(10)))
    assert await pool.fetchval("SELECT held FROM wallets WHERE id = $1", wallet_id) == 10


async def test_a_caller_who_gave_up_while_queued_is_left_out(pool: asyncpg.Pool) -> None:
    changes = HoldChanges(pool, 10.0)
    wallet_id = await wallet_with(pool, 100)
    async with pool.acquire() as blocker, blocker.transaction():
        # The wallet's row held elsewhere: the first call waits for it, the next queues.
        await blocker.execute("SELECT 1 FROM wallets WHERE id = $1 FOR UPDATE", wallet_id)
        first = HoldChange("PLACE", uuid.uuid4(), 10, None, 60, None, "{}")
        in_flight = asyncio.ensure_future(changes.make(wallet_id, first))
        await asyncio.sleep(0.05)
        with request_budget(0.1), pytest.raises(StorageUnavailable):
            await changes.make(wallet_id, HoldChange("PLACE", uuid.uuid4(), 20, None, 60))
    await in_flight

    held = await pool.fetchval("SELECT held FROM wallets WHERE id = $1", wallet_id)
    assert held == 10, "only the change still awaited was made"


async def test_a_capture_that_pays_a_wallet_is_not_taken_by_the_batch(pool: asyncpg.Pool) -> None:
    changes = HoldChanges(pool, 10.0)
    payer, payee = await wallet_with(pool, 100), await wallet_with(pool, 0)
    hold_id = uuid.uuid4()
    await changes.make(payer, HoldChange("PLACE", hold_id, 10, payee, 60, None, "{}"))

    capture = HoldChange("CAPTURE", hold_id, 10, entry_id=uuid.uuid4())
    with pytest.raises(asyncpg.RaiseError, match="its capture is a transfer"):
        await changes.make(payer, capture)
    assert await pool.fetchval("SELECT status FROM holds WHERE id = $1", hold_id) == "HELD"
