"""Idempotency-Key through the HTTP app on the in-memory adapters."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from wallet.adapters.group_commit import GroupCommitLedger
from wallet.adapters.memory import InMemoryBatchStore, InMemoryDatabase
from wallet.domain.errors import IdempotencyKeyTaken
from wallet.domain.idempotency import Idempotency
from wallet.domain.model import AppliedOperation, OperationRequest, OperationType
from wallet.domain.money import Money

Client = TestClient[web.Request, web.Application]
WALLETS = "/api/v1/wallets"


async def new_wallet(client: Client) -> str:
    response = await client.post(WALLETS)
    wallet_id: str = (await response.json())["id"]
    return wallet_id


async def operate(client: Client, wallet_id: str, body: Any, key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await client.post(f"{WALLETS}/{wallet_id}/operation", json=body, headers=headers)


async def ledger_size(client: Client, wallet_id: str) -> int:
    page = await (await client.get(f"{WALLETS}/{wallet_id}/operations")).json()
    return len(page["items"])


async def test_a_repeat_gets_the_recorded_answer_and_changes_nothing(client: Client) -> None:
    wallet_id = await new_wallet(client)
    body = {"operationType": "DEPOSIT", "amount": "5.00"}

    first = await operate(client, wallet_id, body, "key-1")
    again = await operate(client, wallet_id, {"amount": 5, "operationType": "DEPOSIT"}, "key-1")

    assert (first.status, again.status) == (200, 200)
    assert await again.json() == await first.json()
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await ledger_size(client, wallet_id) == 1


async def test_the_same_key_for_another_request_is_refused(client: Client) -> None:
    wallet_id, other = await new_wallet(client), await new_wallet(client)
    await operate(client, wallet_id, {"operationType": "DEPOSIT", "amount": "5"}, "k")

    for target, body in [
        (wallet_id, {"operationType": "DEPOSIT", "amount": "6"}),
        (wallet_id, {"operationType": "WITHDRAW", "amount": "5"}),
        (other, {"operationType": "DEPOSIT", "amount": "5"}),
    ]:
        response = await operate(client, target, body, "k")
        assert response.status == 422
        assert (await response.json())["code"] == "IDEMPOTENCY_KEY_REUSED"
    created = await client.post(WALLETS, headers={"Idempotency-Key": "k"})
    assert created.status == 422
    assert await ledger_size(client, wallet_id) == 1
    assert await ledger_size(client, other) == 0


async def test_a_recorded_refusal_is_answered_again_even_after_funds_arrive(
    client: Client,
) -> None:
    wallet_id = await new_wallet(client)
    withdraw = {"operationType": "WITHDRAW", "amount": "10"}

    first = await operate(client, wallet_id, withdraw, "w-1")
    await operate(client, wallet_id, {"operationType": "DEPOSIT", "amount": "50"})
    again = await operate(client, wallet_id, withdraw, "w-1")

    assert (first.status, again.status) == (400, 400)
    first_body, again_body = await first.json(), await again.json()
    assert first_body["code"] == "INSUFFICIENT_FUNDS"
    assert again_body == first_body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["X-Request-ID"] == first.headers["X-Request-ID"]  # as the body says
    balance = (await (await client.get(f"{WALLETS}/{wallet_id}")).json())["balance"]
    assert balance == "50.00"


async def test_a_replayed_refusal_keeps_the_request_id_the_client_names(client: Client) -> None:
    wallet_id = await new_wallet(client)
    withdraw = {"operationType": "WITHDRAW", "amount": "10"}
    headers = {"Idempotency-Key": "w-named"}
    url = f"{WALLETS}/{wallet_id}/operation"

    first = await client.post(url, json=withdraw, headers={**headers, "X-Request-ID": "try-1"})
    again = await client.post(url, json=withdraw, headers={**headers, "X-Request-ID": "try-2"})

    assert (await first.json())["requestId"] == "try-1"
    assert (await again.json())["requestId"] == "try-1"  # the recorded body, as it was
    assert again.headers["X-Request-ID"] == "try-2"  # the client's, as it asked


async def test_creating_a_wallet_twice_with_a_key_creates_one(client: Client) -> None:
    first = await client.post(WALLETS, headers={"Idempotency-Key": "create-1"})
    again = await client.post(WALLETS, json={}, headers={"Idempotency-Key": "create-1"})

    assert (first.status, again.status) == (201, 201)
    assert await again.json() == await first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    page = await (await client.get(WALLETS)).json()
    assert len(page["items"]) == 1


async def test_an_invalid_request_is_not_recorded(client: Client) -> None:
    wallet_id = await new_wallet(client)
    invalid = await operate(client, wallet_id, {"operationType": "DEPOSIT", "amount": "0"}, "v")
    valid = await operate(client, wallet_id, {"operationType": "DEPOSIT", "amount": "1"}, "v")

    assert invalid.status == 400
    assert valid.status == 200
    assert "Idempotent-Replayed" not in valid.headers


@pytest.mark.parametrize(
    "key", ["", " ", "with space", "x" * 256, "é", "tab\there", "\x7f"], ids=repr
)
async def test_a_malformed_key_is_a_validation_error(client: Client, key: str) -> None:
    wallet_id = await new_wallet(client)
    headers = {"Idempotency-Key": key}
    body = {"operationType": "DEPOSIT", "amount": "1"}
    try:
        response = await client.post(f"{WALLETS}/{wallet_id}/operation", json=body, headers=headers)
    except ValueError:  # the HTTP client itself refuses some header values
        return
    problem = await response.json()
    assert response.status == 400
    assert problem["code"] == "VALIDATION_ERROR"
    assert [error["field"] for error in problem["errors"]] == ["Idempotency-Key"]
    assert await ledger_size(client, wallet_id) == 0


async def test_the_longest_and_oddest_valid_keys_work(client: Client) -> None:
    wallet_id = await new_wallet(client)
    for key in ["~" * 255, "!", "a:b/c?d=e&f#g"]:
        response = await operate(client, wallet_id, {"operationType": "DEPOSIT", "amount": 1}, key)
        assert response.status == 200


async def test_concurrent_duplicates_apply_once(client: Client) -> None:
    wallet_id = await new_wallet(client)
    body = {"operationType": "DEPOSIT", "amount": "3"}

    responses = await asyncio.gather(*(operate(client, wallet_id, body, "dup") for _ in range(20)))

    statuses = sorted(response.status for response in responses)
    assert set(statuses) <= {200, 409}
    assert 200 in statuses
    assert await ledger_size(client, wallet_id) == 1


async def test_group_commit_records_keys_and_reports_taken_ones() -> None:
    repository = InMemoryDatabase()
    group = GroupCommitLedger(InMemoryBatchStore(repository), 5.0, 256)
    wallet = await repository.create(uuid.uuid4())
    deposit = OperationRequest(OperationType.DEPOSIT, Money(100))
    key = Idempotency.of("g-1", "POST", "/x", "DEPOSIT 100", "req-1")

    first, second, plain = await asyncio.gather(
        group.apply(wallet.id, deposit, key),
        group.apply(wallet.id, OperationRequest(OperationType.WITHDRAW, Money(500)),
                    Idempotency.of("g-2", "POST", "/x", "WITHDRAW 500", "req-2")),
        group.apply(wallet.id, deposit),
        return_exceptions=True,
    )  # fmt: skip
    retaken = await asyncio.gather(group.apply(wallet.id, deposit, key), return_exceptions=True)

    assert isinstance(first, AppliedOperation)
    assert isinstance(plain, AppliedOperation)
    recorded = await repository.find_recorded("g-1")
    assert recorded is not None
    assert recorded.operation == first.operation
    refused = await repository.find_recorded("g-2")
    assert refused is not None
    assert str(refused.refusal()) == str(second)
    assert isinstance(retaken[0], IdempotencyKeyTaken)
    assert len(repository.ledger(wallet.id)) == 2
