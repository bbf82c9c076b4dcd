"""The event feed through the HTTP API, on the in-memory adapters: one event for every
change, exactly when it committed, whose ``data`` is what the API answered the change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.unit.fakes import Clock, serve_from
from wallet.adapters.memory import InMemoryDatabase
from wallet.container import Container
from wallet.entrypoints.http import openapi
from wallet.entrypoints.http.app import create_app
from wallet.entrypoints.http.keys import SERVICES
from wallet.entrypoints.http.problems import PROBLEM_CONTENT_TYPE

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]
Json = dict[str, Any]

EVENTS = "/api/v1/events"
WALLETS = "/api/v1/wallets"
TRANSFERS = "/api/v1/transfers"
HOLDS = "/api/v1/holds"
RETENTION = timedelta(days=30)

DOC = openapi.document()
DOC_URI = "urn:wallet:openapi"
EVENT_PAGE = Draft202012Validator(
    {"$ref": f"{DOC_URI}#/components/schemas/EventPage"},
    registry=Registry().with_resource(DOC_URI, DRAFT202012.create_resource(DOC)),
    format_checker=Draft202012Validator.FORMAT_CHECKER,
)


@pytest.fixture(autouse=True)
def clock(repository: InMemoryDatabase, container: Container) -> Clock:
    """One clock for the store (expiry, the events' age) and the service; set before the
    app starts."""
    moved = Clock()
    repository.clock = moved
    container.wallet_service.add_kwargs(clock=moved)
    return moved


@pytest.fixture(params=[True, False], ids=["group-committed", "one-at-a-time"])
async def either(
    request: pytest.FixtureRequest,
    aiohttp_client: ClientFactory,
    container: Container,
    repository: InMemoryDatabase,
) -> Client:
    """The app with its ledger group-committed (the production default) or not: each path
    of the store writes its own events."""
    serve_from(container, repository, batched=request.param)
    return await aiohttp_client(create_app(container))


# --- helpers ----------------------------------------------------------------------------


async def answer(response: ClientResponse, status: int) -> Json:
    text = await response.text()
    assert response.status == status, text
    body: Json = json.loads(text)
    return body


async def post(
    client: Client, path: str, body: object = None, status: int = 200, key: str | None = None
) -> Json:
    headers = {"Idempotency-Key": key} if key else {}
    return await answer(await client.post(path, json=body, headers=headers), status)


async def new_wallet(client: Client, currency: str = "USD") -> Json:
    return await post(client, WALLETS, {"currency": currency}, 201)


async def operate(client: Client, wallet: Json, kind: str, amount: str, status: int = 200) -> Json:
    body = {"operationType": kind, "amount": amount}
    return await post(client, f"{WALLETS}/{wallet['id']}/operation", body, status)


async def transfer(client: Client, payer: Json, payee: Json, amount: str) -> Json:
    body = {"fromWalletId": payer["id"], "toWalletId": payee["id"], "amount": amount}
    return await post(client, TRANSFERS, body, 201)


async def place(client: Client, wallet: Json, amount: str, **more: object) -> Json:
    return await post(client, f"{WALLETS}/{wallet['id']}/holds", {"amount": amount, **more}, 201)


async def page(client: Client, **params: str) -> Json:
    """A page of the feed, checked against the document's EventPage."""
    body = await answer(await client.get(EVENTS, params=params), 200)
    assert not [error.message for error in EVENT_PAGE.iter_errors(body)]
    return body


async def events(client: Client, **params: str) -> list[Json]:
    """Every event the feed has (with ``params``), paged through after the last id given."""
    found: list[Json] = []
    after = params.pop("after", None)
    while True:
        read = await page(client, **params, **({"after": after} if after else {}))
        if not read["items"]:
            assert read["lastEventId"] is None
            return found
        assert read["lastEventId"] == read["items"][-1]["id"]
        found += read["items"]
        after = read["lastEventId"]


async def problem(response: ClientResponse, status: int, code: str) -> Json:
    body = await answer(response, status)
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert (body["status"], body["code"]) == (status, code)
    return body


def kinds(found: list[Json]) -> list[tuple[str, str]]:
    return [(event["type"], event["walletId"]) for event in found]


def concerns(event: Json, wallet_id: str) -> bool:
    """What the contract says ``walletId=`` matches: the wallet's own events, and the
    transfers and captures that pay it."""
    data = event["data"]
    payee = None
    if event["type"] == "transfer.completed":
        payee = data["toWalletId"]
    elif event["type"] == "hold.captured":
        payee = data["hold"]["toWalletId"]
    return wallet_id in (event["walletId"], payee)


def ledger_entries(found: list[Json]) -> list[Json]:
    """The ledger entries the events carry, in the events' order."""
    entries: list[Json] = []
    for event in found:
        if event["type"] == "operation.applied":
            entries.append(event["data"])
        elif event["type"] == "transfer.completed":
            entries += event["data"]["operations"]
    return entries


# --- every change, one event --------------------------------------------------------------


async def test_every_change_is_one_event_carrying_what_the_api_answered(
    either: Client, clock: Clock
) -> None:
    client = either
    payer, payee = await new_wallet(client), await new_wallet(client)
    deposit = await operate(client, payer, "DEPOSIT", "100.00")
    withdrawal = await operate(client, payer, "WITHDRAW", "10.00")
    moved = await transfer(client, payer, payee, "25.00")
    withdrawn_hold = await place(client, payer, "20.00", reference="r-1", metadata={"a": "b"})
    withdrawn = await post(client, f"{HOLDS}/{withdrawn_hold['id']}/capture", {"amount": "5"})
    paying_hold = await place(client, payer, "10.00", toWalletId=payee["id"])
    paid = await post(client, f"{HOLDS}/{paying_hold['id']}/capture")
    voided_hold = await place(client, payer, "1.00")
    voided = await post(client, f"{HOLDS}/{voided_hold['id']}/void")
    expiring = await place(client, payer, "2.00", expiresIn=60)
    clock.offset = timedelta(seconds=61)
    assert (await client.app[SERVICES].expire_holds()).expired == 1
    expired = await answer(await client.get(f"{HOLDS}/{expiring['id']}"), 200)

    found = await events(client)

    a, b = payer["id"], payee["id"]
    assert [(event["type"], event["walletId"], event["data"]) for event in found] == [
        ("wallet.created", a, payer),
        ("wallet.created", b, payee),
        ("operation.applied", a, deposit["operation"]),
        ("operation.applied", a, withdrawal["operation"]),
        ("transfer.completed", a, moved),
        ("hold.created", a, withdrawn_hold),
        ("hold.captured", a, withdrawn),
        ("hold.created", a, paying_hold),
        ("hold.captured", a, paid),
        ("hold.created", a, voided_hold),
        ("hold.voided", a, voided),
        ("hold.created", a, expiring),
        ("hold.expired", a, expired),
    ]
    assert [event["id"] for event in found] == [str(n) for n in range(1, len(found) + 1)]
    assert expired["status"] == "EXPIRED"
    assert [op["holdId"] for op in paid["operations"]] == [paying_hold["id"]] * 2


async def test_the_expiry_job_marks_a_hold_expired_once_and_only_then_is_there_an_event(
    client: Client, clock: Clock
) -> None:
    wallet = await new_wallet(client)
    await operate(client, wallet, "DEPOSIT", "10")
    hold = await place(client, wallet, "3", expiresIn=60)
    clock.offset = timedelta(seconds=61)
    assert (await answer(await client.get(f"{HOLDS}/{hold['id']}"), 200))["status"] == "EXPIRED"
    assert [event["type"] for event in await events(client)][-1] == "hold.created"

    for _ in range(2):
        await client.app[SERVICES].expire_holds()

    found = await events(client)
    assert [event["type"] for event in found][-2:] == ["hold.created", "hold.expired"]
    assert found[-1]["data"]["updatedAt"] == hold["expiresAt"]


async def test_concurrent_operations_are_events_in_each_wallets_ledger_order(
    either: Client,
) -> None:
    client = either
    one, two = await new_wallet(client), await new_wallet(client)
    await operate(client, one, "DEPOSIT", "1000")
    await asyncio.gather(
        *(operate(client, one, "DEPOSIT", f"{n}.00") for n in range(1, 11)),
        *(operate(client, one, "WITHDRAW", f"0.0{n}") for n in range(1, 6)),
        *(transfer(client, one, two, f"{n}.50") for n in range(1, 6)),
        *(operate(client, two, "DEPOSIT", "1") for _ in range(5)),
    )

    found = await events(client)

    for wallet in (one, two):
        history = await answer(await client.get(f"{WALLETS}/{wallet['id']}/operations"), 200)
        ledger = [op["id"] for op in reversed(history["items"])]
        entries = [e["id"] for e in ledger_entries(found) if e["walletId"] == wallet["id"]]
        assert entries == ledger
    assert len(found) == 2 + 1 + 25
    assert [int(event["id"]) for event in found] == list(range(1, len(found) + 1))


# --- no event without a change ------------------------------------------------------------


async def test_a_refusal_makes_no_event(client: Client, clock: Clock) -> None:
    wallet, other, euro = (
        await new_wallet(client),
        await new_wallet(client),
        await new_wallet(client, "EUR"),
    )
    await operate(client, wallet, "DEPOSIT", "10")
    captured = await place(client, wallet, "1")
    await post(client, f"{HOLDS}/{captured['id']}/capture")
    voided = await place(client, wallet, "1")
    await post(client, f"{HOLDS}/{voided['id']}/void")
    expiring = await place(client, wallet, "1", expiresIn=1)
    before = await events(client)
    clock.offset = timedelta(seconds=2)
    unknown = str(uuid4())
    too_much = {"fromWalletId": wallet["id"], "toWalletId": other["id"], "amount": "100"}
    mismatch = {"fromWalletId": wallet["id"], "toWalletId": euro["id"], "amount": "1"}

    await operate(client, wallet, "WITHDRAW", "100", status=400)
    await operate(client, wallet, "DEPOSIT", "0.001", status=400)
    await operate(client, {"id": unknown}, "DEPOSIT", "1", status=404)
    await post(client, TRANSFERS, too_much, 400)
    await post(client, TRANSFERS, mismatch, 400)
    await post(client, TRANSFERS, {**too_much, "toWalletId": unknown}, 404)
    await post(client, f"{WALLETS}/{wallet['id']}/holds", {"amount": "100"}, 400)
    await post(client, f"{WALLETS}/{unknown}/holds", {"amount": "1"}, 404)
    await post(client, f"{WALLETS}", {"currency": "XAU"}, 400)
    for hold in (captured, voided, expiring):
        for action in ("capture", "void"):
            response = await client.post(f"{HOLDS}/{hold['id']}/{action}")
            await problem(response, 409, "HOLD_NOT_ACTIVE")
    await problem(await client.post(f"{HOLDS}/{unknown}/void"), 404, "HOLD_NOT_FOUND")

    assert await events(client) == before


async def test_a_replay_under_an_idempotency_key_makes_no_event(client: Client) -> None:
    wallet = await post(client, WALLETS, None, 201, key="create")
    other = await new_wallet(client)
    operation = f"{WALLETS}/{wallet['id']}/operation"
    deposit = {"operationType": "DEPOSIT", "amount": "50"}
    withdrawal = {"operationType": "WITHDRAW", "amount": "1000"}
    moved = {"fromWalletId": wallet["id"], "toWalletId": other["id"], "amount": "5"}
    holds = f"{WALLETS}/{wallet['id']}/holds"
    await post(client, operation, deposit, 200, key="deposit")
    await post(client, operation, withdrawal, 400, key="refused")
    await post(client, TRANSFERS, moved, 201, key="transfer")
    hold = await post(client, holds, {"amount": "1"}, 201, key="hold")
    released = await place(client, wallet, "1")
    await post(client, f"{HOLDS}/{hold['id']}/capture", None, 200, key="capture")
    await post(client, f"{HOLDS}/{released['id']}/void", None, 200, key="void")
    before = await events(client)

    for path, body, status, key in [
        (WALLETS, None, 201, "create"),
        (operation, deposit, 200, "deposit"),
        (operation, withdrawal, 400, "refused"),
        (TRANSFERS, moved, 201, "transfer"),
        (holds, {"amount": "1"}, 201, "hold"),
        (f"{HOLDS}/{hold['id']}/capture", None, 200, "capture"),
        (f"{HOLDS}/{released['id']}/void", None, 200, "void"),
    ]:
        response = await client.post(path, json=body, headers={"Idempotency-Key": key})
        await answer(response, status)
        assert response.headers.get("Idempotent-Replayed") == "true", key

    assert await events(client) == before
    assert len(before) == 2 + 1 + 1 + 2 + 1 + 1


# --- reading: paging, the wallet filter, limits --------------------------------------------


async def test_paging_after_the_last_id_gives_every_event_once_in_id_order(
    client: Client,
) -> None:
    wallet = await new_wallet(client)
    for n in range(1, 7):
        await operate(client, wallet, "DEPOSIT", str(n))
    everything = (await page(client))["items"]

    pages = []
    after = "0"
    while True:
        read = await page(client, after=after, limit="2")
        if not read["items"]:
            break
        pages.append([event["id"] for event in read["items"]])
        after = read["lastEventId"]

    assert pages == [["1", "2"], ["3", "4"], ["5", "6"], ["7"]]
    assert (await page(client, after="3", limit="100"))["items"] == everything[3:]
    assert (await page(client, after="0"))["items"] == everything
    assert (await page(client, after="007"))["items"] == []
    for past_every_id in (str(2**63 - 1), str(2**63), "9" * 19):
        assert await page(client, after=past_every_id) == {"items": [], "lastEventId": None}


async def test_the_feed_is_empty_before_any_change(client: Client) -> None:
    assert await page(client) == {"items": [], "lastEventId": None}


async def test_a_wallets_events_are_its_own_and_the_transfers_and_captures_paying_it(
    client: Client,
) -> None:
    a, b, c = await new_wallet(client), await new_wallet(client), await new_wallet(client)
    await operate(client, a, "DEPOSIT", "100")
    await operate(client, c, "DEPOSIT", "100")
    await transfer(client, a, b, "10")
    await transfer(client, c, a, "10")
    await transfer(client, b, c, "1")
    paying = await place(client, a, "5", toWalletId=b["id"])
    await post(client, f"{HOLDS}/{paying['id']}/capture")
    voided = await place(client, a, "5", toWalletId=b["id"])
    await post(client, f"{HOLDS}/{voided['id']}/void")
    withdrawing = await place(client, c, "5")
    await post(client, f"{HOLDS}/{withdrawing['id']}/capture")
    everything = await events(client)

    of_b = await events(client, walletId=b["id"].upper())

    assert kinds(of_b) == [
        ("wallet.created", b["id"]),
        ("transfer.completed", a["id"]),
        ("transfer.completed", b["id"]),
        ("hold.captured", a["id"]),
    ]
    for wallet in (a, b, c):
        assert await events(client, walletId=wallet["id"]) == [
            event for event in everything if concerns(event, wallet["id"])
        ]
    of_a = await events(client, walletId=a["id"], after=of_b[1]["id"])
    assert [event["type"] for event in of_a] == [
        "transfer.completed",
        "hold.created",
        "hold.captured",
        "hold.created",
        "hold.voided",
    ]
    assert (await page(client, walletId=c["id"], limit="1"))["items"] == [
        event for event in everything if event["walletId"] == c["id"]
    ][:1]


async def test_a_page_holds_at_most_limit_events_100_by_default(client: Client) -> None:
    for _ in range(101):
        await new_wallet(client)

    assert len((await page(client))["items"]) == 100
    assert len((await page(client, limit="1"))["items"]) == 1
    assert len((await page(client, limit="1000"))["items"]) == 101
    assert (await page(client, limit="1000", after="100"))["lastEventId"] == "101"


# --- refused reads --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        *[
            ({"after": after}, "after")
            for after in (
                *("-1", "+1", "1.0", "1e3", "0x1", "x", "", " 1", "1 ", "\u0661", "\uff11"),
                "1" * 20,
            )
        ],
        *[({"limit": limit}, "limit") for limit in ("0", "1001", "-1", "x", "", "1.5", "10000")],
        *[
            ({"walletId": wallet_id}, "walletId")
            for wallet_id in ("x", "", "3f1c2d4e5b6a4c8d9e0f1a2b3c4d5e6f", str(uuid4()) + "0")
        ],
    ],
)
async def test_a_malformed_parameter_is_a_validation_error_on_it_and_changes_nothing(
    client: Client, params: dict[str, str], field: str
) -> None:
    await new_wallet(client)
    before = await events(client)

    body = await problem(await client.get(EVENTS, params=params), 400, "VALIDATION_ERROR")

    assert [error["field"] for error in body["errors"]] == [field]
    assert await events(client) == before


@pytest.mark.parametrize("name", ["after", "limit", "walletId"])
async def test_a_parameter_given_twice_is_a_validation_error_on_it(
    client: Client, name: str
) -> None:
    value = (await new_wallet(client))["id"] if name == "walletId" else "1"
    response = await client.get(EVENTS, params=[(name, value), (name, value)])
    body = await problem(response, 400, "VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == [name]


async def test_every_malformed_parameter_is_named_at_once(client: Client) -> None:
    response = await client.get(EVENTS, params={"after": "x", "limit": "0", "walletId": "y"})
    body = await problem(response, 400, "VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["after", "limit", "walletId"]


async def test_an_unknown_wallet_is_404_as_for_every_read_of_one_wallet(client: Client) -> None:
    unknown = str(uuid4())
    await new_wallet(client)

    body = await problem(
        await client.get(EVENTS, params={"walletId": unknown}), 404, "WALLET_NOT_FOUND"
    )

    assert unknown in body["detail"]
    await problem(await client.get(f"{WALLETS}/{unknown}/operations"), 404, "WALLET_NOT_FOUND")


async def test_unknown_query_parameters_are_ignored_as_on_every_list(client: Client) -> None:
    await new_wallet(client)
    assert await page(client, cursor="x", foo="1") == await page(client)
    assert (await client.get(WALLETS, params={"foo": "1"})).status == 200


# --- retention ------------------------------------------------------------------------------


async def test_after_an_event_the_retention_dropped_the_feed_is_gone_410(
    client: Client, clock: Clock
) -> None:
    for _ in range(3):
        await new_wallet(client)
    await asyncio.sleep(0.001)
    between = datetime.now(UTC)
    kept = await new_wallet(client)
    clock.fixed = between + RETENTION

    assert await client.app[SERVICES].forget_expired_events(RETENTION) == 3

    for after in ("0", "2"):
        response = await client.get(EVENTS, params={"after": after})
        body = await problem(response, 410, "EVENTS_EXPIRED")
        assert "after=3" in body["detail"]
    oldest_kept = await page(client)
    assert [event["data"] for event in oldest_kept["items"]] == [kept]
    assert oldest_kept["items"][0]["id"] == "4"
    assert await page(client, after="3") == oldest_kept
    assert (await page(client, after="4"))["items"] == []
    later = await new_wallet(client)
    assert [(e["id"], e["data"]) for e in await events(client, after="4")] == [("5", later)]
    response = await client.get(EVENTS, params={"after": "1", "walletId": kept["id"]})
    await problem(response, 410, "EVENTS_EXPIRED")


async def test_events_younger_than_the_retention_are_kept(client: Client) -> None:
    await new_wallet(client)
    assert await client.app[SERVICES].forget_expired_events(RETENTION) == 0
    assert len(await events(client, after="0")) == 1


async def test_the_feed_is_unavailable_with_its_database(
    client: Client, repository: InMemoryDatabase
) -> None:
    await new_wallet(client)
    repository.available = False
    response = await client.get(EVENTS)
    await problem(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["Retry-After"]
