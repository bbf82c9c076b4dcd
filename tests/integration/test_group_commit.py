"""Group commit on the real PostgreSQL: thousands of operations, two processes' worth of batches."""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg
import pytest

from tests.integration.ledger import assert_ledger_consistent
from wallet.adapters.group_commit import (
    LOCK_AFTER_REPLANS,
    GroupCommitLedger,
    PlannedBatch,
    _Queued,
    planned_batch,
)
from wallet.adapters.postgres.batch_store import PostgresBatchStore
from wallet.adapters.postgres.idempotency_records import PostgresIdempotencyRecords
from wallet.adapters.postgres.wallets import PostgresWallets
from wallet.domain.currency import CURRENCIES
from wallet.domain.errors import BalanceLimitExceeded, InsufficientFunds, WalletNotFound
from wallet.domain.idempotency import Idempotency
from wallet.domain.model import AppliedOperation, Leg, OperationRequest, OperationType
from wallet.domain.money import Money

DEPOSIT, WITHDRAW = OperationType.DEPOSIT, OperationType.WITHDRAW


def random_request(rng: random.Random) -> OperationRequest:
    return OperationRequest(rng.choice([DEPOSIT, WITHDRAW]), Money(rng.randint(1, 900)))


def coordinator(pool: asyncpg.Pool) -> GroupCommitLedger:
    """One process's group commit (two of them on one pool play two processes)."""
    return GroupCommitLedger(PostgresBatchStore(pool, 10.0), timeout=10.0, max_batch=256)


async def test_thousands_of_mixed_operations_from_two_coordinators_on_one_wallet(
    pool: asyncpg.Pool,
) -> None:
    first, second = coordinator(pool), coordinator(pool)
    wallet = await PostgresWallets(pool, 10.0).create(uuid.uuid4())
    rng = random.Random(11)
    plan = [(rng.choice([first, second]), random_request(rng)) for _ in range(3000)]

    results = await asyncio.gather(
        *(group.apply(wallet.id, request) for group, request in plan), return_exceptions=True
    )

    unexpected = [r for r in results if not isinstance(r, AppliedOperation | InsufficientFunds)]
    assert unexpected == []
    applied = [r for r in results if isinstance(r, AppliedOperation)]
    assert len(applied) > 1000
    rows = await assert_ledger_consistent(pool, wallet.id)
    assert sorted(row["balance_after"] for row in rows) == sorted(
        r.operation.balance_after.minor for r in applied
    )
    expected = sum(
        request.delta_minor
        for (_, request), result in zip(plan, results, strict=True)
        if isinstance(result, AppliedOperation)
    )
    assert (await PostgresWallets(pool, 10.0).get(wallet.id)).balance == Money(expected)
    versions = sorted(r.wallet.version for r in applied)
    assert versions == list(range(1, len(applied) + 1))


async def test_batches_across_many_wallets_and_the_balance_bounds(pool: asyncpg.Pool) -> None:
    group = coordinator(pool)
    wallets = [await PostgresWallets(pool, 10.0).create(uuid.uuid4()) for _ in range(50)]
    full = wallets[0].id
    await pool.execute("UPDATE wallets SET balance = 900000000000000000 - 5 WHERE id = $1", full)

    results = await asyncio.gather(
        *(
            group.apply(w.id, OperationRequest(DEPOSIT, Money(3)))
            for w in wallets
            for _ in range(4)
        ),
        group.apply(uuid.uuid4(), OperationRequest(DEPOSIT, Money(1))),
        return_exceptions=True,
    )

    assert isinstance(results[-1], WalletNotFound)
    over_the_top = [r for r in results[:4] if isinstance(r, BalanceLimitExceeded)]
    assert len(over_the_top) == 3
    for wallet in wallets[1:]:
        await assert_ledger_consistent(pool, wallet.id)
        assert (await PostgresWallets(pool, 10.0).get(wallet.id)).balance == Money(12)


async def test_wallets_two_coordinators_keep_moving_still_answer_every_operation(
    pool: asyncpg.Pool,
) -> None:
    """Balances near zero, withdrawals that flip with every cent: runs keep going stale.

    Each coordinator's plans are overturned by the other's commits; a run that has
    gone stale too often is decided under its row lock, so nobody gets a 503.
    """
    coordinators = [coordinator(pool), coordinator(pool)]
    wallets = [(await PostgresWallets(pool, 10.0).create(uuid.uuid4())).id for _ in range(2)]
    rng = random.Random(5)
    results: list[object] = []

    async def client(group: GroupCommitLedger) -> None:
        for _ in range(150):
            kind = rng.choice([DEPOSIT, WITHDRAW])
            request = OperationRequest(kind, Money(rng.randint(1, 3)))
            try:
                results.append(await group.apply(rng.choice(wallets), request))
            except InsufficientFunds as refused:
                results.append(refused)
            except Exception as error:  # anything else is the failure sought
                results.append(error)

    await asyncio.gather(*(client(group) for group in coordinators for _ in range(32)))

    unexpected = [r for r in results if not isinstance(r, AppliedOperation | InsufficientFunds)]
    assert unexpected == []
    assert len(results) == 2 * 32 * 150
    for wallet_id in wallets:
        await assert_ledger_consistent(pool, wallet_id)


async def test_runs_decided_under_lock_apply_and_record_their_keys(pool: asyncpg.Pool) -> None:
    group = coordinator(pool)
    wallet = await PostgresWallets(pool, 10.0).create(uuid.uuid4())
    key = Idempotency.of(f"locked-{wallet.id}", "POST", "/op", "DEPOSIT 5", "req-1")
    requests = [
        (OperationRequest(DEPOSIT, Money(5)), key),
        (OperationRequest(WITHDRAW, Money(9)), None),
    ]
    loop = asyncio.get_running_loop()
    queued = [
        _Queued((Leg(wallet.id, request),), idempotency, loop.create_future(), LOCK_AFTER_REPLANS)
        for request, idempotency in requests
    ]
    group._queue.extend(queued)

    await group._flush_while_queued()

    (deposited,) = await queued[0].outcome
    assert deposited.operation.balance_after == Money(5)
    with pytest.raises(InsufficientFunds):
        await queued[1].outcome
    recorded = await PostgresIdempotencyRecords(pool, 10.0).find_recorded(key.key)
    assert recorded is not None
    assert recorded.operation is not None
    assert recorded.operation.id == deposited.operation.id
    await assert_ledger_consistent(pool, wallet.id)


async def test_a_batch_leaves_a_wallet_locked_elsewhere_to_wait_alone(
    pool: asyncpg.Pool,
) -> None:
    group = coordinator(pool)
    held, free = [(await PostgresWallets(pool, 10.0).create(uuid.uuid4())).id for _ in range(2)]
    deposit = OperationRequest(DEPOSIT, Money(5))
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT id FROM wallets WHERE id = $1 FOR UPDATE", held)
        on_held = [asyncio.create_task(group.apply(held, deposit)) for _ in range(3)]
        async with asyncio.timeout(5):  # far below the coordinator's 10 s timeout
            on_free = await asyncio.gather(*(group.apply(free, deposit) for _ in range(3)))
        assert not any(task.done() for task in on_held)
        assert await pool.fetchval("SELECT version FROM wallets WHERE id = $1", held) == 0
    after = await asyncio.gather(*on_held)

    assert [r.operation.balance_after for r in on_free] == [Money(5), Money(10), Money(15)]
    assert [r.operation.balance_after for r in after] == [Money(5), Money(10), Money(15)]
    for wallet_id in (held, free):
        await assert_ledger_consistent(pool, wallet_id)


async def test_a_batch_waits_a_moment_for_a_row_another_batch_holds(pool: asyncpg.Pool) -> None:
    """Another process's batch holds a hot wallet's row for a moment: the batch waits for
    it rather than leave the wallet out (which would send it down the slow, locked path)."""
    wallet_id = (await PostgresWallets(pool, 10.0).create(uuid.uuid4())).id
    store = PostgresBatchStore(pool, 10.0)
    async with pool.acquire() as holder:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT id FROM wallets WHERE id = $1 FOR UPDATE", wallet_id)
        loop = asyncio.get_running_loop()
        loop.call_later(0.03, lambda: asyncio.ensure_future(transaction.commit()))
        outcome = await store.apply_batch(deposit_batch(wallet_id))

    assert outcome.busy == frozenset()
    assert [applied.wallet_id for applied in outcome.applied] == [wallet_id]
    assert await pool.fetchval("SELECT balance FROM wallets WHERE id = $1", wallet_id) == 5


async def test_a_batch_leaves_out_a_row_held_past_its_wait(pool: asyncpg.Pool) -> None:
    wallet_id = (await PostgresWallets(pool, 10.0).create(uuid.uuid4())).id
    store = PostgresBatchStore(pool, 10.0)
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT id FROM wallets WHERE id = $1 FOR UPDATE", wallet_id)
        outcome = await store.apply_batch(deposit_batch(wallet_id))

    assert outcome.busy == {wallet_id}
    assert outcome.applied == []
    assert await pool.fetchval("SELECT balance FROM wallets WHERE id = $1", wallet_id) == 0


def deposit_batch(wallet_id: uuid.UUID) -> PlannedBatch:
    legs = (Leg(wallet_id, OperationRequest(DEPOSIT, Money(5))),)
    return planned_batch([legs], {wallet_id: 0}, [None])


async def test_wallets_of_other_currencies_share_a_batch_each_in_its_own(
    pool: asyncpg.Pool,
) -> None:
    wallets = PostgresWallets(pool, 10.0)
    jpy, bhd = CURRENCIES["JPY"], CURRENCIES["BHD"]
    yen = await wallets.create(uuid.uuid4(), currency=jpy)
    dinar = await wallets.create(uuid.uuid4(), currency=bhd)
    group = coordinator(pool)
    deposit = OperationType.DEPOSIT

    applied = await asyncio.gather(
        *(group.apply(yen.id, OperationRequest(deposit, Money(1000, jpy))) for _ in range(5)),
        *(group.apply(dinar.id, OperationRequest(deposit, Money(1500, bhd))) for _ in range(5)),
    )

    assert sorted(str(a.operation.balance_after) for a in applied[:5]) == [
        "1000", "2000", "3000", "4000", "5000"
    ]  # fmt: skip
    assert max(str(a.wallet.balance) for a in applied[5:]) == "7.500"
    assert (await wallets.get(yen.id)).balance == Money(5000, jpy)
    assert (await wallets.get(dinar.id)).balance == Money(7500, bhd)
    await assert_ledger_consistent(pool, yen.id)
    await assert_ledger_consistent(pool, dinar.id)
