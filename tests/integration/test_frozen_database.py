"""PostgreSQL frozen mid-query (SIGSTOP: connections open, nothing answers).

Every request still answers within WALLET_DB_TIMEOUT plus 0.5 s: 503 while the
database is frozen, and the service recovers by itself once it is thawed, losing
nothing it acknowledged. Run with the other fault tests: ``pytest -m faults``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.integration.conftest import Client
from tests.integration.servers import PrivatePostgres
from wallet.adapters.postgres.audit import audit
from wallet.adapters.postgres.migrate import migrate
from wallet.config import Settings
from wallet.container import Container, resolved
from wallet.entrypoints.http.app import create_app
from wallet.entrypoints.http.keys import CONTAINER

pytestmark = pytest.mark.faults

DB_TIMEOUT = 1.0
ANSWER_WITHIN = DB_TIMEOUT + 0.5  # the contract's bound, frozen database or not
FREEZE = 4.0
RECOVERY = 5.0  # every kind of request succeeds again this soon after the thaw
CLIENTS_PER_KIND = 3

_keys = itertools.count()


@dataclass(frozen=True, slots=True)
class Answer:
    kind: str
    sent: float
    seconds: float
    status: int
    body: Any


Request = Callable[[Client, str], Awaitable[tuple[int, Any]]]


async def _json(response: Any) -> Any:
    return await response.json() if response.content_type.endswith("json") else None


async def read(client: Client, wallet_id: str) -> tuple[int, Any]:
    response = await client.get(f"/api/v1/wallets/{wallet_id}")
    return response.status, await _json(response)


async def deposit(client: Client, wallet_id: str) -> tuple[int, Any]:
    body = {"operationType": "DEPOSIT", "amount": "1.00"}
    response = await client.post(f"/api/v1/wallets/{wallet_id}/operation", json=body)
    return response.status, await _json(response)


async def keyed_deposit(client: Client, wallet_id: str) -> tuple[int, Any]:
    body = {"operationType": "DEPOSIT", "amount": "2.00"}
    headers = {"Idempotency-Key": f"frozen-{uuid.uuid4().hex}-{next(_keys)}"}
    response = await client.post(
        f"/api/v1/wallets/{wallet_id}/operation", json=body, headers=headers
    )
    return response.status, await _json(response)


async def create(client: Client, wallet_id: str) -> tuple[int, Any]:
    response = await client.post("/api/v1/wallets")
    return response.status, await _json(response)


async def ready(client: Client, wallet_id: str) -> tuple[int, Any]:
    response = await client.get("/health/ready")
    return response.status, await _json(response)


REQUESTS: dict[str, Request] = {
    "read": read,
    "deposit": deposit,
    "keyed deposit": keyed_deposit,
    "create": create,
    "ready": ready,
}
SUCCESS = {"read": 200, "deposit": 200, "keyed deposit": 200, "create": 201, "ready": 200}


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        asyncio.run(migrate(server.url))
        yield server
    finally:
        server.remove()


@pytest.fixture
async def client_for(
    private_postgres: PrivatePostgres,
) -> AsyncIterator[Callable[[bool], Awaitable[Client]]]:
    clients: list[Client] = []

    async def start(group_commit: bool) -> Client:
        settings = Settings(
            database_url=private_postgres.url,
            redis_url="",
            db_timeout=DB_TIMEOUT,
            group_commit=group_commit,
        )
        client: Client = TestClient(TestServer(create_app(Container(settings=settings))))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


@pytest.mark.parametrize("group_commit", [True, False], ids=["group-commit", "one-by-one"])
async def test_a_frozen_database_answers_every_request_in_time_then_recovers(
    private_postgres: PrivatePostgres,
    client_for: Callable[[bool], Awaitable[Client]],
    group_commit: bool,
) -> None:
    client = await client_for(group_commit)
    wallets = []
    for _ in range(CLIENTS_PER_KIND):
        status, body = await create(client, "")
        assert status == 201
        wallets.append(body["id"])

    answers: list[Answer] = []
    stop_sending = asyncio.Event()

    async def keep_sending(kind: str, wallet_id: str) -> None:
        while not stop_sending.is_set():
            sent = time.monotonic()
            status, body = await REQUESTS[kind](client, wallet_id)
            answers.append(Answer(kind, sent, time.monotonic() - sent, status, body))

    senders = [
        asyncio.create_task(keep_sending(kind, wallet_id))
        for kind in REQUESTS
        for wallet_id in wallets
    ]
    try:
        await _until(
            lambda: {a.kind for a in answers if a.status == SUCCESS[a.kind]} == set(REQUESTS)
        )
        with private_postgres.frozen():
            frozen_at = time.monotonic()
            await asyncio.sleep(FREEZE)
        thawed_at = time.monotonic()
        await _until(lambda: _recovered_since(answers, thawed_at), RECOVERY)
    finally:
        stop_sending.set()
        await asyncio.gather(*senders)

    slowest = {kind: max(a.seconds for a in answers if a.kind == kind) for kind in REQUESTS}
    print(
        f"\nslowest answer by kind ({'group commit' if group_commit else 'one by one'}):",
        ", ".join(f"{kind} {seconds:.2f} s" for kind, seconds in slowest.items()),
    )
    assert max(slowest.values()) <= ANSWER_WITHIN, slowest
    statuses = Counter((a.kind, a.status) for a in answers)
    assert {status for _, status in statuses} <= {200, 201, 503}, statuses
    while_frozen = [a for a in answers if a.sent > frozen_at and a.sent + a.seconds < thawed_at]
    assert {a.kind for a in while_frozen} == set(REQUESTS), "every kind was asked while frozen"
    assert {a.status for a in while_frozen} == {503}, Counter(a.status for a in while_frozen)

    pool = await resolved(client.server.app[CONTAINER].db_pool())
    await _until(lambda: pool.get_idle_size() == pool.get_size())
    status, body = await deposit(client, wallets[0])
    assert status == 200, body
    acknowledged = [
        a.body["operation"]["id"]
        for a in answers
        if a.kind in ("deposit", "keyed deposit") and a.status == 200
    ]
    await _assert_kept(private_postgres.url, acknowledged)


def _recovered_since(answers: list[Answer], thawed_at: float) -> bool:
    recovered = {a.kind for a in answers if a.sent > thawed_at and a.status == SUCCESS[a.kind]}
    return recovered == set(REQUESTS)


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not so within {within} s"
        await asyncio.sleep(0.05)


async def _assert_kept(url: str, operation_ids: list[str]) -> None:
    """Every acknowledged operation is in the ledger, and the ledger is consistent."""
    connection = await asyncpg.connect(url)
    try:
        found = await connection.fetchval(
            "SELECT count(*) FROM operations WHERE id = ANY($1::uuid[])", operation_ids
        )
    finally:
        await connection.close()
    assert found == len(operation_ids), "an acknowledged operation is missing from the ledger"
    report = await audit(url)
    assert report.clean, report.findings
