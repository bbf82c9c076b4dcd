"""Holds: the domain's rules, and the service over the in-memory adapters through HTTP.

The store's clock (``repository.clock``) decides expiry, and the service's decides when a
cached wallet's holds may have expired; the ``clock`` fixture moves both together.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from tests.unit.fakes import Clock
from wallet.adapters.memory import InMemoryBalanceCache, InMemoryDatabase
from wallet.container import Container
from wallet.domain.currency import CURRENCIES, USD, Currency
from wallet.domain.errors import CurrencyMismatch, HoldNotActive, ValidationFailed
from wallet.domain.holds import (
    DEFAULT_EXPIRES_IN,
    MAX_EXPIRES_IN,
    CaptureCommand,
    Hold,
    HoldCommand,
    HoldRequest,
    HoldStatus,
)
from wallet.domain.model import Leg, OperationRequest, OperationType
from wallet.domain.money import MAX_AMOUNT_MINOR, MAX_BALANCE_MINOR, Money, parse_amount
from wallet.entrypoints.http.keys import SERVICES

Client = TestClient[web.Request, web.Application]
Json = dict[str, Any]

JPY, BHD, EUR = CURRENCIES["JPY"], CURRENCIES["BHD"], CURRENCIES["EUR"]
WALLETS = "/api/v1/wallets"
TRANSFERS = "/api/v1/transfers"
JSON_TYPE = {"Content-Type": "application/json"}
HOLD_KEYS = {
    *("id", "walletId", "toWalletId", "currency", "amount", "capturedAmount", "status"),
    *("expiresAt", "reference", "metadata", "createdAt", "updatedAt"),
}
T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


# --- domain: helpers ------------------------------------------------------------------


TWENTY = Money(2000)


def a_hold(
    amount: Money = TWENTY,
    status: HoldStatus = HoldStatus.HELD,
    to_wallet_id: UUID | None = None,
    reference: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Hold:
    return Hold(
        UUID(int=7),
        UUID(int=1),
        amount,
        status,
        T0 + timedelta(hours=1),
        T0,
        T0 + timedelta(minutes=5),
        to_wallet_id,
        Money(500, amount.currency) if status is HoldStatus.CAPTURED else None,
        reference,
        metadata or {},
    )


def command(
    amount: object = "5.00",
    to_wallet_id: UUID | None = None,
    expires_in: int = DEFAULT_EXPIRES_IN,
    reference: str | None = None,
    metadata: dict[str, str] | None = None,
) -> HoldCommand:
    return HoldCommand(
        UUID(int=1), parse_amount(amount), to_wallet_id, expires_in, reference, metadata or {}
    )


# --- domain: capture_amount -----------------------------------------------------------


def test_a_capture_without_an_amount_takes_the_whole_hold() -> None:
    assert a_hold(Money(2000)).capture_amount(None) == Money(2000)


@pytest.mark.parametrize(("amount", "minor"), [("0.01", 1), ("12.5", 1250), ("20", 2000)])
def test_a_capture_may_take_part_of_the_hold_or_all_of_it(amount: str, minor: int) -> None:
    assert a_hold(Money(2000)).capture_amount(parse_amount(amount)) == Money(minor)


@pytest.mark.parametrize("amount", ["20.01", "21", "1000000"])
def test_a_capture_of_more_than_the_hold_is_a_validation_error_on_amount(amount: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        a_hold(Money(2000)).capture_amount(parse_amount(amount))
    assert [e.field for e in caught.value.errors] == ["amount"]
    assert "20.00" in caught.value.detail  # names the hold's amount


@pytest.mark.parametrize(
    ("hold_amount", "amount"),
    [(Money(500, JPY), "1.5"), (Money(500, JPY), "1.00"), (Money(5000, USD), "1.001")],
)
def test_a_capture_whose_digits_do_not_fit_the_currency_is_refused_on_amount(
    hold_amount: Money, amount: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        a_hold(hold_amount).capture_amount(parse_amount(amount))
    assert [e.field for e in caught.value.errors] == ["amount"]


def test_a_capture_in_a_three_digit_currency_takes_thousandths() -> None:
    assert a_hold(Money(5000, BHD)).capture_amount(parse_amount("1.234")) == Money(1234, BHD)
    assert a_hold(Money(500, JPY)).capture_amount(parse_amount(499)) == Money(499, JPY)


# --- domain: check_active -------------------------------------------------------------


def test_a_held_hold_is_active() -> None:
    a_hold(status=HoldStatus.HELD).check_active()  # raises nothing


@pytest.mark.parametrize("status", [HoldStatus.CAPTURED, HoldStatus.VOIDED, HoldStatus.EXPIRED])
def test_a_hold_no_longer_held_is_not_active_and_the_error_names_its_status(
    status: HoldStatus,
) -> None:
    hold = a_hold(status=status)
    with pytest.raises(HoldNotActive) as caught:
        hold.check_active()
    assert caught.value.hold_status == status.value
    assert status.value in str(caught.value)
    assert str(hold.id) in str(caught.value)
    assert (caught.value.code, caught.value.status) == ("HOLD_NOT_ACTIVE", 409)


# --- domain: capture_legs and as_placed -----------------------------------------------


def test_a_capture_without_a_payee_is_one_withdrawal_naming_the_hold() -> None:
    hold = a_hold(reference="order-1", metadata={"k": "v"})

    legs = hold.capture_legs(Money(1500), None)

    expected = OperationRequest(
        OperationType.WITHDRAW, Money(1500), "order-1", {"k": "v"}, None, hold.id
    )
    assert legs == (Leg(hold.wallet_id, expected),)
    assert legs[0].request.delta_minor == -1500


def test_a_capture_with_a_payee_is_a_transfer_both_of_whose_entries_name_the_hold() -> None:
    payee, transfer_id = UUID(int=2), uuid4()
    hold = a_hold(to_wallet_id=payee, reference="r", metadata={"a": "b"})

    out, into = hold.capture_legs(Money(700), transfer_id)

    assert out == Leg(
        hold.wallet_id,
        OperationRequest(
            OperationType.TRANSFER_OUT, Money(700), "r", {"a": "b"}, transfer_id, hold.id
        ),
    )
    assert into == Leg(
        payee,
        OperationRequest(
            OperationType.TRANSFER_IN, Money(700), "r", {"a": "b"}, transfer_id, hold.id
        ),
    )
    assert out.request.delta_minor + into.request.delta_minor == 0


@pytest.mark.parametrize("status", list(HoldStatus))
def test_a_hold_as_placed_is_held_unchanged_since_creation_and_uncaptured(
    status: HoldStatus,
) -> None:
    hold = a_hold(status=status, to_wallet_id=UUID(int=2), reference="x", metadata={"m": "1"})

    placed = hold.as_placed()

    assert placed.status is HoldStatus.HELD
    assert placed.updated_at == hold.created_at
    assert placed.captured_amount is None
    assert placed == replace(
        hold, status=HoldStatus.HELD, updated_at=hold.created_at, captured_amount=None
    )


# --- domain: HoldCommand --------------------------------------------------------------


def test_a_hold_in_the_wallets_currency_keeps_everything_it_said() -> None:
    payee = UUID(int=2)
    said = command("5.5", payee, 60, "ref", {"k": "v"})

    assert said.in_currencies(EUR, EUR) == HoldRequest(
        UUID(int=1), Money(550, EUR), payee, 60, "ref", {"k": "v"}
    )
    assert command("5").in_currencies(JPY, None).amount == Money(5, JPY)


def test_a_payee_of_another_currency_is_a_currency_mismatch_before_the_digits() -> None:
    with pytest.raises(CurrencyMismatch) as caught:
        command("1.001", UUID(int=2)).in_currencies(USD, EUR)  # digits wrong for both
    assert "USD" in str(caught.value)
    assert "EUR" in str(caught.value)


@pytest.mark.parametrize(
    ("amount", "currency"), [("1.5", JPY), ("1.00", JPY), ("0.001", USD), ("0.001", EUR)]
)
def test_an_amount_whose_digits_do_not_fit_is_refused_on_amount(
    amount: str, currency: Currency
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        command(amount).in_currencies(currency, None)
    assert [e.field for e in caught.value.errors] == ["amount"]


def test_a_hold_means_the_same_whatever_the_form_of_its_amount_or_its_metadata() -> None:
    forms = [Decimal(5), "5", "5.00", "5.000", Decimal("5.0"), Decimal("0.5E1")]
    meanings = {command(amount, metadata={"a": "1", "b": "2"}).meaning for amount in forms}
    assert meanings == {command("5", metadata={"b": "2", "a": "1"}).meaning}


@pytest.mark.parametrize(
    "other",
    [
        command("5.01"),
        command("5", expires_in=60),
        command("5", expires_in=DEFAULT_EXPIRES_IN + 1),
        command("5", to_wallet_id=UUID(int=2)),
        command("5", reference="r"),
        command("5", metadata={"a": "1"}),
    ],
    ids=["amount", "expiresIn", "expiresIn+1", "toWalletId", "reference", "metadata"],
)
def test_holds_that_say_different_things_mean_different_things(other: HoldCommand) -> None:
    assert command("5").meaning != other.meaning


def test_two_payees_mean_different_holds() -> None:
    assert command("5", UUID(int=2)).meaning != command("5", UUID(int=3)).meaning


def test_a_capture_means_its_amounts_value_or_all() -> None:
    hold_id = UUID(int=7)
    assert CaptureCommand(hold_id).meaning == "all"
    spelled = {CaptureCommand(hold_id, parse_amount(a)).meaning for a in ("5", "5.00", Decimal(5))}
    assert len(spelled) == 1
    assert spelled != {CaptureCommand(hold_id).meaning}
    assert CaptureCommand(hold_id, parse_amount("5.01")).meaning not in spelled


# --- HTTP: helpers --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clock(repository: InMemoryDatabase, container: Container) -> Clock:
    """One clock for the store (which decides expiry) and the service (which decides when
    a cached wallet's holds may have expired); set before the app starts."""
    moved = Clock()
    repository.clock = moved
    container.wallet_service.add_kwargs(clock=moved)
    return moved


async def ok_json(response: ClientResponse, status: int = 200) -> Json:
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json"
    body: Json = json.loads(text)
    return body


async def problem(response: ClientResponse, status: int, code: str) -> Json:
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/problem+json"
    body: Json = json.loads(text)
    assert (body["status"], body["code"]) == (status, code)
    return body


def fields_of(body: Json) -> list[str]:
    return [e["field"] for e in body.get("errors", [])]


async def new_wallet(client: Client, balance: str = "0", currency: str = "USD") -> str:
    response = await client.post(
        WALLETS, data=json.dumps({"currency": currency}), headers=JSON_TYPE
    )
    wallet_id: str = (await ok_json(response, 201))["id"]
    if balance not in ("0", "0.00"):
        deposit = json.dumps({"operationType": "DEPOSIT", "amount": balance})
        await ok_json(
            await client.post(f"{WALLETS}/{wallet_id}/operation", data=deposit, headers=JSON_TYPE)
        )
    return wallet_id


async def post_hold(
    client: Client, wallet_id: str, body: object, key: str | None = None
) -> ClientResponse:
    headers = {**JSON_TYPE, **({"Idempotency-Key": key} if key else {})}
    return await client.post(f"{WALLETS}/{wallet_id}/holds", data=json.dumps(body), headers=headers)


async def place(client: Client, wallet_id: str, amount: str = "20.00", **more: object) -> Json:
    return await ok_json(await post_hold(client, wallet_id, {"amount": amount, **more}), 201)


async def act(
    client: Client, hold_id: str, action: str, body: object = None, key: str | None = None
) -> ClientResponse:
    headers = {"Idempotency-Key": key} if key else {}
    if body is None:
        return await client.post(f"/api/v1/holds/{hold_id}/{action}", headers=headers)
    return await client.post(
        f"/api/v1/holds/{hold_id}/{action}", data=json.dumps(body), headers={**JSON_TYPE, **headers}
    )


async def wallet(client: Client, wallet_id: str) -> Json:
    return await ok_json(await client.get(f"{WALLETS}/{wallet_id}"))


async def balances(client: Client, wallet_id: str) -> tuple[str, str, str]:
    """The wallet's balance, heldBalance and availableBalance."""
    found = await wallet(client, wallet_id)
    return found["balance"], found["heldBalance"], found["availableBalance"]


async def hold_of(client: Client, hold_id: str) -> Json:
    return await ok_json(await client.get(f"/api/v1/holds/{hold_id}"))


async def holds_of(client: Client, wallet_id: str, query: str = "") -> Json:
    return await ok_json(await client.get(f"{WALLETS}/{wallet_id}/holds{query}"))


async def operations_of(client: Client, wallet_id: str) -> list[Json]:
    page = await ok_json(await client.get(f"{WALLETS}/{wallet_id}/operations"))
    items: list[Json] = page["items"]
    return items


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def withdraw(client: Client, wallet_id: str, amount: str) -> ClientResponse:
    body = json.dumps({"operationType": "WITHDRAW", "amount": amount})
    return await client.post(f"{WALLETS}/{wallet_id}/operation", data=body, headers=JSON_TYPE)


async def full_wallet(client: Client, repository: InMemoryDatabase) -> str:
    """A wallet at the maximum balance."""
    wallet_id = await new_wallet(client)
    largest = OperationRequest(OperationType.DEPOSIT, Money(MAX_AMOUNT_MINOR))
    for _ in range(MAX_BALANCE_MINOR // MAX_AMOUNT_MINOR):
        await repository.apply(UUID(wallet_id), largest)
    return wallet_id


# --- HTTP: create and read ------------------------------------------------------------


async def test_a_hold_is_created_with_its_location_and_reserves_its_amount(client: Client) -> None:
    wallet_id = await new_wallet(client, "100")

    response = await post_hold(
        client, wallet_id, {"amount": "20", "reference": "order-7", "metadata": {"k": "v"}}
    )

    hold = await ok_json(response, 201)
    assert set(hold) == HOLD_KEYS
    assert response.headers["Location"] == f"/api/v1/holds/{hold['id']}"
    assert hold["walletId"] == wallet_id
    assert (hold["toWalletId"], hold["capturedAmount"]) == (None, None)
    assert (hold["currency"], hold["amount"], hold["status"]) == ("USD", "20.00", "HELD")
    assert (hold["reference"], hold["metadata"]) == ("order-7", {"k": "v"})
    assert hold["updatedAt"] == hold["createdAt"]
    created = moment(hold["createdAt"])
    assert moment(hold["expiresAt"]) - created == timedelta(seconds=DEFAULT_EXPIRES_IN)
    assert await ok_json(await client.get(response.headers["Location"])) == hold
    assert await balances(client, wallet_id) == ("100.00", "20.00", "80.00")
    (deposit,) = await operations_of(client, wallet_id)  # a hold writes no ledger entry
    assert deposit["operationType"] == "DEPOSIT"


async def test_a_hold_expires_when_it_says(client: Client) -> None:
    wallet_id = await new_wallet(client, "1")
    for seconds in (1, 60, MAX_EXPIRES_IN):
        hold = await place(client, wallet_id, "0.01", expiresIn=seconds)
        elapsed = moment(hold["expiresAt"]) - moment(hold["createdAt"])
        assert elapsed == timedelta(seconds=seconds)


async def test_a_wallet_without_holds_has_nothing_held_and_all_available(client: Client) -> None:
    wallet_id = await new_wallet(client, "12.34")
    assert await balances(client, wallet_id) == ("12.34", "0.00", "12.34")


@pytest.mark.parametrize(
    ("currency", "balance", "amount", "expected"),
    [
        ("JPY", "1000", "300", ("1000", "300", "700")),
        ("BHD", "2.5", "1.125", ("2.500", "1.125", "1.375")),
        ("EUR", "10", "10", ("10.00", "10.00", "0.00")),
    ],
)
async def test_held_and_available_balances_are_shown_in_the_currencys_digits(
    client: Client, currency: str, balance: str, amount: str, expected: tuple[str, ...]
) -> None:
    wallet_id = await new_wallet(client, balance, currency)
    hold = await place(client, wallet_id, amount)
    assert hold["currency"] == currency
    assert hold["amount"] == expected[1]
    assert await balances(client, wallet_id) == expected


async def test_null_optional_fields_are_absent(client: Client) -> None:
    wallet_id = await new_wallet(client, "10")
    body = {
        "amount": "1",
        "toWalletId": None,
        "expiresIn": None,
        "reference": None,
        "metadata": None,
    }
    hold = await ok_json(await post_hold(client, wallet_id, body), 201)
    assert (hold["toWalletId"], hold["reference"], hold["metadata"]) == (None, None, {})
    elapsed = moment(hold["expiresAt"]) - moment(hold["createdAt"])
    assert elapsed == timedelta(seconds=DEFAULT_EXPIRES_IN)


async def test_an_unknown_hold_is_not_found_and_a_malformed_id_is_invalid(client: Client) -> None:
    unknown = str(uuid4())
    body = await problem(await client.get(f"/api/v1/holds/{unknown}"), 404, "HOLD_NOT_FOUND")
    assert unknown in body["detail"]
    for action in ("capture", "void"):
        await problem(await act(client, unknown, action), 404, "HOLD_NOT_FOUND")
        body = await problem(await act(client, "not-a-uuid", action), 400, "VALIDATION_ERROR")
        assert fields_of(body) == ["holdId"]
    body = await problem(await client.get("/api/v1/holds/not-a-uuid"), 400, "VALIDATION_ERROR")
    assert fields_of(body) == ["holdId"]


async def test_holds_are_listed_newest_first_and_paged(client: Client) -> None:
    wallet_id = await new_wallet(client, "100")
    other = await new_wallet(client, "100")
    ids = [(await place(client, wallet_id, "1"))["id"] for _ in range(5)]
    await place(client, other, "1")

    first = await holds_of(client, wallet_id, "?limit=3")
    assert [h["id"] for h in first["items"]] == ids[::-1][:3]
    assert first["nextCursor"]
    rest = await ok_json(
        await client.get(
            f"{WALLETS}/{wallet_id}/holds", params={"limit": "3", "cursor": first["nextCursor"]}
        )
    )
    assert [h["id"] for h in rest["items"]] == ids[::-1][3:]
    assert rest["nextCursor"] is None
    assert await holds_of(client, await new_wallet(client)) == {"items": [], "nextCursor": None}


async def test_listing_the_holds_of_an_unknown_wallet_is_not_found(client: Client) -> None:
    await problem(await client.get(f"{WALLETS}/{uuid4()}/holds"), 404, "WALLET_NOT_FOUND")


async def test_the_status_filter_lists_the_holds_that_have_it_now(
    client: Client, clock: Clock
) -> None:
    wallet_id = await new_wallet(client, "100")
    held = (await place(client, wallet_id, "1"))["id"]
    captured = (await place(client, wallet_id, "1"))["id"]
    voided = (await place(client, wallet_id, "1"))["id"]
    expired = (await place(client, wallet_id, "1", expiresIn=60))["id"]
    await ok_json(await act(client, captured, "capture"))
    await ok_json(await act(client, voided, "void"))
    clock.advance(60)

    for status, expected in [
        ("HELD", [held]),
        ("CAPTURED", [captured]),
        ("VOIDED", [voided]),
        ("EXPIRED", [expired]),
    ]:
        page = await holds_of(client, wallet_id, f"?status={status}")
        assert [h["id"] for h in page["items"]] == expected, status
        assert all(h["status"] == status for h in page["items"])
    everything = await holds_of(client, wallet_id)
    assert [h["id"] for h in everything["items"]] == [expired, voided, captured, held]


async def test_a_cursor_of_one_status_filter_is_refused_by_another(client: Client) -> None:
    wallet_id = await new_wallet(client, "100")
    for _ in range(3):
        await place(client, wallet_id, "1")
    page = await holds_of(client, wallet_id, "?status=HELD&limit=1")
    cursor = page["nextCursor"]
    assert cursor
    for params in ({"cursor": cursor}, {"cursor": cursor, "status": "VOIDED"}):
        response = await client.get(f"{WALLETS}/{wallet_id}/holds", params={"limit": "1", **params})
        assert fields_of(await problem(response, 400, "VALIDATION_ERROR")) == ["cursor"]
    other = await new_wallet(client)
    response = await client.get(
        f"{WALLETS}/{other}/holds", params={"status": "HELD", "cursor": cursor}
    )
    assert fields_of(await problem(response, 400, "VALIDATION_ERROR")) == ["cursor"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=held", "status"),
        ("?status=OPEN", "status"),
        ("?status=HELD&status=HELD", "status"),
    ],
)
async def test_a_wrong_or_repeated_status_filter_is_refused(
    client: Client, query: str, field: str
) -> None:
    wallet_id = await new_wallet(client)
    response = await client.get(f"{WALLETS}/{wallet_id}/holds{query}")
    assert fields_of(await problem(response, 400, "VALIDATION_ERROR")) == [field]


# --- HTTP: what a hold asks of the wallet ---------------------------------------------


async def test_a_hold_needs_the_available_balance_not_the_balance(client: Client) -> None:
    wallet_id = await new_wallet(client, "100")
    await place(client, wallet_id, "60")
    await place(client, wallet_id, "40")  # exactly what is left
    before = await wallet(client, wallet_id)

    body = await problem(
        await post_hold(client, wallet_id, {"amount": "0.01"}), 400, "INSUFFICIENT_FUNDS"
    )

    assert "100.00 held" in body["detail"]
    assert await wallet(client, wallet_id) == before
    assert len((await holds_of(client, wallet_id))["items"]) == 2


async def test_withdrawals_and_transfers_out_may_not_take_what_holds_reserve(
    client: Client,
) -> None:
    wallet_id = await new_wallet(client, "100")
    payee = await new_wallet(client)
    await place(client, wallet_id, "30")

    body = await problem(await withdraw(client, wallet_id, "70.01"), 400, "INSUFFICIENT_FUNDS")
    assert "70.00" in body["detail"]
    assert "30.00 held" in body["detail"]
    transfer = {"fromWalletId": wallet_id, "toWalletId": payee, "amount": "70.01"}
    response = await client.post(TRANSFERS, data=json.dumps(transfer), headers=JSON_TYPE)
    await problem(response, 400, "INSUFFICIENT_FUNDS")
    assert await balances(client, wallet_id) == ("100.00", "30.00", "70.00")

    await ok_json(await withdraw(client, wallet_id, "40"))
    response = await client.post(
        TRANSFERS, data=json.dumps({**transfer, "amount": "30"}), headers=JSON_TYPE
    )
    await ok_json(response, 201)
    assert await balances(client, wallet_id) == ("30.00", "30.00", "0.00")
    await problem(await withdraw(client, wallet_id, "0.01"), 400, "INSUFFICIENT_FUNDS")


async def test_deposits_and_incoming_transfers_do_not_look_at_holds(client: Client) -> None:
    wallet_id = await new_wallet(client, "10")
    payer = await new_wallet(client, "5")
    await place(client, wallet_id, "10")  # all of it held

    deposit = json.dumps({"operationType": "DEPOSIT", "amount": "1"})
    await ok_json(
        await client.post(f"{WALLETS}/{wallet_id}/operation", data=deposit, headers=JSON_TYPE)
    )
    transfer = {"fromWalletId": payer, "toWalletId": wallet_id, "amount": "2"}
    await ok_json(await client.post(TRANSFERS, data=json.dumps(transfer), headers=JSON_TYPE), 201)

    assert await balances(client, wallet_id) == ("13.00", "10.00", "3.00")


# --- HTTP: the order of a hold's refusals ---------------------------------------------


async def test_a_hold_on_an_unknown_wallet_is_not_found_before_its_payee(client: Client) -> None:
    unknown, payee = str(uuid4()), str(uuid4())
    body = await problem(
        await post_hold(client, unknown, {"amount": "1.001", "toWalletId": payee}),
        404,
        "WALLET_NOT_FOUND",
    )
    assert unknown in body["detail"]


async def test_an_unknown_payee_is_not_found_before_the_currency_digits_and_funds(
    client: Client,
) -> None:
    wallet_id = await new_wallet(client)  # empty: funds would fail too
    payee = str(uuid4())
    body = await problem(
        await post_hold(client, wallet_id, {"amount": "1.001", "toWalletId": payee}),
        404,
        "WALLET_NOT_FOUND",
    )
    assert payee in body["detail"]


async def test_a_payee_of_another_currency_is_refused_before_the_digits_and_funds(
    client: Client,
) -> None:
    wallet_id = await new_wallet(client)
    euro = await new_wallet(client, currency="EUR")
    response = await post_hold(client, wallet_id, {"amount": "1.001", "toWalletId": euro})
    body = await problem(response, 400, "CURRENCY_MISMATCH")
    assert "USD" in body["detail"]
    assert "EUR" in body["detail"]


async def test_digits_that_do_not_fit_are_refused_before_the_funds(client: Client) -> None:
    yen = await new_wallet(client, currency="JPY")  # empty: funds would fail too
    body = await problem(await post_hold(client, yen, {"amount": "1.5"}), 400, "VALIDATION_ERROR")
    assert fields_of(body) == ["amount"]
    await problem(await post_hold(client, yen, {"amount": "1"}), 400, "INSUFFICIENT_FUNDS")


async def test_a_hold_may_not_name_its_own_wallet_as_payee(client: Client) -> None:
    wallet_id = await new_wallet(client, "10")
    for spelled in (wallet_id, wallet_id.upper()):
        response = await post_hold(client, wallet_id, {"amount": "1", "toWalletId": spelled})
        assert fields_of(await problem(response, 400, "VALIDATION_ERROR")) == ["toWalletId"]
    assert (await holds_of(client, wallet_id))["items"] == []


# --- HTTP: capture --------------------------------------------------------------------


async def test_capturing_the_whole_hold_withdraws_it_and_releases_it(client: Client) -> None:
    wallet_id = await new_wallet(client, "100")
    hold = await place(client, wallet_id, "20", reference="r-1", metadata={"k": "v"})

    captured = await ok_json(await act(client, hold["id"], "capture"))

    assert set(captured) == {"hold", "operations"}
    after = captured["hold"]
    assert (after["status"], after["capturedAmount"], after["amount"]) == (
        "CAPTURED",
        "20.00",
        "20.00",
    )
    assert after["updatedAt"] >= hold["updatedAt"]
    assert {
        k: v for k, v in after.items() if k not in ("status", "capturedAmount", "updatedAt")
    } == {k: v for k, v in hold.items() if k not in ("status", "capturedAmount", "updatedAt")}
    (entry,) = captured["operations"]
    assert (entry["operationType"], entry["amount"], entry["balanceAfter"]) == (
        "WITHDRAW",
        "20.00",
        "80.00",
    )
    assert (entry["holdId"], entry["transferId"], entry["walletId"]) == (
        hold["id"],
        None,
        wallet_id,
    )
    assert (entry["reference"], entry["metadata"]) == ("r-1", {"k": "v"})
    assert await balances(client, wallet_id) == ("80.00", "0.00", "80.00")
    assert (await operations_of(client, wallet_id))[0] == entry
    assert await hold_of(client, hold["id"]) == after


async def test_a_partial_capture_takes_part_and_releases_the_rest(client: Client) -> None:
    wallet_id = await new_wallet(client, "100")
    hold = await place(client, wallet_id, "20")

    captured = await ok_json(await act(client, hold["id"], "capture", {"amount": "12.5"}))

    assert (captured["hold"]["capturedAmount"], captured["hold"]["amount"]) == ("12.50", "20.00")
    assert captured["operations"][0]["amount"] == "12.50"
    assert await balances(client, wallet_id) == ("87.50", "0.00", "87.50")


async def test_a_capture_with_a_payee_is_a_transfer_naming_the_hold(client: Client) -> None:
    wallet_id = await new_wallet(client, "100")
    payee = await new_wallet(client, "1")
    hold = await place(client, wallet_id, "20", toWalletId=payee, reference="pay")

    captured = await ok_json(await act(client, hold["id"], "capture", {"amount": "15"}))

    out, into = captured["operations"]
    assert (out["operationType"], out["walletId"], out["balanceAfter"]) == (
        "TRANSFER_OUT",
        wallet_id,
        "85.00",
    )
    assert (into["operationType"], into["walletId"], into["balanceAfter"]) == (
        "TRANSFER_IN",
        payee,
        "16.00",
    )
    assert out["transferId"] == into["transferId"] is not None
    assert out["holdId"] == into["holdId"] == hold["id"]
    assert out["reference"] == into["reference"] == "pay"
    transfer = await ok_json(await client.get(f"{TRANSFERS}/{out['transferId']}"))
    assert (transfer["holdId"], transfer["amount"]) == (hold["id"], "15.00")
    assert (transfer["fromWalletId"], transfer["toWalletId"]) == (wallet_id, payee)
    assert [o["id"] for o in transfer["operations"]] == [out["id"], into["id"]]
    assert await balances(client, wallet_id) == ("85.00", "0.00", "85.00")
    assert await balances(client, payee) == ("16.00", "0.00", "16.00")


async def test_a_hold_is_captured_once(client: Client) -> None:
    wallet_id = await new_wallet(client, "100")
    hold = await place(client, wallet_id, "20")
    await ok_json(await act(client, hold["id"], "capture", {"amount": "1"}))

    for action in ("capture", "void"):
        body = await problem(await act(client, hold["id"], action), 409, "HOLD_NOT_ACTIVE")
        assert "CAPTURED" in body["detail"]
    assert await balances(client, wallet_id) == ("99.00", "0.00", "99.00")


async def test_the_capture_refusals_come_in_the_contracts_order(
    client: Client, repository: InMemoryDatabase
) -> None:
    wallet_id = await new_wallet(client, "100")
    full = await full_wallet(client, repository)
    paying_full = (await place(client, wallet_id, "20", toWalletId=full))["id"]
    spent = (await place(client, wallet_id, "20"))["id"]
    await ok_json(await act(client, spent, "void"))
    too_much = {"amount": "1000"}

    await problem(await act(client, str(uuid4()), "capture", too_much), 404, "HOLD_NOT_FOUND")
    body = await problem(await act(client, spent, "capture", too_much), 409, "HOLD_NOT_ACTIVE")
    assert "VOIDED" in body["detail"]
    for amount in ("20.01", "1.001"):  # before the payee's maximum
        response = await act(client, paying_full, "capture", {"amount": amount})
        assert fields_of(await problem(response, 400, "VALIDATION_ERROR")) == ["amount"]
    before = (await wallet(client, wallet_id), await wallet(client, full))
    await problem(await act(client, paying_full, "capture"), 400, "BALANCE_LIMIT_EXCEEDED")

    assert (await hold_of(client, paying_full))["status"] == "HELD"
    assert (await wallet(client, wallet_id), await wallet(client, full)) == before
    assert await balances(client, wallet_id) == ("100.00", "20.00", "80.00")
    await ok_json(await act(client, paying_full, "void"))


@pytest.mark.parametrize("body", [None, {}, {"amount": None}])
async def test_an_empty_capture_takes_the_whole_hold(client: Client, body: object) -> None:
    wallet_id = await new_wallet(client, "10")
    hold = await place(client, wallet_id, "4")
    captured = await ok_json(await act(client, hold["id"], "capture", body))
    assert captured["hold"]["capturedAmount"] == "4.00"


@pytest.mark.parametrize(
    ("body", "field"), [({"amount": 0}, "amount"), ({"other": 1}, "other"), ([], "body")]
)
async def test_a_malformed_capture_is_refused_and_leaves_the_hold_held(
    client: Client, body: object, field: str
) -> None:
    wallet_id = await new_wallet(client, "10")
    hold = await place(client, wallet_id, "4")
    response = await act(client, hold["id"], "capture", body)
    assert fields_of(await problem(response, 400, "VALIDATION_ERROR")) == [field]
    assert await hold_of(client, hold["id"]) == hold


# --- HTTP: void -----------------------------------------------------------------------


async def test_a_void_releases_the_whole_hold_once(client: Client) -> None:
    wallet_id = await new_wallet(client, "100")
    hold = await place(client, wallet_id, "20")

    voided = await ok_json(await act(client, hold["id"], "void", {}))

    assert (voided["status"], voided["capturedAmount"]) == ("VOIDED", None)
    assert moment(voided["updatedAt"]) > moment(hold["updatedAt"])
    assert await hold_of(client, hold["id"]) == voided
    assert await balances(client, wallet_id) == ("100.00", "0.00", "100.00")
    for action in ("void", "capture"):
        body = await problem(await act(client, hold["id"], action), 409, "HOLD_NOT_ACTIVE")
        assert "VOIDED" in body["detail"]


@pytest.mark.parametrize("body", [{"amount": "1"}, [], {"reason": None}])
async def test_a_void_with_something_in_its_body_is_refused(client: Client, body: object) -> None:
    wallet_id = await new_wallet(client, "10")
    hold = await place(client, wallet_id, "4")
    response = await act(client, hold["id"], "void", body)
    assert fields_of(await problem(response, 400, "VALIDATION_ERROR")) == ["body"]
    assert (await hold_of(client, hold["id"]))["status"] == "HELD"


# --- HTTP: expiry ---------------------------------------------------------------------


async def test_a_hold_reads_expired_from_its_expiry_on_and_reserves_nothing(
    client: Client, clock: Clock
) -> None:
    wallet_id = await new_wallet(client, "100")
    hold = await place(client, wallet_id, "30", expiresIn=60)
    await wallet(client, wallet_id)  # cached with the hold
    expires_at = moment(hold["expiresAt"])

    clock.fixed = expires_at - timedelta(microseconds=1)
    assert (await hold_of(client, hold["id"]))["status"] == "HELD"
    assert await balances(client, wallet_id) == ("100.00", "30.00", "70.00")

    clock.fixed = expires_at
    expired = await hold_of(client, hold["id"])
    assert (expired["status"], expired["updatedAt"]) == ("EXPIRED", hold["expiresAt"])
    assert expired == {**hold, "status": "EXPIRED", "updatedAt": hold["expiresAt"]}
    assert await balances(client, wallet_id) == ("100.00", "0.00", "100.00")
    for action in ("capture", "void"):
        body = await problem(await act(client, hold["id"], action), 409, "HOLD_NOT_ACTIVE")
        assert "EXPIRED" in body["detail"]
    await ok_json(await withdraw(client, wallet_id, "100"))


async def test_an_expired_hold_leaves_the_others_reserving(client: Client, clock: Clock) -> None:
    wallet_id = await new_wallet(client, "100")
    await place(client, wallet_id, "10", expiresIn=60)
    await place(client, wallet_id, "20", expiresIn=120)
    await place(client, wallet_id, "30", expiresIn=180)
    assert await balances(client, wallet_id) == ("100.00", "60.00", "40.00")

    clock.advance(90)
    assert await balances(client, wallet_id) == ("100.00", "50.00", "50.00")
    clock.advance(60)
    assert await balances(client, wallet_id) == ("100.00", "30.00", "70.00")
    await problem(await withdraw(client, wallet_id, "70.01"), 400, "INSUFFICIENT_FUNDS")
    await place(client, wallet_id, "70", expiresIn=600)
    clock.advance(60)
    assert await balances(client, wallet_id) == ("100.00", "70.00", "30.00")


async def test_the_expiry_job_marks_what_reads_expired_already(
    client: Client, clock: Clock
) -> None:
    wallet_id = await new_wallet(client, "100")
    hold = await place(client, wallet_id, "30", expiresIn=60)
    kept = await place(client, wallet_id, "5", expiresIn=600)
    version = (await client.app[SERVICES].get_wallet(UUID(wallet_id))).version
    clock.advance(60)

    run = await client.app[SERVICES].expire_holds()

    assert (run.expired, run.still_open) == (1, 1)
    assert (await client.app[SERVICES].get_wallet(UUID(wallet_id))).version > version
    clock.offset = timedelta()  # back before the expiry: the mark stays
    marked = await hold_of(client, hold["id"])
    assert (marked["status"], marked["updatedAt"]) == ("EXPIRED", hold["expiresAt"])
    assert (await hold_of(client, kept["id"]))["status"] == "HELD"
    assert await balances(client, wallet_id) == ("100.00", "5.00", "95.00")
    again = await client.app[SERVICES].expire_holds()
    assert (again.expired, again.still_open) == (0, 1)


# --- HTTP: Idempotency-Key ------------------------------------------------------------


async def test_a_hold_placed_under_a_key_is_placed_once_and_replayed_as_placed(
    client: Client,
) -> None:
    wallet_id = await new_wallet(client, "100")
    first = await post_hold(client, wallet_id, {"amount": 20}, key="h-1")
    hold = await ok_json(first, 201)
    assert "Idempotent-Replayed" not in first.headers

    again = await post_hold(client, wallet_id, {"amount": "20.00"}, key="h-1")  # same meaning

    assert await ok_json(again, 201) == hold
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert len((await holds_of(client, wallet_id))["items"]) == 1
    assert await balances(client, wallet_id) == ("100.00", "20.00", "80.00")

    await ok_json(await act(client, hold["id"], "capture", {"amount": "5"}))
    later = await post_hold(client, wallet_id, {"amount": "20"}, key="h-1")
    assert await ok_json(later, 201) == hold  # as placed, not as it is now
    assert await balances(client, wallet_id) == ("95.00", "0.00", "95.00")


@pytest.mark.parametrize(
    "other",
    [{"amount": "21"}, {"amount": "20", "expiresIn": 60}, {"amount": "20", "reference": "x"}],
)
async def test_a_key_used_for_one_hold_is_refused_for_another(client: Client, other: Json) -> None:
    wallet_id = await new_wallet(client, "100")
    await ok_json(await post_hold(client, wallet_id, {"amount": "20"}, key="h-2"), 201)
    await problem(
        await post_hold(client, wallet_id, other, key="h-2"), 422, "IDEMPOTENCY_KEY_REUSED"
    )
    assert len((await holds_of(client, wallet_id))["items"]) == 1


async def test_a_hold_refused_under_a_key_is_refused_again_even_once_funds_arrive(
    client: Client,
) -> None:
    wallet_id = await new_wallet(client, "10")
    await place(client, wallet_id, "4")
    first = await problem(
        await post_hold(client, wallet_id, {"amount": "7"}, key="h-3"), 400, "INSUFFICIENT_FUNDS"
    )
    deposit = json.dumps({"operationType": "DEPOSIT", "amount": "100"})
    await ok_json(
        await client.post(f"{WALLETS}/{wallet_id}/operation", data=deposit, headers=JSON_TYPE)
    )

    response = await post_hold(client, wallet_id, {"amount": "7"}, key="h-3")

    again = await problem(response, 400, "INSUFFICIENT_FUNDS")
    assert again["detail"] == first["detail"]
    assert "4.00 held" in again["detail"]
    assert response.headers["Idempotent-Replayed"] == "true"
    assert len((await holds_of(client, wallet_id))["items"]) == 1


async def test_a_capture_under_a_key_takes_the_money_once(client: Client) -> None:
    wallet_id = await new_wallet(client, "100")
    payee = await new_wallet(client)
    hold = await place(client, wallet_id, "20", toWalletId=payee)

    first = await ok_json(await act(client, hold["id"], "capture", {"amount": "5"}, key="c-1"))
    response = await act(client, hold["id"], "capture", {"amount": "5.00"}, key="c-1")

    assert await ok_json(response) == first
    assert response.headers["Idempotent-Replayed"] == "true"
    assert await balances(client, wallet_id) == ("95.00", "0.00", "95.00")
    assert await balances(client, payee) == ("5.00", "0.00", "5.00")
    for body in (None, {"amount": "6"}):
        response = await act(client, hold["id"], "capture", body, key="c-1")
        await problem(response, 422, "IDEMPOTENCY_KEY_REUSED")


async def test_a_capture_refused_for_the_payees_maximum_under_a_key_is_refused_again(
    client: Client, repository: InMemoryDatabase
) -> None:
    wallet_id = await new_wallet(client, "100")
    full = await full_wallet(client, repository)
    hold = await place(client, wallet_id, "20", toWalletId=full)
    await problem(
        await act(client, hold["id"], "capture", key="c-2"), 400, "BALANCE_LIMIT_EXCEEDED"
    )
    response = await act(client, hold["id"], "capture", key="c-2")
    await problem(response, 400, "BALANCE_LIMIT_EXCEEDED")
    assert response.headers["Idempotent-Replayed"] == "true"
    assert (await hold_of(client, hold["id"]))["status"] == "HELD"


async def test_a_void_under_a_key_is_replayed_with_the_voided_hold(client: Client) -> None:
    wallet_id = await new_wallet(client, "100")
    hold = await place(client, wallet_id, "20")

    first = await ok_json(await act(client, hold["id"], "void", key="v-1"))
    response = await act(client, hold["id"], "void", {}, key="v-1")

    assert await ok_json(response) == first
    assert first["status"] == "VOIDED"
    assert response.headers["Idempotent-Replayed"] == "true"
    other = (await place(client, wallet_id, "1"))["id"]
    await problem(await act(client, other, "void", key="v-1"), 422, "IDEMPOTENCY_KEY_REUSED")
    assert (await hold_of(client, other))["status"] == "HELD"


# --- HTTP: the cache ------------------------------------------------------------------


async def test_a_cached_wallet_is_not_served_once_one_of_its_holds_has_expired(
    client: Client, clock: Clock, cache: InMemoryBalanceCache
) -> None:
    wallet_id = await new_wallet(client, "100")
    await place(client, wallet_id, "30", expiresIn=60)
    assert await balances(client, wallet_id) == ("100.00", "30.00", "70.00")
    cached = cache.entries[UUID(wallet_id)]
    assert cached.held_minor == 3000  # what the cache holds: the hold as it was

    clock.advance(60)

    assert await balances(client, wallet_id) == ("100.00", "0.00", "100.00")
