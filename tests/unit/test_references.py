"""References and metadata: their limits, their round trip through the API, the history
filtered by reference, and their part in what a request means under an Idempotency-Key."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.unit.test_api import (
    JSON_TYPE,
    WALLETS,
    Client,
    Json,
    assert_operation_shape,
    assert_wallet_shape,
    error_fields,
    ok_json,
    operation_url,
    operations_url,
    problem,
    wallet_url,
)
from wallet.domain.currency import USD
from wallet.domain.errors import ValidationFailed
from wallet.domain.model import OperationCommand, OperationType
from wallet.domain.money import parse_amount
from wallet.domain.references import (
    MAX_METADATA_ENTRIES,
    MAX_METADATA_VALUE_LENGTH,
    MAX_REFERENCE_LENGTH,
)
from wallet.entrypoints.http.parsing import parse_new_wallet, parse_operation

EMOJI = "\U0001f4b8"  # one code point, four bytes in UTF-8
DEPOSIT = {"operationType": "DEPOSIT", "amount": "1.00"}


def refused_fields(body: object) -> list[str]:
    with pytest.raises(ValidationFailed) as refusal:
        parse_operation(body)
    return [error.field for error in refusal.value.errors]


def entries(count: int) -> dict[str, str]:
    return {f"k{i}": "v" for i in range(count)}


# --- parsing: reference ---------------------------------------------------------------


def test_a_reference_of_128_emoji_is_taken_as_given() -> None:
    reference = EMOJI * MAX_REFERENCE_LENGTH
    assert parse_operation({**DEPOSIT, "reference": reference}).reference == reference


@pytest.mark.parametrize(
    "reference",
    [
        EMOJI * (MAX_REFERENCE_LENGTH + 1),
        "",
        "tab\there",
        "nul\x00",
        "del\x7f",
        "c1\x85",
        "\ud800",
        Decimal(5),
        ["a"],
        True,
    ],
)
def test_a_reference_out_of_bounds_or_with_a_control_character_is_refused(
    reference: object,
) -> None:
    assert refused_fields({**DEPOSIT, "reference": reference}) == ["reference"]


def test_a_null_reference_and_null_metadata_are_absent() -> None:
    command = parse_operation({**DEPOSIT, "reference": None, "metadata": None})
    assert command == parse_operation(DEPOSIT)
    assert command.reference is None
    assert command.metadata == {}


# --- parsing: metadata ----------------------------------------------------------------


def test_metadata_of_20_entries_is_taken_as_given() -> None:
    metadata = entries(MAX_METADATA_ENTRIES)
    metadata["a.b_c-D9"] = "x" * MAX_METADATA_VALUE_LENGTH
    del metadata["k0"]
    assert parse_operation({**DEPOSIT, "metadata": metadata}).metadata == metadata


def test_metadata_of_21_entries_is_refused() -> None:
    body = {**DEPOSIT, "metadata": entries(MAX_METADATA_ENTRIES + 1)}
    assert refused_fields(body) == ["metadata"]


@pytest.mark.parametrize("key", ["", "a b", "é", "a/b", "k" * 41, "line\n"])
def test_a_metadata_key_outside_its_alphabet_or_length_is_refused(key: str) -> None:
    assert refused_fields({**DEPOSIT, "metadata": {key: "v"}}) == ["metadata"]


@pytest.mark.parametrize(
    "value", ["x" * (MAX_METADATA_VALUE_LENGTH + 1), Decimal(1), None, True, {}, ["v"], "a\x00"]
)
def test_a_metadata_value_not_a_short_string_is_refused_by_its_key(value: object) -> None:
    assert refused_fields({**DEPOSIT, "metadata": {"ok": "v", "bad": value}}) == ["metadata.bad"]


@pytest.mark.parametrize("metadata", [[], "a=b", Decimal(1), True])
def test_metadata_not_an_object_is_refused(metadata: object) -> None:
    assert refused_fields({**DEPOSIT, "metadata": metadata}) == ["metadata"]


def test_every_field_error_comes_back_together() -> None:
    body = {"operationType": "X", "amount": "1", "reference": "", "metadata": {"k": 1}}
    assert refused_fields(body) == ["operationType", "reference", "metadata.k"]


def test_a_new_wallet_takes_metadata_and_refuses_bad_metadata() -> None:
    assert parse_new_wallet({"metadata": {"owner": "u1"}}, USD) == (USD, {"owner": "u1"})
    assert parse_new_wallet({"metadata": None}, USD) == (USD, {})
    with pytest.raises(ValidationFailed) as refusal:
        parse_new_wallet({"metadata": {"owner": 1}}, USD)
    assert [error.field for error in refusal.value.errors] == ["metadata.owner"]


# --- what a request means -------------------------------------------------------------


def command(reference: str | None = None, **metadata: str) -> OperationCommand:
    return OperationCommand(OperationType.DEPOSIT, parse_amount("5"), reference, metadata)


def test_a_command_without_reference_or_metadata_means_what_it_always_did() -> None:
    assert command().meaning == f"DEPOSIT {parse_amount('5.00').meaning}"


def test_the_order_of_metadata_does_not_change_what_a_command_means() -> None:
    assert command(a="1", b="2").meaning == command(b="2", a="1").meaning


def test_reference_and_metadata_change_what_a_command_means() -> None:
    meanings = {command().meaning, command("r").meaning, command(r="").meaning}
    assert len(meanings) == 3


# --- through the API ------------------------------------------------------------------


async def new_wallet(client: Client, body: Any = None, key: str | None = None) -> Json:
    headers = {"Idempotency-Key": key} if key else {}
    return await ok_json(await client.post(WALLETS, json=body, headers=headers), 201)


async def operate(client: Client, wallet_id: str, key: str | None = None, **fields: Any) -> Any:
    headers = {**JSON_TYPE, **({"Idempotency-Key": key} if key else {})}
    body = json.dumps({**DEPOSIT, **fields})
    return await client.post(operation_url(wallet_id), data=body, headers=headers)


async def test_an_operation_answers_and_lists_its_reference_and_metadata(client: Client) -> None:
    wallet_id = (await new_wallet(client))["id"]
    metadata = {"orderId": "1234", "note": "thé ☕"}
    applied = await ok_json(await operate(client, wallet_id, reference=EMOJI, metadata=metadata))
    operation = applied["operation"]
    assert_operation_shape(operation)
    assert operation["reference"] == EMOJI
    assert operation["metadata"] == metadata
    assert operation["transferId"] is None
    assert operation["holdId"] is None
    (listed,) = (await ok_json(await client.get(operations_url(wallet_id))))["items"]
    assert listed == operation


async def test_an_operation_without_them_shows_null_and_an_empty_object(client: Client) -> None:
    wallet_id = (await new_wallet(client))["id"]
    operation = (await ok_json(await operate(client, wallet_id)))["operation"]
    assert (operation["reference"], operation["metadata"]) == (None, {})


async def test_a_wallet_keeps_the_metadata_it_was_created_with(client: Client) -> None:
    created = await new_wallet(client, {"currency": "EUR", "metadata": {"owner": "u-42"}})
    assert_wallet_shape(created)
    assert created["metadata"] == {"owner": "u-42"}
    await ok_json(await operate(client, created["id"]))
    read = await ok_json(await client.get(wallet_url(created["id"])))
    assert read["metadata"] == {"owner": "u-42"}
    assert read["balance"] == "1.00"
    assert (await new_wallet(client))["metadata"] == {}


async def test_bad_metadata_is_refused_before_the_wallet_is_looked_up(client: Client) -> None:
    unknown = "3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f"
    refused = await problem(
        await operate(client, unknown, metadata={"k": "x" * 501}), 400, "VALIDATION_ERROR"
    )
    assert error_fields(refused) == ["metadata.k"]


async def test_the_history_filtered_by_reference_pages_through_its_entries(client: Client) -> None:
    wallet_id = (await new_wallet(client))["id"]
    for index in range(5):
        await ok_json(await operate(client, wallet_id, reference="a", metadata={"n": str(index)}))
        await ok_json(await operate(client, wallet_id, reference="b"))
    await ok_json(await operate(client, wallet_id))
    seen: list[str] = []
    cursor = None
    while True:
        query = {"reference": "a", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await ok_json(await client.get(operations_url(wallet_id), params=query))
        assert all(item["reference"] == "a" for item in page["items"])
        seen += [item["metadata"]["n"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ["4", "3", "2", "1", "0"]


async def test_a_cursor_of_one_filter_is_refused_by_another(client: Client) -> None:
    wallet_id = (await new_wallet(client))["id"]
    for _ in range(2):
        await ok_json(await operate(client, wallet_id, reference="a"))
    page = await ok_json(
        await client.get(operations_url(wallet_id), params={"reference": "a", "limit": "1"})
    )
    cursor = page["nextCursor"]
    for other in ({"reference": "b"}, {}):
        response = await client.get(operations_url(wallet_id), params={**other, "cursor": cursor})
        assert error_fields(await problem(response, 400, "VALIDATION_ERROR")) == ["cursor"]


async def test_an_unknown_reference_lists_nothing(client: Client) -> None:
    wallet_id = (await new_wallet(client))["id"]
    await ok_json(await operate(client, wallet_id, reference="a"))
    page = await ok_json(await client.get(operations_url(wallet_id), params={"reference": "A"}))
    assert page == {"items": [], "nextCursor": None}


@pytest.mark.parametrize(
    "query", ["reference=", "reference=a&reference=b", "reference=%07", f"reference={'r' * 129}"]
)
async def test_a_bad_reference_filter_is_refused(client: Client, query: str) -> None:
    wallet_id = (await new_wallet(client))["id"]
    response = await client.get(f"{operations_url(wallet_id)}?{query}")
    assert error_fields(await problem(response, 400, "VALIDATION_ERROR")) == ["reference"]


async def test_the_reference_filter_of_an_unknown_wallet_is_404(client: Client) -> None:
    unknown = "3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f"
    response = await client.get(operations_url(unknown), params={"reference": "a"})
    await problem(response, 404, "WALLET_NOT_FOUND")


# --- under an Idempotency-Key ---------------------------------------------------------


async def test_the_same_key_with_another_reference_is_reused(client: Client) -> None:
    wallet_id = (await new_wallet(client))["id"]
    await ok_json(await operate(client, wallet_id, "k1", reference="a"))
    for changed in ({"reference": "b"}, {}, {"reference": "a", "metadata": {"x": "1"}}):
        response = await operate(client, wallet_id, "k1", **changed)
        await problem(response, 422, "IDEMPOTENCY_KEY_REUSED")


async def test_the_same_request_again_is_replayed_whatever_its_metadata_order(
    client: Client,
) -> None:
    wallet_id = (await new_wallet(client))["id"]
    first = await operate(client, wallet_id, "k2", reference="a", metadata={"x": "1", "y": "2"})
    again = await operate(client, wallet_id, "k2", reference="a", metadata={"y": "2", "x": "1"})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert await ok_json(again) == await ok_json(first)
    page = await ok_json(await client.get(operations_url(wallet_id)))
    assert len(page["items"]) == 1


async def test_a_wallet_created_again_under_its_key_keeps_its_metadata(client: Client) -> None:
    first = await new_wallet(client, {"metadata": {"owner": "u1"}}, key="w1")
    again = await client.post(
        WALLETS, json={"metadata": {"owner": "u1"}}, headers={"Idempotency-Key": "w1"}
    )
    assert await ok_json(again, 201) == first
    other = await client.post(
        WALLETS, json={"metadata": {"owner": "u2"}}, headers={"Idempotency-Key": "w1"}
    )
    await problem(other, 422, "IDEMPOTENCY_KEY_REUSED")
