"""References and metadata on the real PostgreSQL: written by the one-operation statement
and by the batch statement, read back by the history, its reference filter and the
idempotency records, and the filter served by its own index."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg

from tests.integration.ledger import assert_ledger_consistent
from wallet.adapters.group_commit import GroupCommitLedger
from wallet.adapters.postgres.batch_store import PostgresBatchStore
from wallet.adapters.postgres.idempotency_records import PostgresIdempotencyRecords
from wallet.adapters.postgres.ledger import LIST_REFERENCED_FIRST, PostgresHistory, PostgresLedger
from wallet.adapters.postgres.wallets import PostgresWallets
from wallet.domain.idempotency import Idempotency
from wallet.domain.model import OperationRequest, OperationType
from wallet.domain.money import Money
from wallet.domain.pagination import Position

DEPOSIT = OperationType.DEPOSIT
EMOJI_REFERENCE = "\U0001f4b8" * 128
NOTES = {"orderId": "1234", "note": 'thé ☕ "quoted" \\ back', "a.b-c_d": ""}


def deposit(minor: int, reference: str | None = None, **metadata: str) -> OperationRequest:
    return OperationRequest(DEPOSIT, Money(minor), reference, metadata)


async def stored(pool: asyncpg.Pool, operation_id: uuid.UUID) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT reference, metadata::text AS metadata FROM operations WHERE id = $1",
        operation_id,
    )
    assert row is not None
    return row


async def test_the_one_operation_path_writes_and_reads_reference_and_metadata(
    pool: asyncpg.Pool,
) -> None:
    wallets = PostgresWallets(pool, 10.0)
    wallet = await wallets.create(uuid.uuid4(), metadata={"owner": "u-42"})
    ledger, history = PostgresLedger(pool, 10.0), PostgresHistory(pool, 10.0)

    applied = await ledger.apply(wallet.id, deposit(500, EMOJI_REFERENCE, **NOTES))
    bare = await ledger.apply(wallet.id, deposit(1))

    assert applied.operation.reference == EMOJI_REFERENCE
    assert applied.operation.metadata == NOTES
    assert applied.wallet.metadata == {"owner": "u-42"}
    row = await stored(pool, applied.operation.id)
    assert (row["reference"], json.loads(row["metadata"])) == (EMOJI_REFERENCE, NOTES)
    assert tuple(await stored(pool, bare.operation.id)) == (None, "{}")
    listed = await history.list_operations(wallet.id, 10, None)
    assert listed == [bare.operation, applied.operation]
    assert (await wallets.get(wallet.id)).metadata == {"owner": "u-42"}
    assert (await wallets.list_wallets(1, Position(wallet.created_at, uuid.UUID(int=0))))[
        0
    ].metadata == {"owner": "u-42"}


async def test_the_batched_path_writes_each_operations_own_reference_and_metadata(
    pool: asyncpg.Pool,
) -> None:
    wallet = await PostgresWallets(pool, 10.0).create(uuid.uuid4(), metadata={"k": "v"})
    group = GroupCommitLedger(PostgresBatchStore(pool, 10.0), timeout=10.0, max_batch=256)
    requests = [deposit(i + 1, f"ref-{i % 3}", n=str(i)) for i in range(60)]
    requests += [deposit(1) for _ in range(5)]

    results = await asyncio.gather(*(group.apply(wallet.id, r) for r in requests))

    for request, result in zip(requests, results, strict=True):
        assert (result.operation.reference, result.operation.metadata) == (
            request.reference,
            request.metadata,
        )
        assert result.wallet.metadata == {"k": "v"}
        row = await stored(pool, result.operation.id)
        assert (row["reference"], json.loads(row["metadata"])) == (
            request.reference,
            dict(request.metadata),
        )
    history = await PostgresHistory(pool, 10.0).list_operations(wallet.id, 100, None)
    assert sorted(history, key=lambda o: o.id) == sorted(
        (r.operation for r in results), key=lambda o: o.id
    )
    await assert_ledger_consistent(pool, wallet.id)


async def test_the_reference_filter_pages_through_one_wallets_entries_of_it(
    pool: asyncpg.Pool,
) -> None:
    wallets, ledger = PostgresWallets(pool, 10.0), PostgresLedger(pool, 10.0)
    history = PostgresHistory(pool, 10.0)
    wallet, other = await wallets.create(uuid.uuid4()), await wallets.create(uuid.uuid4())
    mine = [(await ledger.apply(wallet.id, deposit(i + 1, "order-7"))).operation for i in range(5)]
    await ledger.apply(wallet.id, deposit(1, "order-8"))
    await ledger.apply(wallet.id, deposit(1))
    await ledger.apply(other.id, deposit(1, "order-7"))

    first = await history.list_operations(wallet.id, 3, None, "order-7")
    last = first[-1]
    rest = await history.list_operations(
        wallet.id, 3, Position(last.created_at, last.id), "order-7"
    )

    assert first + rest == mine[::-1]
    assert await history.list_operations(wallet.id, 3, None, "ORDER-7") == []


async def test_a_replay_rebuilds_reference_and_metadata_from_the_rows(
    pool: asyncpg.Pool,
) -> None:
    wallet_key = Idempotency.of(f"w-{uuid.uuid4()}", "POST", "/w", "USD", "req-1")
    wallet = await PostgresWallets(pool, 10.0).create(
        uuid.uuid4(), wallet_key, metadata={"owner": "u1"}
    )
    key = Idempotency.of(f"op-{uuid.uuid4()}", "POST", "/op", "DEPOSIT 5", "req-2")
    applied = await PostgresLedger(pool, 10.0).apply(wallet.id, deposit(5, "r", x="1"), key)
    records = PostgresIdempotencyRecords(pool, 10.0)

    recorded_wallet = await records.find_recorded(wallet_key.key)
    recorded = await records.find_recorded(key.key)

    assert recorded_wallet is not None
    assert recorded_wallet.wallet == wallet
    assert recorded is not None
    assert recorded.operation == applied.operation


async def test_a_wallets_entries_of_a_reference_are_found_through_their_index(
    pool: asyncpg.Pool,
) -> None:
    """Planned on a busy wallet's history, half of it referenced; in a transaction rolled
    back, so the made-up entries leave no ledger behind."""
    wallet = await PostgresWallets(pool, 10.0).create(uuid.uuid4())
    rows = [
        (uuid.uuid4(), wallet.id, i + 1, f"ref-{i % 50}" if i % 2 else None) for i in range(2000)
    ]
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.executemany(MADE_UP_ENTRY, rows)
            await connection.execute("ANALYZE operations")
            plan = await connection.fetchval(
                "EXPLAIN (FORMAT JSON) " + LIST_REFERENCED_FIRST, wallet.id, 10, "ref-7"
            )
        finally:
            await transaction.rollback()

    assert {"operations_by_reference"} == index_names(json.loads(plan))


MADE_UP_ENTRY = """
INSERT INTO operations
       (id, wallet_id, operation_type, amount, balance_after, currency, created_at, reference)
VALUES ($1, $2, 'DEPOSIT', 1, $3::bigint, 'USD', now() + $3::bigint * interval '1 microsecond', $4)
"""


def index_names(plan: object) -> set[str]:
    """Every index a JSON plan reads."""
    if isinstance(plan, list):
        return set().union(*(index_names(item) for item in plan))
    if not isinstance(plan, dict):
        return set()
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    return found.union(*(index_names(value) for value in plan.values()))
