"""The batch statement answers with what it wrote: each entry and each wallet, as stored."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from datetime import timedelta

import asyncpg
import pytest

from wallet.adapters.group_commit import BatchOutcome, PlannedBatch, RunApplied, planned_batch
from wallet.adapters.postgres import batch_store
from wallet.adapters.postgres.batch_store import PostgresBatchStore
from wallet.adapters.postgres.unnest import parameters
from wallet.domain.model import Leg, OperationRequest, OperationType
from wallet.domain.money import Money
from wallet.domain.transfers import TransferRequest

DEPOSIT, WITHDRAW = OperationType.DEPOSIT, OperationType.WITHDRAW
MIXED = [
    OperationRequest(DEPOSIT, Money(5)),
    OperationRequest(WITHDRAW, Money(100)),  # refused: no entry, no version
    OperationRequest(WITHDRAW, Money(4)),
    OperationRequest(DEPOSIT, Money(7)),
]
REFUSED = [OperationRequest(WITHDRAW, Money(100))]


async def wallet_at(pool: asyncpg.Pool, balance: int, version: int) -> uuid.UUID:
    wallet_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO wallets (id, balance, version) VALUES ($1, $2, $3)",
        wallet_id,
        balance,
        version,
    )
    return wallet_id


def movements(wallet_id: uuid.UUID, requests: list[OperationRequest]) -> list[tuple[Leg]]:
    return [(Leg(wallet_id, request),) for request in requests]


async def apply(store: PostgresBatchStore, batch: PlannedBatch, under_lock: bool) -> BatchOutcome:
    if not under_lock:
        return await store.apply_batch(batch)

    def plan(balances: Mapping[uuid.UUID, int], held: Mapping[uuid.UUID, int]) -> PlannedBatch:
        assert set(balances) == set(batch.plan.runs)
        assert held == {run.wallet_id: run.held for run in batch.plan.runs.values() if run.held}
        return batch

    return await store.apply_batch_locked(sorted(batch.plan.runs), plan)


@pytest.mark.parametrize("under_lock", [False, True])
async def test_each_wallet_comes_back_as_its_entries_and_its_row_were_stored(
    pool: asyncpg.Pool, under_lock: bool
) -> None:
    store = PostgresBatchStore(pool, 10.0)
    starts = {
        await wallet_at(pool, 10, 3): MIXED,
        await wallet_at(pool, 40, 9): MIXED,
        await wallet_at(pool, 20, 2): REFUSED,  # nothing accepted: only checked
    }
    payer, payee = await wallet_at(pool, 30, 1), await wallet_at(pool, 0, 0)
    transfer_id = uuid.uuid4()
    batch = planned_batch(
        [
            *(m for wallet_id, requests in starts.items() for m in movements(wallet_id, requests)),
            TransferRequest(payer, payee, Money(25), "inv-1").legs(transfer_id),
        ],
        {**{w: b for w, b in zip(starts, (10, 40, 20), strict=True)}, payer: 30, payee: 0},
        [None] * (2 * len(MIXED) + len(REFUSED) + 1),
    )

    outcome = await apply(store, batch, under_lock)

    applied = {run.wallet_id: run for run in outcome.applied}
    assert set(applied) == set(batch.plan.runs)
    for wallet_id in batch.plan.runs:
        await assert_answered_as_stored(pool, applied[wallet_id], batch)
    stored = await pool.fetchrow("SELECT * FROM transfers WHERE id = $1", transfer_id)
    entries = await pool.fetch(
        "SELECT id, wallet_id, operation_type FROM operations WHERE transfer_id = $1", transfer_id
    )
    assert (stored["from_wallet_id"], stored["to_wallet_id"], stored["amount"]) == (
        payer,
        payee,
        25,
    )
    assert {(e["wallet_id"], e["operation_type"]) for e in entries} == {
        (payer, "TRANSFER_OUT"),
        (payee, "TRANSFER_IN"),
    }
    assert {stored["out_operation_id"], stored["in_operation_id"]} == {e["id"] for e in entries}


async def hold_on(
    pool: asyncpg.Pool, wallet_id: uuid.UUID, amount: int, expires_in: timedelta
) -> None:
    """A hold of ``amount`` on the wallet, reserved as the hold statements reserve it (one
    expired already was placed a minute before its expiry)."""
    await pool.execute(
        "INSERT INTO holds (id, wallet_id, currency, amount, expires_at, created_at, updated_at)"
        " SELECT $1, $2, 'USD', $3, at, placed, placed FROM (SELECT clock_timestamp() + $4 AS at)"
        " e, LATERAL (SELECT least(clock_timestamp(), at - interval '1 minute') AS placed) p",
        uuid.uuid4(),
        wallet_id,
        amount,
        expires_in,
    )
    await pool.execute("UPDATE wallets SET held = held + $2 WHERE id = $1", wallet_id, amount)


@pytest.mark.parametrize("under_lock", [False, True])
async def test_a_withdrawal_may_not_take_what_holds_reserve(
    pool: asyncpg.Pool, under_lock: bool
) -> None:
    """Planned knowing the hold, a withdrawal into held money is refused, one of what is
    available applied; each wallet comes back with what its holds reserve."""
    store = PostgresBatchStore(pool, 10.0)
    wallet_id = await wallet_at(pool, 100, 0)
    await hold_on(pool, wallet_id, 30, timedelta(hours=1))
    requests = [OperationRequest(WITHDRAW, Money(80)), OperationRequest(WITHDRAW, Money(70))]
    batch = planned_batch(
        movements(wallet_id, requests), {wallet_id: 100}, [None, None], {wallet_id: 30}
    )

    outcome = await apply(store, batch, under_lock)

    (run,) = outcome.applied
    assert [d.accepted for d in batch.plan.decisions] == [False, True]
    assert (run.balance, run.held, run.held_until is not None) == (30, 30, True)
    assert await pool.fetchval("SELECT balance FROM wallets WHERE id = $1", wallet_id) == 30


async def test_a_run_planned_with_other_holds_is_left_and_the_holds_told(
    pool: asyncpg.Pool,
) -> None:
    """Planned as if nothing were held, the run is not applied: the wallet's holds reserve
    money now. An expired hold reserves nothing, marked or not."""
    store = PostgresBatchStore(pool, 10.0)
    held, expired = await wallet_at(pool, 100, 0), await wallet_at(pool, 100, 0)
    await hold_on(pool, held, 30, timedelta(hours=1))
    await hold_on(pool, expired, 30, timedelta(seconds=-1))  # past its expiry, not yet marked
    withdrawals = [*movements(held, [OperationRequest(WITHDRAW, Money(80))])]
    withdrawals += movements(expired, [OperationRequest(WITHDRAW, Money(100))])
    batch = planned_batch(withdrawals, {held: 100, expired: 100}, [None, None])

    outcome = await store.apply_batch(batch)

    assert [run.wallet_id for run in outcome.applied] == [expired]
    assert (outcome.applied[0].balance, outcome.applied[0].held) == (0, 0)
    assert (outcome.balances, outcome.held) == ({held: 100}, {held: 30})
    assert await pool.fetchval("SELECT balance FROM wallets WHERE id = $1", held) == 100


async def test_a_transfer_whose_payer_moved_elsewhere_lands_on_neither_side(
    pool: asyncpg.Pool,
) -> None:
    """The payer's balance lies outside its range: the payee, whose own range holds, is not
    credited either; both come back stale, with their real balances."""
    store = PostgresBatchStore(pool, 10.0)
    payer, payee, alone = [await wallet_at(pool, b, 0) for b in (30, 0, 5)]
    batch = planned_batch(
        [
            TransferRequest(payer, payee, Money(25)).legs(uuid.uuid4()),
            *movements(alone, [OperationRequest(DEPOSIT, Money(1))]),
        ],
        {payer: 30, payee: 0, alone: 5},
        [None, None],
    )
    await pool.execute("UPDATE wallets SET balance = 10 WHERE id = $1", payer)

    outcome = await store.apply_batch(batch)

    assert [run.wallet_id for run in outcome.applied] == [alone]
    assert outcome.balances == {payer: 10, payee: 0}
    assert await pool.fetchval("SELECT count(*) FROM operations WHERE wallet_id = $1", payee) == 0


async def assert_answered_as_stored(
    pool: asyncpg.Pool, applied: RunApplied, batch: PlannedBatch
) -> None:
    wallet = await pool.fetchrow("SELECT * FROM wallets WHERE id = $1", applied.wallet_id)
    stored = await pool.fetch(
        "SELECT id, created_at, balance_after FROM operations WHERE wallet_id = $1"
        " ORDER BY created_at",
        applied.wallet_id,
    )
    accepted_ids = [
        entry_ids[index]
        for decision, entry_ids in zip(batch.plan.decisions, batch.entry_ids, strict=True)
        if decision.accepted
        for index, leg in enumerate(decision.legs)
        if leg.wallet_id == applied.wallet_id
    ]
    versions_before = wallet["version"] - len(accepted_ids)
    run = batch.plan.runs[applied.wallet_id]

    assert (applied.balance, applied.version) == (wallet["balance"], wallet["version"])
    assert (applied.created_at, applied.updated_at) == (wallet["created_at"], wallet["updated_at"])
    assert applied.start_balance == wallet["balance"] - run.net
    assert [entry.operation_id for entry in applied.entries] == accepted_ids
    assert [
        (entry.operation_id, entry.created_at, entry.balance_after) for entry in applied.entries
    ] == [(row["id"], row["created_at"], row["balance_after"]) for row in stored]
    assert [entry.version for entry in applied.entries] == list(
        range(versions_before + 1, wallet["version"] + 1)
    )
    if applied.entries:
        assert applied.entries[-1].created_at == wallet["updated_at"]


SHAPES = [batch_store._Shape(*flags) for flags in itertools.product((False, True), repeat=6)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
async def test_every_shape_of_the_batch_statement_runs_on_postgresql(
    pool: asyncpg.Pool, shape: batch_store._Shape
) -> None:
    """Each combination of parts is valid SQL whose parameters PostgreSQL can type: a
    batch with nothing in it writes nothing and answers no row."""
    statement = batch_store._statement(shape)
    nothing = batch_store._BatchInputs(
        runs=[], accepted=[], labels=[], new_transfers=[], to_lock=[], keys=[]
    )
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(statement.sql, *parameters(nothing, statement.reads))

    assert rows == []
