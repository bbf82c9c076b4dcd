"""The money table: every amount the contract accepts or rejects, and how money prints."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wallet.domain.currency import USD
from wallet.domain.errors import ValidationFailed
from wallet.domain.model import OperationRequest, OperationType
from wallet.domain.money import MAX_AMOUNT_MINOR, MAX_BALANCE_MINOR, InvalidAmount, Money
from wallet.domain.services import WalletService
from wallet.entrypoints.http.parsing import JsonInteger, decode_json, parse_operation

LITERAL_100 = "1." + "0" * 98  # exactly 100 characters, worth 1.00
LITERAL_101 = "1." + "0" * 99  # the same value written with 101 characters
DIGITS_100 = "0" * 99 + "5"  # a 100-character decimal string worth 5.00
DIGITS_101 = "0" * 100 + "5"  # the same value as a 101-character string

assert len(LITERAL_100) == 100
assert len(LITERAL_101) == 101
assert len(DIGITS_100) == 100
assert len(DIGITS_101) == 101


def operation_body(amount_literal: str) -> bytes:
    """A DEPOSIT request body with ``amount_literal`` pasted in as raw JSON text."""
    return f'{{"operationType": "DEPOSIT", "amount": {amount_literal}}}'.encode()


def parsed_amount(amount_literal: str) -> str:
    """The amount the HTTP layer reads from a body holding ``amount_literal``, as text, for
    a USD wallet."""
    command = parse_operation(decode_json(operation_body(amount_literal)))
    return str(command.in_currency(USD).amount)


def refused_fields(amount_literal: str) -> list[str]:
    """The fields a body holding ``amount_literal`` is refused on ("body" for bad JSON),
    for a USD wallet."""
    raw = operation_body(amount_literal)
    try:
        operation = parse_operation(decode_json(raw)).in_currency(USD)
    except ValidationFailed as error:
        return [e.field for e in error.errors]
    except ValueError:  # decode_json refuses the document itself
        return ["body"]
    pytest.fail(f"{amount_literal} was accepted as {operation.amount}")


# --- Money.parse_amount: JSON numbers arrive as Decimal, JSON strings as str ----------

ACCEPTED = [
    (Decimal("50"), "50.00"),
    (Decimal("50.0"), "50.00"),
    (Decimal("0.1"), "0.10"),
    (Decimal("1e2"), "100.00"),
    (Decimal("1E2"), "100.00"),
    (Decimal("0.100"), "0.10"),
    (Decimal("100e-2"), "1.00"),
    (Decimal("0.01"), "0.01"),
    (Decimal("1000000000000.00"), "1000000000000.00"),
    (Decimal("1000000000000.000000"), "1000000000000.00"),
    ("50", "50.00"),
    ("50.00", "50.00"),
    ("50.5", "50.50"),
    ("0.10", "0.10"),
    ("0.01", "0.01"),
    ("007", "7.00"),
    ("1000000000000.00", "1000000000000.00"),
    (DIGITS_100, "5.00"),
]


@pytest.mark.parametrize(("value", "expected"), ACCEPTED, ids=repr)
def test_parse_amount_accepts_the_contract_forms(value: object, expected: str) -> None:
    assert str(Money.parse_amount(value)) == expected


REJECTED = [
    Decimal("0"),
    Decimal("0.00"),
    Decimal("-1"),
    Decimal("-0"),
    Decimal("-0.01"),
    Decimal("0.001"),
    Decimal("1.005"),
    Decimal("1000000000000.01"),
    Decimal("1e13"),
    Decimal("1e-400"),
    Decimal("1e400"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    True,
    False,
    None,
    [],
    {},
    [Decimal("1")],
    {"amount": Decimal("1")},
    "",
    "abc",
    "+5",
    "-5",
    "5.",
    ".5",
    "1e2",
    " 5",
    "5 ",
    "5\n",
    "1,000",
    "1 000",
    "1_000",
    "\uff11\uff12",  # full-width digits one, two
    "\u0665",  # Arabic-Indic digit five
    "5.001",
    "0",
    "0.00",
    "1000000000000.01",
    "NaN",
    "Infinity",
    DIGITS_101,
]


@pytest.mark.parametrize("value", REJECTED, ids=repr)
def test_parse_amount_rejects_everything_else(value: object) -> None:
    with pytest.raises(InvalidAmount):
        Money.parse_amount(value)


@pytest.mark.parametrize("value", [0.1, 50.0, 1.0, float("nan"), float("inf")], ids=repr)
def test_parse_amount_never_takes_a_binary_float(value: float) -> None:
    with pytest.raises(InvalidAmount, match="float"):
        Money.parse_amount(value)


def test_parsed_money_is_held_in_integer_minor_units() -> None:
    money = Money.parse_amount(Decimal("0.1"))
    assert type(money.minor) is int
    assert money.minor == 10


def test_the_rejection_message_says_why() -> None:
    with pytest.raises(InvalidAmount, match="2 decimal places"):
        Money.parse_amount(Decimal("0.001"))
    with pytest.raises(InvalidAmount, match="greater than 0"):
        Money.parse_amount(Decimal("0"))
    with pytest.raises(InvalidAmount, match=r"at most 1000000000000\.00"):
        Money.parse_amount(Decimal("1000000000000.01"))


# --- End to end through the HTTP layer's JSON decoder and operation parser ------------

ACCEPTED_LITERALS = [
    ("50", "50.00"),
    ("50.0", "50.00"),
    ("0.1", "0.10"),
    ("1e2", "100.00"),
    ("0.100", "0.10"),
    ("1E2", "100.00"),
    ("100e-2", "1.00"),
    ("1000000000000.00", "1000000000000.00"),
    ('"50"', "50.00"),
    ('"50.00"', "50.00"),
    ('"0.10"', "0.10"),
    (LITERAL_100, "1.00"),
]


@pytest.mark.parametrize(("literal", "expected"), ACCEPTED_LITERALS)
def test_request_amount_is_read_exactly(literal: str, expected: str) -> None:
    assert parsed_amount(literal) == expected


REJECTED_LITERALS = [
    ("0", "amount"),
    ("0.00", "amount"),
    ("-1", "amount"),
    ("-0", "amount"),
    ("0.001", "amount"),
    ("1.005", "amount"),
    ("1000000000000.01", "amount"),
    ("1e13", "amount"),
    ("1e-400", "amount"),
    ("1e400", "amount"),
    ("NaN", "body"),
    ("Infinity", "body"),
    ("-Infinity", "body"),
    ("true", "amount"),
    ("false", "amount"),
    ("null", "amount"),
    ("[]", "amount"),
    ("{}", "amount"),
    ("[1]", "amount"),
    ('""', "amount"),
    ('"abc"', "amount"),
    ('"+5"', "amount"),
    ('"-5"', "amount"),
    ('"5."', "amount"),
    ('".5"', "amount"),
    ('"1e2"', "amount"),
    ('" 5"', "amount"),
    ('"5 "', "amount"),
    ('"5\\n"', "amount"),
    ('"1,000"', "amount"),
    ('"\uff11\uff12"', "amount"),  # full-width digits, raw in the JSON text
    ('"\\uff11\\uff12"', "amount"),  # the same digits as JSON escapes
    ('"\u0665"', "amount"),  # Arabic-Indic five
    ('"5.001"', "amount"),
    ('"0"', "amount"),
    ('"0.00"', "amount"),
    (LITERAL_101, "body"),
    (f'"{DIGITS_101}"', "amount"),
    ("05", "body"),  # not JSON: a leading zero
    ("+5", "body"),  # not JSON: a plus sign
    (".5", "body"),  # not JSON: no integer part
]


@pytest.mark.parametrize(("literal", "field"), REJECTED_LITERALS)
def test_request_amount_is_refused(literal: str, field: str) -> None:
    assert refused_fields(literal) == [field]


@pytest.mark.parametrize("literal", ["1e999999999999999999999", "1e-999999999999999999999"])
def test_request_amount_with_an_exponent_beyond_decimal_range_is_refused(literal: str) -> None:
    assert refused_fields(literal) in (["amount"], ["body"])


def test_the_json_decoder_yields_no_floats() -> None:
    decoded = decode_json(b"[1, 1.5, 1e2, -0.0, 0.1]")
    assert decoded == [Decimal("1"), Decimal("1.5"), Decimal("100"), Decimal("0"), Decimal("0.1")]
    assert isinstance(decoded, list)
    assert all(isinstance(number, Decimal) for number in decoded)
    assert [isinstance(number, JsonInteger) for number in decoded] == [True] + [False] * 4


# --- Formatting -----------------------------------------------------------------------

FORMATTED = [
    (0, "0.00"),
    (1, "0.01"),
    (10, "0.10"),
    (99, "0.99"),
    (100, "1.00"),
    (15000, "150.00"),
    (123456, "1234.56"),
    (MAX_AMOUNT_MINOR, "1000000000000.00"),
    (MAX_BALANCE_MINOR, "9000000000000000.00"),
]


@pytest.mark.parametrize(("minor", "text"), FORMATTED)
def test_money_prints_with_exactly_two_decimals(minor: int, text: str) -> None:
    assert str(Money(minor)) == text


@pytest.mark.parametrize("minor", [-1, MAX_BALANCE_MINOR + 1])
def test_money_outside_the_balance_range_cannot_exist(minor: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        Money(minor)


def test_parse_then_print_is_the_canonical_form() -> None:
    for value, expected in ACCEPTED:
        assert str(Money.parse_amount(expected)) == expected, value


async def test_a_tenth_deposited_three_times_is_exactly_thirty_cents(
    service: WalletService,
) -> None:
    wallet = (await service.create_wallet()).value
    tenth = parse_operation(decode_json(operation_body("0.1")))
    assert tenth.in_currency(USD) == OperationRequest(OperationType.DEPOSIT, Money(10))
    for _ in range(3):
        applied = await service.apply_operation(wallet.id, tenth)
    assert str(applied.value.balance_after) == "0.30"
    assert str((await service.get_wallet(wallet.id)).balance) == "0.30"
