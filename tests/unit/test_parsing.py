"""Request parsing: the JSON limits, operation bodies and paging parameters."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

import pytest
from aiohttp.test_utils import make_mocked_request

from wallet.domain.currency import CURRENCIES, USD
from wallet.domain.errors import ValidationFailed
from wallet.domain.holds import (
    DEFAULT_EXPIRES_IN,
    MAX_EXPIRES_IN,
    CaptureCommand,
    HoldCommand,
    HoldStatus,
)
from wallet.domain.model import OperationRequest, OperationType
from wallet.domain.money import Money, parse_amount
from wallet.entrypoints.http.parsing import (
    DEFAULT_PAGE_SIZE,
    MAX_JSON_DEPTH,
    NO_BODY,
    decode_json,
    parse_capture,
    parse_empty,
    parse_hold,
    parse_hold_id,
    parse_hold_status,
    parse_new_wallet,
    parse_operation,
    parse_page,
)


def nested_arrays(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def nested_objects(depth: int) -> bytes:
    return ('{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)).encode()


def refusal(action: Callable[[], object]) -> ValidationFailed:
    """The ValidationFailed that ``action()`` raises."""
    with pytest.raises(ValidationFailed) as caught:
        action()
    return caught.value


def fields_of(error: ValidationFailed) -> list[str]:
    return [e.field for e in error.errors]


def page_of(query: str) -> tuple[int, str | None]:
    return parse_page(make_mocked_request("GET", "/api/v1/wallets" + query))


# --- decode_json ----------------------------------------------------------------------


def test_depth_check_counts_what_the_helpers_build() -> None:
    assert json.loads(nested_arrays(3)) == [[[]]]
    assert json.loads(nested_objects(3)) == {"a": {"a": {}}}


@pytest.mark.parametrize("build", [nested_arrays, nested_objects])
def test_nesting_of_32_levels_is_accepted(build: Callable[[int], bytes]) -> None:
    assert MAX_JSON_DEPTH == 32
    assert decode_json(build(32)) is not None


@pytest.mark.parametrize("build", [nested_arrays, nested_objects])
@pytest.mark.parametrize("depth", [33, 34, 1000, 100_000])
def test_nesting_deeper_than_32_levels_is_refused(
    build: Callable[[int], bytes], depth: int
) -> None:
    with pytest.raises(ValueError, match="nested deeper than 32"):
        decode_json(build(depth))


def test_mixed_arrays_and_objects_count_together() -> None:
    ok = '{"a":[' * 16 + "1" + "]}" * 16  # 32 levels
    too_deep = "[" + ok + "]"
    assert decode_json(ok.encode()) is not None
    with pytest.raises(ValueError, match="nested deeper"):
        decode_json(too_deep.encode())


@pytest.mark.parametrize(
    "inside_string",
    ["[" * 40, "{" * 40, '\\"' + "[" * 40, "\\\\" + "[" * 40, "]" * 40 + "[" * 80],
)
def test_brackets_inside_strings_do_not_count(inside_string: str) -> None:
    text = "[" * 31 + f'"{inside_string}"' + "]" * 31
    decoded = decode_json(text.encode())
    for _ in range(31):
        assert isinstance(decoded, list)
        decoded = decoded[0]
    assert decoded == json.loads(f'"{inside_string}"')


def test_a_string_does_not_hide_brackets_after_it() -> None:
    text = '["\\\\"' + "," + "[" * 32 + "]" * 32 + "]"  # the string ends after the backslash
    with pytest.raises(ValueError, match="nested deeper"):
        decode_json(text.encode())


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": 1, "a": 1}',
        b'{"a": {"b": 1, "b": 2}}',
        b'[{"x": 1}, {"y": 1, "y": 1}]',
        b'{"operationType": "DEPOSIT", "amount": 5, "amount": 5}',
    ],
)
def test_duplicate_keys_are_refused_at_any_level(raw: bytes) -> None:
    with pytest.raises(ValueError, match="more than once"):
        decode_json(raw)


def test_keys_that_differ_only_in_case_are_distinct() -> None:
    assert decode_json(b'{"a": 1, "A": 2}') == {"a": Decimal(1), "A": Decimal(2)}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": "\xff"}',
        b'{"a": "\xc3"}',  # truncated two-byte sequence
        b'{"a": "\xed\xa0\x80"}',  # an encoded surrogate
        b'{"a": "\xc0\xaf"}',  # overlong encoding of "/"
        '{"a": "é"}'.encode("latin-1"),
        '{"a": 1}'.encode("utf-16"),
    ],
)
def test_invalid_utf8_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        decode_json(raw)


def test_valid_utf8_text_is_accepted() -> None:
    assert decode_json('{"name": "zürich ✓"}'.encode()) == {"name": "zürich ✓"}


@pytest.mark.parametrize(
    "literal",
    ["1" * 101, "1." + "0" * 99, "-" + "1" * 100, "1e" + "0" * 99, "0." + "0" * 98 + "1"],
)
def test_number_literals_longer_than_100_characters_are_refused(literal: str) -> None:
    assert len(literal) == 101
    with pytest.raises(ValueError, match="longer than 100"):
        decode_json(f'{{"amount": {literal}}}'.encode())


@pytest.mark.parametrize("literal", ["1" * 100, "1." + "0" * 98, "-" + "1" * 99])
def test_number_literals_of_100_characters_are_accepted(literal: str) -> None:
    assert len(literal) == 100
    assert decode_json(literal.encode()) == Decimal(literal)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_constants_are_refused(constant: str) -> None:
    with pytest.raises(ValueError, match=constant.lstrip("-")):
        decode_json(f'{{"amount": {constant}}}'.encode())


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"{'a': 1}", b"[1,]", b"{} {}", b'{"a" 1}', b"\xef\xbb\xbf{}", b"nan"],
)
def test_malformed_json_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        decode_json(raw)


# --- parse_operation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"operationType": "DEPOSIT", "amount": Decimal("50")},
            OperationRequest(OperationType.DEPOSIT, Money(5000)),
        ),
        (
            {"amount": "0.10", "operationType": "WITHDRAW"},
            OperationRequest(OperationType.WITHDRAW, Money(10)),
        ),
    ],
)
def test_a_valid_operation_is_parsed(body: dict[str, object], expected: OperationRequest) -> None:
    assert parse_operation(body).in_currency(USD) == expected


def test_an_operation_is_parsed_before_its_wallets_currency_is_known() -> None:
    command = parse_operation({"operationType": "DEPOSIT", "amount": "1.5"})
    assert command.in_currency(CURRENCIES["BHD"]).amount == Money(1500, CURRENCIES["BHD"])
    assert fields_of(refusal(lambda: command.in_currency(CURRENCIES["JPY"]))) == ["amount"]


def test_an_operations_meaning_is_its_value_whatever_its_spelling() -> None:
    spellings = ["1.5", "1.50", "1.500", Decimal("1.5"), Decimal("15E-1")]
    bodies = [{"operationType": "DEPOSIT", "amount": amount} for amount in spellings]
    assert {parse_operation(body).meaning for body in bodies} == {"DEPOSIT 1500"}


def test_every_field_error_is_reported_at_once() -> None:
    body = {"operationType": "TRANSFER", "amount": "0.0001", "ammount": "5"}
    error = refusal(lambda: parse_operation(body))
    assert sorted(fields_of(error)) == ["ammount", "amount", "operationType"]
    assert all(e.message for e in error.errors)
    for field in ("ammount", "amount", "operationType"):
        assert field in error.detail


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({}, ["operationType", "amount"]),
        ({"amount": "5"}, ["operationType"]),
        ({"operationType": "DEPOSIT"}, ["amount"]),
    ],
)
def test_missing_fields_are_named(body: dict[str, object], missing: list[str]) -> None:
    error = refusal(lambda: parse_operation(body))
    assert sorted(fields_of(error)) == sorted(missing)
    assert all("required" in e.message for e in error.errors)


@pytest.mark.parametrize(
    "operation_type",
    ["deposit", "Deposit", "WITHDRAWAL", "DEPOSIT ", "", None, True, Decimal(1)],
)
def test_operation_type_must_be_exactly_deposit_or_withdraw(operation_type: object) -> None:
    error = refusal(lambda: parse_operation({"operationType": operation_type, "amount": "5"}))
    assert fields_of(error) == ["operationType"]


@pytest.mark.parametrize("operation_type", [[], {}, ["DEPOSIT"]], ids=repr)
def test_an_unhashable_operation_type_is_a_field_error(operation_type: object) -> None:
    error = refusal(lambda: parse_operation({"operationType": operation_type, "amount": "5"}))
    assert fields_of(error) == ["operationType"]


@pytest.mark.parametrize(
    "body", [NO_BODY, None, [], [{"operationType": "DEPOSIT"}], "DEPOSIT", Decimal(5), True]
)
def test_an_operation_body_must_be_an_object(body: object) -> None:
    error = refusal(lambda: parse_operation(body))
    assert fields_of(error) == ["body"]


# --- parse_new_wallet -----------------------------------------------------------------


@pytest.mark.parametrize("body", [NO_BODY, {}, {"currency": None}])
def test_a_new_wallet_without_a_currency_gets_the_default(body: object) -> None:
    assert parse_new_wallet(body, CURRENCIES["EUR"]) == (CURRENCIES["EUR"], {})


def test_a_new_wallet_gets_the_currency_it_names() -> None:
    assert parse_new_wallet({"currency": "JPY"}, USD) == (CURRENCIES["JPY"], {})


def test_creating_a_wallet_refuses_unknown_fields_by_name() -> None:
    error = refusal(lambda: parse_new_wallet({"x": Decimal(1), "balance": "5"}, USD))
    assert fields_of(error) == ["balance", "x"]


@pytest.mark.parametrize("body", [None, [], "", Decimal(0), False])
def test_creating_a_wallet_refuses_anything_but_an_object(body: object) -> None:
    assert fields_of(refusal(lambda: parse_new_wallet(body, USD))) == ["body"]


# --- parse_page -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", (DEFAULT_PAGE_SIZE, None)),
        ("?limit=1", (1, None)),
        ("?limit=1000", (1000, None)),
        ("?limit=7&cursor=abc", (7, "abc")),
        ("?cursor=abc", (DEFAULT_PAGE_SIZE, "abc")),
        ("?other=1", (DEFAULT_PAGE_SIZE, None)),
    ],
)
def test_valid_paging_parameters(query: str, expected: tuple[int, str | None]) -> None:
    assert DEFAULT_PAGE_SIZE == 100
    assert page_of(query) == expected


@pytest.mark.parametrize(
    "limit",
    ["0", "1001", "10000", "abc", "-1", "1.5", "%205", "5%20", "", "1e2", "%EF%BC%91", "0x10"],
)
def test_limit_must_be_an_integer_from_1_to_1000(limit: str) -> None:
    error = refusal(lambda: page_of(f"?limit={limit}"))
    assert fields_of(error) == ["limit"]
    assert "1 to 1000" in error.errors[0].message


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("?limit=5&limit=6", ["limit"]),
        ("?limit=5&limit=5", ["limit"]),
        ("?cursor=a&cursor=b", ["cursor"]),
        ("?cursor=", ["cursor"]),
        ("?limit=0&cursor=", ["limit", "cursor"]),
        ("?limit=5&limit=6&cursor=a&cursor=a", ["limit", "cursor"]),
    ],
)
def test_repeated_parameters_and_empty_cursors_are_refused(query: str, fields: list[str]) -> None:
    assert fields_of(refusal(lambda: page_of(query))) == fields


# --- parse_hold -----------------------------------------------------------------------

WALLET_ID = UUID("3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f")
PAYEE_ID = UUID("00000000-0000-4000-8000-000000000002")


def hold_of(raw: str) -> HoldCommand:
    """The hold a raw JSON body asks for, decoded as the app decodes it."""
    return parse_hold(decode_json(raw.encode()), WALLET_ID)


def with_field(name: str, literal: str) -> str:
    """A hold body of 1.00 with ``name`` written as the JSON ``literal``."""
    return '{"amount": "1", "' + name + '": ' + literal + "}"


def hold_refusal(raw: str) -> list[str]:
    return fields_of(refusal(lambda: hold_of(raw)))


def test_a_hold_body_is_parsed_with_everything_it_says() -> None:
    said = {
        "amount": "20.00",
        "toWalletId": str(PAYEE_ID),
        "expiresIn": 3600,
        "reference": "order-1",
        "metadata": {"k": "v"},
    }
    assert hold_of(json.dumps(said)) == HoldCommand(
        WALLET_ID, parse_amount("20.00"), PAYEE_ID, 3600, "order-1", {"k": "v"}
    )


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ('{"amount": "1"}', DEFAULT_EXPIRES_IN),
        ('{"amount": "1", "expiresIn": null}', DEFAULT_EXPIRES_IN),
        ('{"amount": "1", "expiresIn": 1}', 1),
        ('{"amount": "1", "expiresIn": 2592000}', MAX_EXPIRES_IN),
        ('{"amount": "1", "expiresIn": 604800}', 604800),
    ],
)
def test_expires_in_is_a_whole_number_of_seconds_defaulting_to_a_week(
    raw: str, seconds: int
) -> None:
    assert (DEFAULT_EXPIRES_IN, MAX_EXPIRES_IN) == (604800, 2592000)
    parsed = hold_of(raw)
    assert parsed.expires_in == seconds
    assert type(parsed.expires_in) is int


@pytest.mark.parametrize(
    "literal",
    [
        "0",
        "-1",
        "2592001",
        "99999999999",
        '"60"',
        '""',
        "60.0",
        "6e1",
        "1.5",
        "60.000",
        "true",
        "false",
        "[]",
        "{}",
        "600e-1",
    ],
)
def test_expires_in_out_of_range_or_not_a_json_integer_is_refused(literal: str) -> None:
    error = refusal(lambda: hold_of(with_field("expiresIn", literal)))
    assert fields_of(error) == ["expiresIn"]
    assert "1 to 2592000" in error.errors[0].message


@pytest.mark.parametrize("literal", ["1e0", "60E0", "1.0e1", "6.0E1"])
def test_expires_in_written_with_an_exponent_is_refused_like_6e1(literal: str) -> None:
    error = refusal(lambda: hold_of(with_field("expiresIn", literal)))
    assert fields_of(error) == ["expiresIn"]


@pytest.mark.parametrize(
    ("raw", "payee"),
    [
        ('{"amount": "1", "toWalletId": null}', None),
        (with_field("toWalletId", f'"{PAYEE_ID}"'), PAYEE_ID),
        (with_field("toWalletId", f'"{str(PAYEE_ID).upper()}"'), PAYEE_ID),
    ],
)
def test_the_payee_is_optional(raw: str, payee: UUID | None) -> None:
    assert hold_of(raw).to_wallet_id == payee


@pytest.mark.parametrize(
    "payee", [f'"{WALLET_ID}"', f'"{str(WALLET_ID).upper()}"', '"nope"', "1", "true", '""']
)
def test_the_payee_must_be_another_wallets_id(payee: str) -> None:
    assert hold_refusal(with_field("toWalletId", payee)) == ["toWalletId"]


def test_null_reference_and_metadata_are_absent() -> None:
    parsed = hold_of('{"amount": "1", "reference": null, "metadata": null}')
    assert (parsed.reference, parsed.metadata) == (None, {})


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ("{}", ["amount"]),
        ('{"amount": null}', ["amount"]),
        ('{"amount": "0"}', ["amount"]),
        ('{"amount": "1", "expires": 60}', ["expires"]),
        ('{"amount": "1", "status": "HELD"}', ["status"]),
        (with_field("walletId", f'"{WALLET_ID}"'), ["walletId"]),
        (
            '{"amounts": "1", "toWalletId": "x", "expiresIn": 0, "reference": 5}',
            ["amounts", "amount", "toWalletId", "expiresIn", "reference"],
        ),
    ],
)
def test_a_hold_body_reports_every_unknown_missing_and_wrong_field(
    raw: str, fields: list[str]
) -> None:
    assert sorted(hold_refusal(raw)) == sorted(fields)


@pytest.mark.parametrize("body", [NO_BODY, None, [], "1", Decimal(1)])
def test_a_hold_body_must_be_an_object(body: object) -> None:
    assert fields_of(refusal(lambda: parse_hold(body, WALLET_ID))) == ["body"]


# --- parse_capture and parse_empty ----------------------------------------------------

HOLD_ID = UUID(int=7)


@pytest.mark.parametrize("body", [NO_BODY, {}, {"amount": None}])
def test_a_capture_without_an_amount_takes_the_whole_hold(body: object) -> None:
    assert parse_capture(body, HOLD_ID) == CaptureCommand(HOLD_ID)


@pytest.mark.parametrize("amount", ["1.00", Decimal("1.00"), "1", Decimal(1)])
def test_a_capture_of_an_amount_takes_that_amount(amount: object) -> None:
    command = parse_capture({"amount": amount}, HOLD_ID)
    assert command.amount is not None
    assert command.amount.of(USD) == Money(100)
    assert command.meaning == CaptureCommand(HOLD_ID, parse_amount("1")).meaning


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"amount": Decimal(0)}, ["amount"]),
        ({"amount": "0"}, ["amount"]),
        ({"amount": "-1"}, ["amount"]),
        ({"amount": "0.0001"}, ["amount"]),
        ({"amount": True}, ["amount"]),
        ({"other": Decimal(1)}, ["other"]),
        ({"amount": "1", "toWalletId": None}, ["toWalletId"]),
        ({"other": Decimal(1), "amount": "x"}, ["other", "amount"]),
    ],
)
def test_a_capture_body_with_a_wrong_amount_or_other_fields_is_refused(
    body: object, fields: list[str]
) -> None:
    assert sorted(fields_of(refusal(lambda: parse_capture(body, HOLD_ID)))) == sorted(fields)


@pytest.mark.parametrize("body", [None, [], "1", Decimal(1), [{}]])
def test_a_capture_body_must_be_empty_or_an_object(body: object) -> None:
    assert fields_of(refusal(lambda: parse_capture(body, HOLD_ID))) == ["body"]


@pytest.mark.parametrize("body", [NO_BODY, {}])
def test_a_void_body_is_empty_or_an_empty_object(body: object) -> None:
    assert parse_empty(body) is None


@pytest.mark.parametrize(
    "body", [None, [], [{}], "", Decimal(0), False, {"amount": "1"}, {"reason": None}]
)
def test_a_void_body_that_says_anything_is_refused(body: object) -> None:
    assert fields_of(refusal(lambda: parse_empty(body))) == ["body"]


# --- parse_hold_status and parse_hold_id ----------------------------------------------


def status_of(query: str) -> HoldStatus | None:
    return parse_hold_status(
        make_mocked_request("GET", f"/api/v1/wallets/{WALLET_ID}/holds{query}")
    )


@pytest.mark.parametrize("status", list(HoldStatus))
def test_each_status_filters(status: HoldStatus) -> None:
    assert status_of(f"?status={status.value}") is status


def test_no_status_filters_nothing() -> None:
    assert status_of("") is None
    assert status_of("?limit=5") is None


@pytest.mark.parametrize(
    "query",
    [
        "?status=held",
        "?status=Held",
        "?status=OPEN",
        "?status=",
        "?status=HELD%20",
        "?status=HELD,VOIDED",
        "?status=HELD&status=HELD",
        "?status=HELD&status=VOIDED",
    ],
)
def test_a_wrong_or_repeated_status_is_refused(query: str) -> None:
    assert fields_of(refusal(lambda: status_of(query))) == ["status"]


def test_a_repeated_status_is_refused_as_repeated() -> None:
    error = refusal(lambda: status_of("?status=HELD&status=HELD"))
    assert "at most once" in error.errors[0].message


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        (str(WALLET_ID), True),
        (str(WALLET_ID).upper(), True),
        ("", False),
        ("nope", False),
        (str(WALLET_ID)[:-1], False),
        (str(WALLET_ID).replace("-", ""), False),
    ],
)
def test_a_hold_id_in_the_path_must_be_a_uuid(raw: str, ok: bool) -> None:
    request = make_mocked_request("GET", f"/api/v1/holds/{raw}", match_info={"hold_id": raw})
    if ok:
        assert parse_hold_id(request) == WALLET_ID
    else:
        assert fields_of(refusal(lambda: parse_hold_id(request))) == ["holdId"]
