"""Request parsing: the JSON limits, operation bodies and paging parameters."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

import pytest
from aiohttp.test_utils import make_mocked_request

from wallet.domain.currency import CURRENCIES, USD
from wallet.domain.errors import ValidationFailed
from wallet.domain.model import OperationRequest, OperationType
from wallet.domain.money import Money
from wallet.entrypoints.http.parsing import (
    DEFAULT_PAGE_SIZE,
    MAX_JSON_DEPTH,
    NO_BODY,
    decode_json,
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
