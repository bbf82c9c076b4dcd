"""WALLET_DB_PGBOUNCER on the real PostgreSQL: everything works with the statement cache off."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.conftest import AppFactory, Client
from wallet.container import resolved
from wallet.entrypoints.http.keys import CONTAINER

WALLETS = "/api/v1/wallets"
LEFT_BEHIND = """
    SELECT count(*) FROM pg_prepared_statements
    WHERE statement NOT LIKE '%pg_prepared_statements%'
"""  # the service's statements still prepared on the connection, not this one


async def answer(client: Client, method: str, path: str, **kwargs: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = await client.request(method, path, **kwargs)
    return response.status, await response.json()


async def deposit_and_withdraw(client: Client, wallet_id: str) -> None:
    """Five deposits at once, a refused and an accepted withdrawal, then every read."""
    operation = f"{WALLETS}/{wallet_id}/operation"
    deposits = [{"operationType": "DEPOSIT", "amount": "10.00"}] * 5
    statuses = await asyncio.gather(*(answer(client, "POST", operation, json=d) for d in deposits))
    assert [status for status, _ in statuses] == [200] * 5
    refused = await answer(
        client, "POST", operation, json={"operationType": "WITHDRAW", "amount": 51}
    )
    assert (refused[0], refused[1]["code"]) == (400, "INSUFFICIENT_FUNDS")
    withdrawn = await answer(
        client, "POST", operation, json={"operationType": "WITHDRAW", "amount": 1}
    )
    assert (withdrawn[0], withdrawn[1]["balance"]) == (200, "49.00")

    assert (await answer(client, "GET", f"{WALLETS}/{wallet_id}"))[1]["balance"] == "49.00"
    status, history = await answer(client, "GET", f"{WALLETS}/{wallet_id}/operations?limit=3")
    assert status == 200
    assert [item["balanceAfter"] for item in history["items"]] == ["49.00", "50.00", "40.00"]
    assert wallet_id in await listed_wallets(client)


async def listed_wallets(client: Client) -> set[str]:
    """Every wallet's id, page by page (signed cursors and the list's lock included)."""
    ids: set[str] = set()
    path = f"{WALLETS}?limit=1000"
    while path:
        status, page = await answer(client, "GET", path)
        assert status == 200
        ids.update(wallet["id"] for wallet in page["items"])
        path = page["nextCursor"] and f"{WALLETS}?limit=1000&cursor={page['nextCursor']}"
    return ids


@pytest.mark.parametrize("pgbouncer", [False, True], ids=["direct", "pgbouncer"])
@pytest.mark.parametrize("group_commit", [True, False], ids=["group-commit", "one-by-one"])
async def test_wallets_and_operations_work_in_either_mode(
    make_client: AppFactory, pgbouncer: bool, group_commit: bool
) -> None:
    client = await make_client(db_pgbouncer=pgbouncer, group_commit=group_commit)
    status, wallet = await answer(client, "POST", WALLETS)
    assert status == 201
    await deposit_and_withdraw(client, wallet["id"])


@pytest.mark.parametrize(
    ("pgbouncer", "plan_cache_mode", "named_statements"),
    [(False, "force_generic_plan", True), (True, "auto", False)],
    ids=["direct", "pgbouncer"],
)
async def test_pgbouncer_mode_keeps_no_statement_and_sends_only_the_application_name(
    make_client: AppFactory, pgbouncer: bool, plan_cache_mode: str, named_statements: bool
) -> None:
    """What transaction pooling needs: nothing prepared outlives its exchange, no odd setting."""
    client = await make_client(
        db_pgbouncer=pgbouncer, db_pool_min_size=1, db_pool_max_size=1, group_commit=False
    )
    status, wallet = await answer(client, "POST", WALLETS)
    assert status == 201
    await deposit_and_withdraw(client, wallet["id"])

    pool = await resolved(client.server.app[CONTAINER].db_pool())
    async with pool.acquire() as connection:  # the pool's only one: it served every request
        prepared = await connection.fetchval(LEFT_BEHIND)
        assert (prepared > 0) is named_statements
        assert await connection.fetchval("SHOW plan_cache_mode") == plan_cache_mode
        assert await connection.fetchval("SHOW application_name") == "wallet"
