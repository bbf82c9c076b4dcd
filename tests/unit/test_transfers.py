"""Transfers through the HTTP app, on the default path: group commit over the in-memory store."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from wallet.adapters.memory import InMemoryDatabase
from wallet.container import Container
from wallet.domain.model import OperationType
from wallet.domain.money import MAX_AMOUNT_MINOR, MAX_BALANCE_MINOR, Money

Client = TestClient[web.Request, web.Application]
WALLETS = "/api/v1/wallets"
TRANSFERS = "/api/v1/transfers"


async def new_wallet(client: Client, funds: str | None = None, currency: str = "USD") -> str:
    response = await client.post(WALLETS, json={"currency": currency})
    assert response.status == 201
    wallet_id: str = (await response.json())["id"]
    if funds is not None:
        body = {"operationType": "DEPOSIT", "amount": funds}
        deposit = await client.post(f"{WALLETS}/{wallet_id}/operation", json=body)
        assert deposit.status == 200
    return wallet_id


async def transfer(
    client: Client, payer: str, payee: str, amount: Any, key: str | None = None, **more: Any
) -> Any:
    body = {"fromWalletId": payer, "toWalletId": payee, "amount": amount, **more}
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await client.post(TRANSFERS, json=body, headers=headers)


async def balance(client: Client, wallet_id: str) -> str:
    wallet = await (await client.get(f"{WALLETS}/{wallet_id}")).json()
    value: str = wallet["balance"]
    return value


async def history(client: Client, wallet_id: str, **params: str) -> list[Any]:
    page = await (await client.get(f"{WALLETS}/{wallet_id}/operations", params=params)).json()
    items: list[Any] = page["items"]
    return items


async def test_a_transfer_moves_the_money_as_two_entries_that_share_its_id(
    client: Client,
) -> None:
    payer, payee = await new_wallet(client, "100.00"), await new_wallet(client)

    response = await transfer(
        client, payer, payee, "25.50", reference="invoice-7", metadata={"order": "7"}
    )

    assert response.status == 201
    made = await response.json()
    assert response.headers["Location"] == f"{TRANSFERS}/{made['id']}"
    assert (made["fromWalletId"], made["toWalletId"]) == (payer, payee)
    assert (made["currency"], made["amount"], made["holdId"]) == ("USD", "25.50", None)
    assert (made["reference"], made["metadata"]) == ("invoice-7", {"order": "7"})
    out, into = made["operations"]
    assert (out["operationType"], out["walletId"], out["balanceAfter"]) == (
        "TRANSFER_OUT",
        payer,
        "74.50",
    )
    assert (into["operationType"], into["walletId"], into["balanceAfter"]) == (
        "TRANSFER_IN",
        payee,
        "25.50",
    )
    assert {out["transferId"], into["transferId"]} == {made["id"]}
    assert {out["reference"], into["reference"]} == {"invoice-7"}
    assert (await balance(client, payer), await balance(client, payee)) == ("74.50", "25.50")
    assert await (await client.get(f"{TRANSFERS}/{made['id']}")).json() == made
    assert [e["id"] for e in await history(client, payer, reference="invoice-7")] == [out["id"]]
    assert [e["id"] for e in await history(client, payee, reference="invoice-7")] == [into["id"]]


@pytest.mark.parametrize(
    ("amount", "to", "status", "code"),
    [
        ("100.01", "payee", 400, "INSUFFICIENT_FUNDS"),
        ("1.005", "payee", 400, "VALIDATION_ERROR"),
        ("0", "payee", 400, "VALIDATION_ERROR"),
        ("1", "payer", 400, "VALIDATION_ERROR"),
        ("1", "euro", 400, "CURRENCY_MISMATCH"),
        ("1", "unknown", 404, "WALLET_NOT_FOUND"),
    ],
)
async def test_a_refused_transfer_moves_nothing_and_writes_nothing(
    client: Client, amount: str, to: str, status: int, code: str
) -> None:
    wallets = {
        "payer": await new_wallet(client, "100.00"),
        "payee": await new_wallet(client),
        "euro": await new_wallet(client, currency="EUR"),
        "unknown": str(uuid.uuid4()),
    }

    response = await transfer(client, wallets["payer"], wallets[to], amount)

    assert response.status == status
    assert (await response.json())["code"] == code
    assert await balance(client, wallets["payer"]) == "100.00"
    assert len(await history(client, wallets["payer"])) == 1
    assert await history(client, wallets["payee"]) == []


async def test_either_wallet_unknown_is_named_the_payer_first(client: Client) -> None:
    known = await new_wallet(client, "1.00")
    missing, other = str(uuid.uuid4()), str(uuid.uuid4())

    for payer, payee, named in [(missing, other, missing), (known, other, other)]:
        response = await transfer(client, payer, payee, "1")
        problem = await response.json()
        assert (response.status, problem["code"]) == (404, "WALLET_NOT_FOUND")
        assert named in problem["detail"]


async def test_a_currency_mismatch_comes_before_the_amounts_digits(client: Client) -> None:
    """The contract's order: wallets, currencies, then the amount against the currency."""
    yen, dollars = await new_wallet(client, "100", "JPY"), await new_wallet(client)

    response = await transfer(client, yen, dollars, "1.50")

    assert (await response.json())["code"] == "CURRENCY_MISMATCH"


async def test_a_transfer_past_the_payees_maximum_is_refused_on_both_sides(
    client: Client, repository: InMemoryDatabase
) -> None:
    payer, payee = await new_wallet(client, "5.00"), await new_wallet(client)
    largest = {"operationType": "DEPOSIT", "amount": str(Money(MAX_AMOUNT_MINOR))}
    for _ in range(MAX_BALANCE_MINOR // MAX_AMOUNT_MINOR):
        assert (await client.post(f"{WALLETS}/{payee}/operation", json=largest)).status == 200

    response = await transfer(client, payer, payee, "0.01")

    assert (await response.json())["code"] == "BALANCE_LIMIT_EXCEEDED"
    assert await balance(client, payer) == "5.00"
    assert all(entry.type is OperationType.DEPOSIT for entry in repository.ledger(uuid.UUID(payee)))


async def test_the_same_key_answers_the_same_transfer_and_moves_money_once(
    client: Client,
) -> None:
    payer, payee = await new_wallet(client, "10.00"), await new_wallet(client)

    first = await transfer(client, payer, payee, "4.00", key="pay-1")
    again = await transfer(client, payer, payee, 4, key="pay-1")
    other = await transfer(client, payer, payee, "5.00", key="pay-1")

    assert (first.status, again.status, other.status) == (201, 201, 422)
    assert await again.json() == await first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await balance(client, payer), await balance(client, payee)) == ("6.00", "4.00")


async def test_a_recorded_refusal_is_answered_again_even_once_the_money_is_there(
    client: Client,
) -> None:
    payer, payee = await new_wallet(client), await new_wallet(client)

    first = await transfer(client, payer, payee, "4.00", key="pay-early")
    deposit = {"operationType": "DEPOSIT", "amount": "10"}
    await client.post(f"{WALLETS}/{payer}/operation", json=deposit)
    again = await transfer(client, payer, payee, "4.00", key="pay-early")

    assert (first.status, again.status) == (400, 400)
    assert (await again.json())["detail"] == (await first.json())["detail"]
    assert await balance(client, payee) == "0.00"


async def test_two_requests_under_one_key_at_once_move_money_once(client: Client) -> None:
    payer, payee = await new_wallet(client, "10.00"), await new_wallet(client)

    answers = await asyncio.gather(
        *(transfer(client, payer, payee, "1.00", key="race") for _ in range(5))
    )

    statuses = sorted(answer.status for answer in answers)
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    assert (await balance(client, payer), await balance(client, payee)) == ("9.00", "1.00")


async def test_an_unknown_or_malformed_transfer_id(client: Client) -> None:
    unknown = await client.get(f"{TRANSFERS}/{uuid.uuid4()}")
    malformed = await client.get(f"{TRANSFERS}/not-an-id")

    assert (unknown.status, (await unknown.json())["code"]) == (404, "TRANSFER_NOT_FOUND")
    assert (malformed.status, (await malformed.json())["code"]) == (400, "VALIDATION_ERROR")


async def test_the_operation_endpoint_takes_no_transfer_entries(client: Client) -> None:
    wallet_id = await new_wallet(client, "5.00")
    body = {"operationType": "TRANSFER_OUT", "amount": "1"}

    response = await client.post(f"{WALLETS}/{wallet_id}/operation", json=body)

    assert (response.status, (await response.json())["code"]) == (400, "VALIDATION_ERROR")


async def test_concurrent_transfers_in_every_direction_keep_every_cent(client: Client) -> None:
    """Random directions among a few wallets, cycles included: all answered, none lost."""
    wallets = [await new_wallet(client, "10.00") for _ in range(4)]
    rng = random.Random(7)
    pairs = [rng.sample(wallets, 2) for _ in range(120)]

    answers = await asyncio.gather(
        *(
            transfer(client, payer, payee, f"{rng.randint(1, 400) / 100:.2f}")
            for payer, payee in pairs
        )
    )

    assert {answer.status for answer in answers} <= {201, 400}
    net = dict.fromkeys(wallets, 1000)
    for answer in answers:
        body = await answer.json()
        if answer.status == 400:
            assert body["code"] == "INSUFFICIENT_FUNDS"
            continue
        cents = int(body["amount"].replace(".", ""))
        net[body["fromWalletId"]] -= cents
        net[body["toWalletId"]] += cents
    for wallet_id in wallets:
        assert await balance(client, wallet_id) == str(Money(net[wallet_id]))


async def test_transfers_to_one_payee_share_batches(client: Client, container: Container) -> None:
    payee = await new_wallet(client)
    payers = [await new_wallet(client, "1.00") for _ in range(20)]

    answers = await asyncio.gather(*(transfer(client, p, payee, "1.00") for p in payers))

    assert {answer.status for answer in answers} == {201}
    assert await balance(client, payee) == "20.00"
    store = container.batch_store()
    transfer_batches = [
        batch for batch in store.batches if any(len(d.legs) == 2 for d in batch.plan.decisions)
    ]
    assert len(transfer_batches) < len(payers), "transfers queued together share a batch"
