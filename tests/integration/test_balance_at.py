"""A wallet's balance at a moment on the real PostgreSQL: the ledger's answer at each entry,
found by one step down the history index."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.integration.conftest import Client
from wallet.adapters.postgres.ledger import BALANCE_AT

BOTH_WRITE_PATHS = pytest.mark.parametrize(
    "group_commit", [True, False], ids=["group-commit", "one-by-one"]
)
WALLETS = "/api/v1/wallets"


def before(text: str) -> str:
    """The moment a microsecond before ``text``, in RFC 3339."""
    earlier = datetime.fromisoformat(text) - timedelta(microseconds=1)
    return earlier.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


async def operate(client: Client, wallet_id: str, kind: str, amount: str) -> Any:
    body = {"operationType": kind, "amount": amount}
    response = await client.post(f"{WALLETS}/{wallet_id}/operation", json=body)
    assert response.status == 200, await response.text()
    return (await response.json())["operation"]


async def balance_at(client: Client, wallet_id: str, at: str) -> Any:
    response = await client.get(f"{WALLETS}/{wallet_id}/balance", params={"at": at})
    assert response.status == 200, await response.text()
    return await response.json()


@BOTH_WRITE_PATHS
async def test_each_entry_marks_the_balance_from_its_moment_on(
    make_client: Any, group_commit: bool
) -> None:
    client = await make_client(group_commit=group_commit)
    created = await (await client.post(WALLETS, json={"currency": "BHD"})).json()
    wallet_id = created["id"]
    entries = [
        await operate(client, wallet_id, kind, amount)
        for kind, amount in [("DEPOSIT", "1.500"), ("WITHDRAW", "0.250"), ("DEPOSIT", "2")]
    ]

    first = await balance_at(client, wallet_id, before(entries[0]["createdAt"]))
    assert (first["currency"], first["balance"]) == ("BHD", "0.000")
    for previous, entry in zip([None, *entries], entries, strict=False):
        at_entry = await balance_at(client, wallet_id, entry["createdAt"])
        just_before = await balance_at(client, wallet_id, before(entry["createdAt"]))
        assert at_entry["balance"] == entry["balanceAfter"]
        assert just_before["balance"] == (previous["balanceAfter"] if previous else "0.000")
    now = await (await client.get(f"{WALLETS}/{wallet_id}/balance")).json()
    assert now["balance"] == "3.250"


@BOTH_WRITE_PATHS
async def test_an_unknown_wallet_is_404_and_a_moment_to_come_400(
    make_client: Any, group_commit: bool
) -> None:
    client = await make_client(group_commit=group_commit)
    unknown = "00000000-0000-4000-8000-000000000000"
    future = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()

    missing = await client.get(
        f"{WALLETS}/{unknown}/balance", params={"at": "2026-01-01T00:00:00Z"}
    )
    refused = await client.get(f"{WALLETS}/{unknown}/balance", params={"at": future})

    assert (missing.status, (await missing.json())["code"]) == (404, "WALLET_NOT_FOUND")
    assert (refused.status, (await refused.json())["code"]) == (400, "VALIDATION_ERROR")


async def test_it_is_one_step_down_the_history_index(pool: asyncpg.Pool) -> None:
    """Whatever the ledger's size: an index scan of operations_history, stopped at its first row."""
    async with pool.acquire() as connection:
        (plan,) = await connection.fetchrow(
            f"EXPLAIN (FORMAT JSON) {BALANCE_AT}",
            "00000000-0000-4000-8000-000000000000",
            datetime.now(UTC),
        )
    nodes = list(_nodes(json.loads(plan)[0]["Plan"]))
    scans = [node for node in nodes if node.get("Relation Name") == "operations"]

    assert [scan["Node Type"] for scan in scans] == ["Index Scan"]
    assert scans[0]["Index Name"] == "operations_history"
    assert any(node["Node Type"] == "Limit" for node in nodes)
    assert not any(node["Node Type"] == "Sort" for node in nodes)


def _nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)
