"""Currencies: the ISO 4217 table, money per currency, and wallets that hold one."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from aiohttp.test_utils import TestClient

from tests.unit.test_api import (
    WALLETS,
    create_wallet,
    error_fields,
    ok_json,
    operate,
    operation_json,
    operation_url,
    operations_url,
    problem,
    snapshot,
    wallet_url,
)
from wallet.config import Settings, SettingsError
from wallet.domain.currency import CURRENCIES, USD, InvalidCurrency, parse_currency
from wallet.domain.model import OperationCommand, OperationType
from wallet.domain.money import InvalidAmount, Money, parse_amount
from wallet.entrypoints.http.keys import SERVICES

Client = TestClient[Any, Any]
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(("code", "digits"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("BHD", 3)])
def test_an_active_code_names_its_currency_with_its_minor_digits(code: str, digits: int) -> None:
    currency = parse_currency(code)
    assert (currency.code, currency.digits) == (code, digits)


@pytest.mark.parametrize(
    "code",
    # lower case, funds, metals, special codes, another minor unit, withdrawn, not codes
    [
        *("usd", "Usd", "USN", "BOV", "CHE", "XAU", "XXX", "XTS", "XDR", "CLF", "UYW", "DEM"),
        *("US", "USDD", "", " USD", "ÜSD", 840, None),
    ],
)
def test_anything_but_an_accepted_active_code_is_refused(code: object) -> None:
    with pytest.raises(InvalidCurrency):
        parse_currency(code)


def test_the_table_is_isos_with_0_2_or_3_digits_and_no_funds() -> None:
    assert len(CURRENCIES) > 140
    assert {currency.digits for currency in CURRENCIES.values()} == {0, 2, 3}
    assert all(code.isalpha() and code.isupper() for code in CURRENCIES)


@pytest.mark.parametrize(
    ("code", "written", "shown"),
    [
        ("JPY", "1500", "1500"),
        ("JPY", Decimal("1500.0"), "1500"),
        ("USD", "15", "15.00"),
        ("USD", "15.5", "15.50"),
        ("USD", Decimal("15.500"), "15.50"),
        ("BHD", "1.5", "1.500"),
        ("BHD", "1.500", "1.500"),
        ("BHD", Decimal("1.5000"), "1.500"),
        ("BHD", 2, "2.000"),
    ],
)
def test_money_is_parsed_exactly_and_shown_with_its_currencys_decimals(
    code: str, written: object, shown: str
) -> None:
    money = parse_amount(written).of(CURRENCIES[code])
    assert str(money) == shown
    assert money.currency is CURRENCIES[code]


@pytest.mark.parametrize(
    ("code", "written"),
    [
        ("JPY", "15.0"),  # a string for a 0-digit currency is digits only
        ("JPY", Decimal("15.5")),
        ("USD", "1.001"),
        ("USD", Decimal("1.001")),
    ],
)
def test_digits_beyond_the_currencys_are_refused_once_it_is_known(
    code: str, written: object
) -> None:
    amount = parse_amount(written)  # fine for some currency
    with pytest.raises(InvalidAmount, match=code):
        amount.of(CURRENCIES[code])


@pytest.mark.parametrize("written", ["1.0001", "1.5000", Decimal("0.0001"), "0", "-1", "1e3"])
def test_what_no_currency_accepts_is_refused_before_any_currency_is_known(written: object) -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(written)


def test_the_bounds_are_in_major_units_whatever_the_currency() -> None:
    largest = parse_amount("1000000000000")
    assert largest.of(CURRENCIES["JPY"]).minor == 10**12
    assert largest.of(CURRENCIES["BHD"]).minor == 10**15
    with pytest.raises(InvalidAmount):
        parse_amount("1000000000000.001")
    assert CURRENCIES["JPY"].max_balance_minor == 9 * 10**15
    assert CURRENCIES["BHD"].max_balance_minor == 9 * 10**18 < 2**63
    with pytest.raises(ValueError, match="out of range"):
        Money(9 * 10**15 + 1, CURRENCIES["JPY"])


def test_usd_money_is_v1_money() -> None:
    assert Money(1550) == Money(1550, USD) == Money.parse_amount("15.50")
    assert str(Money(5)) == "0.05"


def test_the_default_currency_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).default_currency is USD
    settings = Settings.from_env({"WALLET_DEFAULT_CURRENCY": "EUR"})
    assert settings.default_currency is CURRENCIES["EUR"]
    with pytest.raises(SettingsError, match="WALLET_DEFAULT_CURRENCY"):
        Settings.from_env({"WALLET_DEFAULT_CURRENCY": "XAU"})


async def create_in(client: Client, currency: object) -> dict[str, Any]:
    return await ok_json(await client.post(WALLETS, json={"currency": currency}), 201)


async def test_a_wallet_is_created_in_the_currency_asked_for(client: Client) -> None:
    wallet = await create_in(client, "JPY")
    assert (wallet["currency"], wallet["balance"]) == ("JPY", "0")
    assert await ok_json(await client.get(wallet_url(wallet["id"]))) == wallet


async def test_a_wallet_created_without_a_currency_gets_the_default(client: Client) -> None:
    assert (await create_wallet(client))["currency"] == "USD"
    response = await client.post(WALLETS, json={"currency": None})  # null means absent
    assert (await ok_json(response, 201))["currency"] == "USD"


@pytest.mark.parametrize("body", [{"currency": "usd"}, {"currency": "XAU"}, {"currency": 840}])
async def test_a_bad_currency_is_refused_on_its_field_and_creates_nothing(
    client: Client, body: dict[str, object]
) -> None:
    before = await ok_json(await client.get(WALLETS))
    refusal = await problem(await client.post(WALLETS, json=body), 400, "VALIDATION_ERROR")
    assert error_fields(refusal) == ["currency"]
    assert await ok_json(await client.get(WALLETS)) == before


async def test_an_unknown_field_at_creation_is_refused(client: Client) -> None:
    refusal = await problem(
        await client.post(WALLETS, json={"currency": "EUR", "colour": "red"}),
        400,
        "VALIDATION_ERROR",
    )
    assert error_fields(refusal) == ["colour"]


@pytest.mark.parametrize(
    ("currency", "deposit", "balance"),
    [("JPY", "1500", "1500"), ("USD", "15", "15.00"), ("BHD", "1.5", "1.500")],
)
async def test_money_moves_and_shows_in_the_wallets_currency(
    client: Client, currency: str, deposit: str, balance: str
) -> None:
    wallet = await create_in(client, currency)
    applied = await ok_json(await operate(client, wallet["id"], "DEPOSIT", deposit))
    assert applied["balance"] == balance
    assert applied["operation"]["currency"] == currency
    assert applied["operation"]["amount"] == balance
    history = await ok_json(await client.get(operations_url(wallet["id"])))
    assert [(o["currency"], o["balanceAfter"]) for o in history["items"]] == [(currency, balance)]


async def test_an_amount_no_currency_takes_is_refused_even_for_an_unknown_wallet(
    client: Client,
) -> None:
    missing = "3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f"
    body = operation_json("DEPOSIT", "1.0001")
    response = await client.post(operation_url(missing), data=body, headers=JSON)
    assert error_fields(await problem(response, 400, "VALIDATION_ERROR")) == ["amount"]
    body = operation_json("DEPOSIT", "1.001")
    response = await client.post(operation_url(missing), data=body, headers=JSON)
    await problem(response, 404, "WALLET_NOT_FOUND")


async def test_the_amounts_digits_are_checked_against_the_wallet_before_the_balance_rules(
    client: Client,
) -> None:
    jpy = await create_in(client, "JPY")
    before = await snapshot(client, jpy["id"])
    response = await operate(client, jpy["id"], "WITHDRAW", "15.5")  # also more than it has
    refusal = await problem(response, 400, "VALIDATION_ERROR")
    assert error_fields(refusal) == ["amount"]
    assert "JPY" in refusal["detail"]
    assert await snapshot(client, jpy["id"]) == before
    usd = await create_wallet(client)
    response = await operate(client, usd["id"], "DEPOSIT", "1.001")
    assert error_fields(await problem(response, 400, "VALIDATION_ERROR")) == ["amount"]


async def test_a_wallets_maximum_is_in_its_currencys_major_units(client: Client) -> None:
    jpy = await create_in(client, "JPY")
    largest = OperationCommand(OperationType.DEPOSIT, parse_amount("1000000000000"))
    for _ in range(9000):  # through the app's own service
        await client.app[SERVICES].apply_operation(UUID(jpy["id"]), largest)
    wallet = await ok_json(await client.get(wallet_url(jpy["id"])))
    assert wallet["balance"] == "9000000000000000"
    await problem(await operate(client, jpy["id"], "DEPOSIT", "1"), 400, "BALANCE_LIMIT_EXCEEDED")
