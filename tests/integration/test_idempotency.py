"""Idempotency keys on the real PostgreSQL: one key hammered from two service instances."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import asyncpg
import pytest

from tests.integration.conftest import AppFactory, Client
from tests.integration.ledger import assert_ledger_consistent
from wallet.adapters.postgres.idempotency_records import PostgresIdempotencyRecords


async def operate(
    client: Client, wallet_id: str, key: str, amount: str = "2.50"
) -> tuple[int, dict]:  # type: ignore[type-arg]
    body = {"operationType": "DEPOSIT", "amount": amount}
    response = await client.post(
        f"/api/v1/wallets/{wallet_id}/operation", json=body, headers={"Idempotency-Key": key}
    )
    return response.status, await response.json()


@pytest.mark.parametrize("group_commit", [True, False], ids=["group-commit", "one-by-one"])
async def test_one_key_from_many_clients_of_two_instances_applies_once(
    make_client: AppFactory, pool: asyncpg.Pool, group_commit: bool
) -> None:
    first = await make_client(group_commit=group_commit, redis_url="")
    second = await make_client(group_commit=group_commit, redis_url="")
    wallet_id = (await (await first.post("/api/v1/wallets")).json())["id"]
    key = f"hammer-{uuid.uuid4()}"

    results = await asyncio.gather(
        *(operate(client, wallet_id, key) for client in (first, second) for _ in range(100))
    )

    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {200, 409}, statuses
    operation_ids = {body["operation"]["id"] for status, body in results if status == 200}
    assert len(operation_ids) == 1, "every 2xx must be the same, single operation"
    rows = await assert_ledger_consistent(pool, uuid.UUID(wallet_id))
    assert len(rows) == 1
    recorded = await pool.fetchrow(
        "SELECT outcome, operation_id FROM idempotency_keys WHERE key = $1", key
    )
    assert recorded is not None
    assert (recorded["outcome"], str(recorded["operation_id"])) == ("APPLIED", *operation_ids)
    replay_status, replay = await operate(second, wallet_id, key)
    assert (replay_status, replay["operation"]["id"]) == (200, *operation_ids)


async def test_many_keys_in_one_batch_each_apply_once(client: Client, pool: asyncpg.Pool) -> None:
    wallet_id = (await (await client.post("/api/v1/wallets")).json())["id"]
    keys = [f"batch-{uuid.uuid4()}" for _ in range(50)]

    first = await asyncio.gather(*(operate(client, wallet_id, key, "1.00") for key in keys))
    again = await asyncio.gather(*(operate(client, wallet_id, key, "1.00") for key in keys))

    assert {status for status, _ in first + again} == {200}
    assert [body for _, body in again] == [body for _, body in first]
    rows = await assert_ledger_consistent(pool, uuid.UUID(wallet_id))
    assert len(rows) == 50


async def test_expired_keys_are_forgotten_a_batch_at_a_time(
    client: Client, pool: asyncpg.Pool
) -> None:
    wallet_id = (await (await client.post("/api/v1/wallets")).json())["id"]
    old, fresh = f"old-{uuid.uuid4()}", f"fresh-{uuid.uuid4()}"
    await operate(client, wallet_id, old)
    await operate(client, wallet_id, fresh)
    await pool.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = $1", old
    )

    forgotten = await PostgresIdempotencyRecords(pool, 5.0).forget_keys_older_than(
        timedelta(hours=24)
    )

    assert forgotten >= 1
    remaining = await pool.fetch(
        "SELECT key FROM idempotency_keys WHERE key = ANY($1)", [old, fresh]
    )
    assert [row["key"] for row in remaining] == [fresh]
