"""The batch statement answers with what it wrote: each entry and each wallet, as stored."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import asyncpg
import pytest

from wallet.adapters.group_commit import BatchOutcome, Run, RunApplied
from wallet.adapters.ids import time_ordered_uuids
from wallet.adapters.postgres.batch_store import PostgresBatchStore
from wallet.domain.batch import plan_batch
from wallet.domain.model import OperationRequest, OperationType
from wallet.domain.money import Money

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


def run_of(wallet_id: uuid.UUID, start: int, requests: list[OperationRequest]) -> Run:
    plan = plan_batch(Money(start), requests)
    return Run(wallet_id, plan, time_ordered_uuids(len(requests)), [None] * len(requests))


async def apply(store: PostgresBatchStore, runs: list[Run], under_lock: bool) -> BatchOutcome:
    if not under_lock:
        return await store.apply_runs(runs)
    by_wallet = {run.wallet_id: run for run in runs}

    def plan(balances: Mapping[uuid.UUID, int]) -> list[Run]:
        return [by_wallet[wallet_id] for wallet_id in balances]

    return await store.apply_runs_locked(list(by_wallet), plan)


@pytest.mark.parametrize("under_lock", [False, True])
async def test_each_run_comes_back_as_its_entries_and_its_wallet_were_stored(
    pool: asyncpg.Pool, under_lock: bool
) -> None:
    store = PostgresBatchStore(pool, 10.0)
    runs = [
        run_of(await wallet_at(pool, 10, 3), 10, MIXED),
        run_of(await wallet_at(pool, 40, 9), 40, MIXED),
        run_of(await wallet_at(pool, 20, 2), 20, REFUSED),  # nothing accepted: only checked
    ]

    outcome = await apply(store, runs, under_lock)

    applied = {run.wallet_id: run for run in outcome.applied}
    assert set(applied) == {run.wallet_id for run in runs}
    for run in runs:
        await assert_answered_as_stored(pool, applied[run.wallet_id], run)


async def assert_answered_as_stored(pool: asyncpg.Pool, applied: RunApplied, run: Run) -> None:
    wallet = await pool.fetchrow("SELECT * FROM wallets WHERE id = $1", applied.wallet_id)
    stored = await pool.fetch(
        "SELECT id, created_at, balance_after FROM operations WHERE wallet_id = $1"
        " ORDER BY created_at",
        applied.wallet_id,
    )
    accepted_ids = [
        operation_id
        for operation_id, decision in zip(run.operation_ids, run.plan.decisions, strict=True)
        if decision.accepted
    ]
    versions_before = wallet["version"] - len(accepted_ids)

    assert (applied.balance, applied.version) == (wallet["balance"], wallet["version"])
    assert (applied.created_at, applied.updated_at) == (wallet["created_at"], wallet["updated_at"])
    assert applied.start_balance == wallet["balance"] - run.plan.net
    assert [entry.operation_id for entry in applied.entries] == accepted_ids
    assert [
        (entry.operation_id, entry.created_at, entry.balance_after) for entry in applied.entries
    ] == [(row["id"], row["created_at"], row["balance_after"]) for row in stored]
    assert [entry.version for entry in applied.entries] == list(
        range(versions_before + 1, wallet["version"] + 1)
    )
    if applied.entries:
        assert applied.entries[-1].created_at == wallet["updated_at"]
