"""The HTTP API through the real app on in-memory adapters: shapes, errors, limits, headers."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from wallet.adapters.memory import InMemoryBalanceCache, InMemoryDatabase
from wallet.domain.model import OperationCommand, OperationType
from wallet.domain.money import MAX_AMOUNT_MINOR, MAX_BALANCE_MINOR, Money, parse_amount
from wallet.entrypoints.http.keys import SERVICES

Client = TestClient[web.Request, web.Application]
Json = dict[str, Any]

WALLETS = "/api/v1/wallets"
WALLET_KEYS = {
    "id",
    "currency",
    "balance",
    "heldBalance",
    "availableBalance",
    "metadata",
    "createdAt",
    "updatedAt",
}
OPERATION_KEYS = {
    *("id", "walletId", "operationType", "currency", "amount", "balanceAfter", "createdAt"),
    *("reference", "metadata", "transferId", "holdId"),
}
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "requestId"}
MONEY = re.compile(r"[0-9]+\.[0-9]{2}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
LOWER_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
JSON_TYPE = {"Content-Type": "application/json"}
MAX_BODY = 65_536


# --- helpers --------------------------------------------------------------------------


def wallet_url(wallet_id: str) -> str:
    return f"{WALLETS}/{wallet_id}"


def operation_url(wallet_id: str) -> str:
    return f"{WALLETS}/{wallet_id}/operation"


def operations_url(wallet_id: str) -> str:
    return f"{WALLETS}/{wallet_id}/operations"


def operation_json(kind: str, amount: object) -> str:
    return json.dumps({"operationType": kind, "amount": amount})


async def create_wallet(client: Client) -> Json:
    response = await client.post(WALLETS)
    assert response.status == 201, await response.text()
    body: Json = await response.json()
    return body


async def operate(client: Client, wallet_id: str, kind: str, amount: object) -> ClientResponse:
    return await client.post(
        operation_url(wallet_id), data=operation_json(kind, amount), headers=JSON_TYPE
    )


async def wallet_with(client: Client, balance: str) -> str:
    """The id of a new wallet holding ``balance``."""
    wallet_id = str((await create_wallet(client))["id"])
    if balance != "0.00":
        response = await operate(client, wallet_id, "DEPOSIT", balance)
        assert response.status == 200, await response.text()
    return wallet_id


async def ok_json(response: ClientResponse, status: int = 200) -> Json:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body: Json = await response.json()
    return body


async def problem(response: ClientResponse, status: int, code: str) -> Json:
    """The problem+json body of an error response, after checking its common shape."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/problem+json"
    body: Json = json.loads(text)
    assert body.keys() >= PROBLEM_KEYS
    assert set(body) - PROBLEM_KEYS <= {"errors", "database", "cache"}
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == "/problems/" + code.lower().replace("_", "-")
    assert body["title"]
    assert body["detail"]
    assert body["requestId"] == response.headers["X-Request-ID"]
    if code == "VALIDATION_ERROR":
        assert body["errors"]
        assert all(set(e) == {"field", "message"} for e in body["errors"])
    else:
        assert "errors" not in body
    return body


def error_fields(body: Json) -> list[str]:
    return [e["field"] for e in body["errors"]]


async def snapshot(client: Client, wallet_id: str) -> tuple[Json, Json]:
    """What a refused request must not change: the wallet and its operations."""
    wallet = await ok_json(await client.get(wallet_url(wallet_id)))
    operations = await ok_json(await client.get(operations_url(wallet_id)))
    return wallet, operations


async def wallet_count(client: Client) -> int:
    return len((await ok_json(await client.get(WALLETS + "?limit=1000")))["items"])


def assert_wallet_shape(wallet: Json) -> None:
    assert set(wallet) == WALLET_KEYS
    assert LOWER_UUID.fullmatch(wallet["id"])
    assert MONEY.fullmatch(wallet["balance"])
    assert TIMESTAMP.fullmatch(wallet["createdAt"])
    assert TIMESTAMP.fullmatch(wallet["updatedAt"])


def assert_operation_shape(operation: Json) -> None:
    assert set(operation) == OPERATION_KEYS
    assert LOWER_UUID.fullmatch(operation["id"])
    assert LOWER_UUID.fullmatch(operation["walletId"])
    assert operation["operationType"] in ("DEPOSIT", "WITHDRAW")
    assert MONEY.fullmatch(operation["amount"])
    assert MONEY.fullmatch(operation["balanceAfter"])
    assert TIMESTAMP.fullmatch(operation["createdAt"])


# --- success shapes -------------------------------------------------------------------


async def test_create_wallet_answers_201_with_the_wallet_and_its_location(client: Client) -> None:
    response = await client.post(WALLETS)
    wallet = await ok_json(response, 201)
    assert_wallet_shape(wallet)
    assert wallet["balance"] == "0.00"
    assert wallet["createdAt"] == wallet["updatedAt"]
    assert response.headers["Location"] == f"/api/v1/wallets/{wallet['id']}"
    assert await ok_json(await client.get(response.headers["Location"])) == wallet


async def test_get_wallet_answers_the_stored_wallet(client: Client) -> None:
    wallet_id = await wallet_with(client, "150")
    wallet = await ok_json(await client.get(wallet_url(wallet_id)))
    assert_wallet_shape(wallet)
    assert wallet["id"] == wallet_id
    assert wallet["balance"] == "150.00"


async def test_list_wallets_answers_items_and_next_cursor(client: Client) -> None:
    ids = [await wallet_with(client, "0.00") for _ in range(3)]
    page = await ok_json(await client.get(WALLETS + "?limit=2"))
    assert set(page) == {"items", "nextCursor"}
    for wallet in page["items"]:
        assert_wallet_shape(wallet)
    assert [w["id"] for w in page["items"]] == ids[:2]
    assert isinstance(page["nextCursor"], str)
    assert page["nextCursor"]

    last = await ok_json(
        await client.get(WALLETS, params={"limit": "2", "cursor": page["nextCursor"]})
    )
    assert [w["id"] for w in last["items"]] == ids[2:]
    assert last["nextCursor"] is None


async def test_list_wallets_defaults_to_100_per_page(client: Client) -> None:
    for _ in range(101):
        await create_wallet(client)
    page = await ok_json(await client.get(WALLETS))
    assert len(page["items"]) == 100
    assert page["nextCursor"] is not None


@pytest.mark.parametrize(
    ("kind", "amount", "balance"),
    [("DEPOSIT", "50", "150.00"), ("DEPOSIT", 0.1, "100.10"), ("WITHDRAW", "99.99", "0.01")],
)
async def test_an_operation_answers_the_new_balance_and_the_ledger_entry(
    client: Client, kind: str, amount: object, balance: str
) -> None:
    wallet_id = await wallet_with(client, "100")
    result = await ok_json(await operate(client, wallet_id, kind, amount))
    assert set(result) == {"walletId", "balance", "operation"}
    assert result["walletId"] == wallet_id
    assert result["balance"] == balance
    assert_operation_shape(result["operation"])
    assert result["operation"]["walletId"] == wallet_id
    assert result["operation"]["operationType"] == kind
    assert result["operation"]["balanceAfter"] == balance
    assert (await ok_json(await client.get(wallet_url(wallet_id))))["balance"] == balance


async def test_list_operations_answers_newest_first(client: Client) -> None:
    wallet_id = await wallet_with(client, "0.00")
    for amount in ("1", "2", "3"):
        await ok_json(await operate(client, wallet_id, "DEPOSIT", amount))
    page = await ok_json(await client.get(operations_url(wallet_id) + "?limit=2"))
    assert set(page) == {"items", "nextCursor"}
    for operation in page["items"]:
        assert_operation_shape(operation)
    assert [o["amount"] for o in page["items"]] == ["3.00", "2.00"]
    assert [o["balanceAfter"] for o in page["items"]] == ["6.00", "3.00"]

    rest = await ok_json(
        await client.get(operations_url(wallet_id), params={"cursor": page["nextCursor"]})
    )
    assert [o["amount"] for o in rest["items"]] == ["1.00"]
    assert rest["nextCursor"] is None


async def test_a_tenth_deposited_three_times_reads_thirty_cents(client: Client) -> None:
    wallet_id = await wallet_with(client, "0.00")
    for _ in range(3):
        await ok_json(await operate(client, wallet_id, "DEPOSIT", 0.1))
    assert (await ok_json(await client.get(wallet_url(wallet_id))))["balance"] == "0.30"


# --- creating a wallet: the body ------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        (None, {}),
        (b"", {}),
        (b"", {"Content-Type": "text/plain"}),
        (b"{}", JSON_TYPE),
        (b" { } ", JSON_TYPE),
        (b"{}", {"Content-Type": "application/json; charset=utf-8"}),
    ],
)
async def test_create_wallet_takes_an_empty_body_or_an_empty_object(
    client: Client, data: bytes | None, headers: dict[str, str]
) -> None:
    response = await client.post(WALLETS, data=data, headers=headers)
    assert_wallet_shape(await ok_json(response, 201))


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        (b'{"x": 1}', ["x"]),
        (b'{"balance": "100.00"}', ["balance"]),
        (b"null", ["body"]),
        (b"[]", ["body"]),
        (b'"{}"', ["body"]),
        (b"{", ["body"]),
    ],
)
async def test_create_wallet_refuses_any_other_body(
    client: Client, data: bytes, fields: list[str]
) -> None:
    body = await problem(
        await client.post(WALLETS, data=data, headers=JSON_TYPE), 400, "VALIDATION_ERROR"
    )
    assert error_fields(body) == fields
    assert await wallet_count(client) == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_create_wallet_with_a_non_json_body_is_415(client: Client, content_type: str) -> None:
    response = await client.post(WALLETS, data=b"{}", headers={"Content-Type": content_type})
    await problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await wallet_count(client) == 0


# --- wallet ids -----------------------------------------------------------------------


async def test_an_upper_case_wallet_id_is_accepted_and_answered_in_lower_case(
    client: Client,
) -> None:
    wallet_id = await wallet_with(client, "5")
    upper = wallet_id.upper()
    assert upper != wallet_id

    wallet = await ok_json(await client.get(wallet_url(upper)))
    assert wallet["id"] == wallet_id
    result = await ok_json(await operate(client, upper, "DEPOSIT", "1"))
    assert result["walletId"] == result["operation"]["walletId"] == wallet_id
    page = await ok_json(await client.get(operations_url(upper)))
    assert {o["walletId"] for o in page["items"]} == {wallet_id}


SAMPLE_UUID = "3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f"
MALFORMED_IDS = [
    "123",
    "not-a-uuid",
    SAMPLE_UUID.replace("-", ""),
    pytest.param("{" + SAMPLE_UUID + "}", id="uuid-in-braces"),
    "urn:uuid:" + SAMPLE_UUID,
    SAMPLE_UUID + "0",
    SAMPLE_UUID[:-1],
    SAMPLE_UUID[:-1] + "g",
    SAMPLE_UUID[:-1] + "%C3%A9",
    "%20" + SAMPLE_UUID,
]


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
@pytest.mark.parametrize("route", ["get", "operation", "operations"])
async def test_a_malformed_wallet_id_is_a_validation_error(
    client: Client, bad_id: str, route: str
) -> None:
    if route == "get":
        response = await client.get(wallet_url(bad_id))
    elif route == "operation":
        response = await operate(client, bad_id, "DEPOSIT", "1")
    else:
        response = await client.get(operations_url(bad_id))
    body = await problem(response, 400, "VALIDATION_ERROR")
    assert error_fields(body) == ["walletId"]


@pytest.mark.parametrize("route", ["get", "operation", "operations"])
async def test_an_unknown_wallet_is_404(client: Client, route: str) -> None:
    await create_wallet(client)
    unknown = str(uuid4())
    if route == "get":
        response = await client.get(wallet_url(unknown))
    elif route == "operation":
        response = await operate(client, unknown, "DEPOSIT", "1")
    else:
        response = await client.get(operations_url(unknown))
    body = await problem(response, 404, "WALLET_NOT_FOUND")
    assert unknown in body["detail"]


# --- routing errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/api/v1",
        "/api/v2/wallets",
        f"{WALLETS}/{SAMPLE_UUID}/unknown",
        pytest.param("/static/nope.js", id="missing-static-file"),
    ],
)
async def test_an_unknown_route_is_a_404_problem(client: Client, path: str) -> None:
    await problem(await client.get(path), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", WALLETS, {"GET", "POST"}),
        ("PUT", WALLETS, {"GET", "POST"}),
        ("POST", wallet_url(SAMPLE_UUID), {"GET"}),
        ("DELETE", wallet_url(SAMPLE_UUID), {"GET"}),
        ("GET", operation_url(SAMPLE_UUID), {"POST"}),
        ("PATCH", operations_url(SAMPLE_UUID), {"GET"}),
        ("POST", "/health/live", {"GET"}),
    ],
)
async def test_a_wrong_method_is_405_with_allow(
    client: Client, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path)
    await problem(response, 405, "METHOD_NOT_ALLOWED")
    allow = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed <= allow
    assert method not in allow
    assert allow <= {"GET", "HEAD", "POST"}


# --- bodies: size and content type ----------------------------------------------------


def padded_operation(size: int) -> bytes:
    """A valid DEPOSIT of 1.00 padded with trailing spaces to exactly ``size`` bytes."""
    body = operation_json("DEPOSIT", "1").encode()
    return body + b" " * (size - len(body))


async def test_a_body_of_exactly_64_kib_is_accepted(client: Client) -> None:
    wallet_id = await wallet_with(client, "0.00")
    data = padded_operation(MAX_BODY)
    assert len(data) == MAX_BODY
    response = await client.post(operation_url(wallet_id), data=data, headers=JSON_TYPE)
    assert (await ok_json(response))["balance"] == "1.00"


@pytest.mark.parametrize("path", [WALLETS, "operation"])
async def test_a_body_over_64_kib_is_413_and_changes_nothing(client: Client, path: str) -> None:
    wallet_id = await wallet_with(client, "0.00")
    before = await snapshot(client, wallet_id)
    url = operation_url(wallet_id) if path == "operation" else WALLETS
    response = await client.post(url, data=padded_operation(MAX_BODY + 1), headers=JSON_TYPE)
    await problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert await snapshot(client, wallet_id) == before
    assert await wallet_count(client) == 1


async def test_a_chunked_body_over_64_kib_is_413(client: Client) -> None:
    wallet_id = await wallet_with(client, "0.00")
    before = await snapshot(client, wallet_id)

    async def chunks() -> AsyncIterator[bytes]:
        data = padded_operation(MAX_BODY + 1024)
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    response = await client.post(operation_url(wallet_id), data=chunks(), headers=JSON_TYPE)
    assert "Content-Length" not in response.request_info.headers
    await problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert await snapshot(client, wallet_id) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        {"Content-Type": "application/jsonx"},
        {"Content-Type": "application/problem+json"},
        {"Content-Type": "application/octet-stream"},
    ],
)
async def test_a_post_body_that_is_not_declared_json_is_415(
    client: Client, headers: dict[str, str]
) -> None:
    wallet_id = await wallet_with(client, "10")
    before = await snapshot(client, wallet_id)
    response = await client.post(
        operation_url(wallet_id), data=operation_json("WITHDRAW", "10"), headers=headers
    )
    await problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await snapshot(client, wallet_id) == before


async def test_a_post_body_without_a_content_type_is_415(client: Client) -> None:
    wallet_id = await wallet_with(client, "10")
    before = await snapshot(client, wallet_id)
    response = await client.post(
        operation_url(wallet_id),
        data=operation_json("WITHDRAW", "10").encode(),
        skip_auto_headers=["Content-Type"],
    )
    assert "Content-Type" not in response.request_info.headers
    await problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await snapshot(client, wallet_id) == before

    response = await client.post(WALLETS, data=b"{}", skip_auto_headers=["Content-Type"])
    await problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await wallet_count(client) == 1


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8"],
)
async def test_json_with_a_charset_parameter_is_accepted(client: Client, content_type: str) -> None:
    wallet_id = await wallet_with(client, "0.00")
    response = await client.post(
        operation_url(wallet_id),
        data=operation_json("DEPOSIT", "2"),
        headers={"Content-Type": content_type},
    )
    assert (await ok_json(response))["balance"] == "2.00"


async def test_an_empty_post_needs_no_content_type(client: Client) -> None:
    response = await client.post(WALLETS, skip_auto_headers=["Content-Type"])
    assert "Content-Type" not in response.request_info.headers
    assert_wallet_shape(await ok_json(response, 201))


async def test_an_empty_operation_post_is_a_validation_error_not_415(client: Client) -> None:
    wallet_id = await wallet_with(client, "0.00")
    response = await client.post(operation_url(wallet_id), skip_auto_headers=["Content-Type"])
    assert error_fields(await problem(response, 400, "VALIDATION_ERROR")) == ["body"]


# --- request validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ('{"operationType": "WITHDRAW", "amount": "0.001"}', ["amount"]),
        ('{"operationType": "WITHDRAW", "amount": 0}', ["amount"]),
        ('{"operationType": "WITHDRAW", "amount": -5}', ["amount"]),
        ('{"operationType": "WITHDRAW", "amount": "5", "extra": 1}', ["extra"]),
        ('{"operationType": "WITHDRAW", "ammount": "5"}', ["ammount", "amount"]),
        ('{"operationType": "withdraw", "amount": "5"}', ["operationType"]),
        ('{"operationType": "WITHDRAW"}', ["amount"]),
        ('{"operationType": "WITHDRAW", "amount": NaN}', ["body"]),
        ('{"operationType": "WITHDRAW", "amount": 5, "amount": 5}', ["body"]),
        ('{"operationType": "WITHDRAW", "amount": 5', ["body"]),
    ],
)
async def test_an_invalid_request_is_a_validation_error_whatever_the_balance(
    client: Client, data: str, fields: list[str]
) -> None:
    wallet_id = await wallet_with(client, "0.00")
    response = await client.post(operation_url(wallet_id), data=data, headers=JSON_TYPE)
    body = await problem(response, 400, "VALIDATION_ERROR")
    assert sorted(error_fields(body)) == sorted(fields)


async def test_all_field_errors_come_back_together(client: Client) -> None:
    wallet_id = await wallet_with(client, "0.00")
    data = '{"operationType": "TRANSFER", "amount": "1.0005", "note": "x"}'
    response = await client.post(operation_url(wallet_id), data=data, headers=JSON_TYPE)
    body = await problem(response, 400, "VALIDATION_ERROR")
    assert sorted(error_fields(body)) == ["amount", "note", "operationType"]


@pytest.mark.parametrize(
    "query",
    ["?limit=0", "?limit=1001", "?limit=abc", "?limit=-1", "?limit=1.5", "?cursor=", "?cursor=abc"],
)
async def test_bad_paging_parameters_are_validation_errors(client: Client, query: str) -> None:
    wallet_id = await wallet_with(client, "1")
    for path in (WALLETS, operations_url(wallet_id)):
        await problem(await client.get(path + query), 400, "VALIDATION_ERROR")


async def test_a_cursor_from_another_list_is_refused(client: Client) -> None:
    first = await wallet_with(client, "1")
    second = await wallet_with(client, "1")
    for wallet_id in (first, second):
        await ok_json(await operate(client, wallet_id, "DEPOSIT", "1"))
    cursor = (await ok_json(await client.get(operations_url(first) + "?limit=1")))["nextCursor"]
    assert cursor
    response = await client.get(operations_url(second), params={"cursor": cursor})
    assert error_fields(await problem(response, 400, "VALIDATION_ERROR")) == ["cursor"]
    response = await client.get(WALLETS, params={"cursor": cursor})
    assert error_fields(await problem(response, 400, "VALIDATION_ERROR")) == ["cursor"]


@pytest.mark.parametrize(
    "data",
    [
        '{"operationType": [], "amount": "5"}',
        '{"operationType": {}, "amount": "5"}',
        '{"operationType": "DEPOSIT", "amount": 1e999999999999999999999}',
        '{"operationType": "DEPOSIT", "amount": 1e-999999999999999999999}',
    ],
)
async def test_odd_but_well_formed_json_is_a_validation_error_not_a_500(
    client: Client, data: str
) -> None:
    wallet_id = await wallet_with(client, "0.00")
    response = await client.post(operation_url(wallet_id), data=data, headers=JSON_TYPE)
    await problem(response, 400, "VALIDATION_ERROR")


# --- business refusals change nothing -------------------------------------------------


async def test_insufficient_funds_is_refused_and_changes_nothing(client: Client) -> None:
    wallet_id = await wallet_with(client, "10")
    before = await snapshot(client, wallet_id)
    body = await problem(
        await operate(client, wallet_id, "WITHDRAW", "50"), 400, "INSUFFICIENT_FUNDS"
    )
    assert body["detail"] == "Balance 10.00 is less than 50.00"
    assert await snapshot(client, wallet_id) == before


@pytest.mark.parametrize(
    "request_body",
    [
        '{"operationType": "WITHDRAW", "amount": "0.001"}',
        '{"operationType": "WITHDRAW", "amount": "5", "x": 1}',
        '{"operationType": "DEPOSIT", "amount": 1e13}',
        "[]",
    ],
)
async def test_an_invalid_request_changes_nothing(client: Client, request_body: str) -> None:
    wallet_id = await wallet_with(client, "10")
    before = await snapshot(client, wallet_id)
    response = await client.post(operation_url(wallet_id), data=request_body, headers=JSON_TYPE)
    await problem(response, 400, "VALIDATION_ERROR")
    assert await snapshot(client, wallet_id) == before


async def test_the_balance_limit_is_refused_and_changes_nothing(client: Client) -> None:
    wallet_id = await wallet_with(client, "0.00")
    largest = OperationCommand(OperationType.DEPOSIT, parse_amount(str(Money(MAX_AMOUNT_MINOR))))
    for _ in range(MAX_BALANCE_MINOR // MAX_AMOUNT_MINOR):  # through the app's own service
        await client.app[SERVICES].apply_operation(UUID(wallet_id), largest)
    before = await snapshot(client, wallet_id)
    assert before[0]["balance"] == "9000000000000000.00"
    response = await operate(client, wallet_id, "DEPOSIT", "0.01")
    await problem(response, 400, "BALANCE_LIMIT_EXCEEDED")
    assert await snapshot(client, wallet_id) == before


# --- request ids ----------------------------------------------------------------------


@pytest.mark.parametrize("given", ["a", "abc-123", "A.b_c:d-e", "x" * 128, "0123456789"])
async def test_a_well_formed_client_request_id_is_kept(client: Client, given: str) -> None:
    response = await client.get(WALLETS, headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] == given
    response = await client.get(wallet_url("nope"), headers={"X-Request-ID": given})
    assert (await problem(response, 400, "VALIDATION_ERROR"))["requestId"] == given


@pytest.mark.parametrize(
    "given", ["x" * 129, "has space", "semi;colon", "slash/", "ÿ-latin1", "", "a,b"]
)
async def test_a_malformed_client_request_id_is_replaced(client: Client, given: str) -> None:
    response = await client.get(wallet_url("nope"), headers={"X-Request-ID": given})
    replaced = response.headers["X-Request-ID"]
    assert replaced != given
    assert VALID_REQUEST_ID.fullmatch(replaced)
    assert (await problem(response, 400, "VALIDATION_ERROR"))["requestId"] == replaced


async def test_every_response_carries_a_fresh_request_id(client: Client) -> None:
    ids = set()
    for path in (WALLETS, "/health/live", "/", "/nope"):
        response = await client.get(path)
        assert VALID_REQUEST_ID.fullmatch(response.headers["X-Request-ID"])
        ids.add(response.headers["X-Request-ID"])
    assert len(ids) == 4


# --- outages and health ---------------------------------------------------------------


async def test_a_database_outage_is_503_with_retry_after(
    client: Client, repository: InMemoryDatabase
) -> None:
    wallet_id = await wallet_with(client, "5")
    repository.available = False
    for response in (
        await client.post(WALLETS),
        await client.get(WALLETS),
        await operate(client, wallet_id, "DEPOSIT", "1"),
        await client.get(operations_url(wallet_id)),
    ):
        await problem(response, 503, "SERVICE_UNAVAILABLE")
        assert int(response.headers["Retry-After"]) >= 1
    repository.available = True
    assert (await ok_json(await client.get(wallet_url(wallet_id))))["balance"] == "5.00"
    assert len((await ok_json(await client.get(operations_url(wallet_id))))["items"]) == 1


async def test_a_validation_error_wins_over_a_database_outage(
    client: Client, repository: InMemoryDatabase
) -> None:
    repository.available = False
    await problem(await client.get(wallet_url("123")), 400, "VALIDATION_ERROR")


async def test_the_api_works_while_the_cache_is_down(
    client: Client, cache: InMemoryBalanceCache
) -> None:
    cache.available = False
    wallet_id = await wallet_with(client, "7.50")
    await ok_json(await operate(client, wallet_id, "WITHDRAW", "2.5"))
    assert (await ok_json(await client.get(wallet_url(wallet_id))))["balance"] == "5.00"


async def test_liveness(client: Client) -> None:
    assert await ok_json(await client.get("/health/live")) == {"status": "ok"}


@pytest.mark.parametrize(("cache_up", "cache_state"), [(True, "ok"), (False, "down")])
async def test_ready_while_the_database_answers_whatever_the_cache(
    client: Client, cache: InMemoryBalanceCache, cache_up: bool, cache_state: str
) -> None:
    cache.available = cache_up
    body = await ok_json(await client.get("/health/ready"))
    assert body == {"status": "ok", "database": "ok", "cache": cache_state}


async def test_not_ready_while_the_database_is_down(
    client: Client, repository: InMemoryDatabase
) -> None:
    repository.available = False
    response = await client.get("/health/ready")
    body = await problem(response, 503, "SERVICE_UNAVAILABLE")
    assert body["database"] == "down"
    assert body["cache"] == "ok"
    assert int(response.headers["Retry-After"]) >= 1


# --- the page -------------------------------------------------------------------------


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


async def test_the_page_is_html_under_a_self_only_content_security_policy(
    client: Client,
) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert "<html" in html.lower()
    assert 'id="create-wallet"' in html

    csp = csp_directives(response.headers["Content-Security-Policy"])
    for directive in ("default-src", "script-src", "style-src", "connect-src"):
        assert csp[directive] == ["'self'"], directive
    for sources in csp.values():
        for source in sources:
            assert source in ("'self'", "'none'", "data:"), source


async def test_the_page_loads_nothing_from_elsewhere(client: Client) -> None:
    html = await (await client.get("/")).text()
    assert not re.search(r"(?i)(https?:)?//[a-z0-9]", html)
    references = re.findall(r"""(?i)\b(?:src|href|action)\s*=\s*["']([^"']*)["']""", html)
    assert references
    for reference in references:
        assert reference.startswith(("/", "#")), reference
        assert not reference.startswith("//"), reference


async def test_the_pages_assets_are_served(client: Client) -> None:
    html = await (await client.get("/")).text()
    assert "/static/app.js" in html
    for path, kind in (("/static/app.js", "javascript"), ("/static/app.css", "text/css")):
        response = await client.get(path)
        assert response.status == 200, path
        assert kind in response.content_type
        assert len(await response.read()) > 0


IMPORTED_MODULE = re.compile(r'\bfrom "([^"]*)";')


async def test_every_module_the_page_imports_is_served_as_javascript(client: Client) -> None:
    """One module the browser cannot fetch, or gets with another type, stops the whole page."""
    waiting = ["app.js"]
    served: set[str] = set()
    while waiting:
        name = waiting.pop()
        if name in served:
            continue
        response = await client.get("/static/" + name)
        assert response.status == 200, name
        assert "javascript" in response.content_type, name
        served.add(name)
        for specifier in IMPORTED_MODULE.findall(await response.text()):
            assert re.fullmatch(r"\./[A-Za-z0-9_-]+\.js", specifier), (name, specifier)
            waiting.append(specifier[2:])
    assert {"api.js", "balance-chart.js", "wallet-list.js"} <= served


# --- trailing slashes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "canonical"),
    [
        ("POST", "/api/v1/wallets/", "/api/v1/wallets"),
        ("GET", "/api/v1/wallets/?limit=1&cursor=x%2By", "/api/v1/wallets?limit=1&cursor=x%2By"),
        ("DELETE", "/api/v1/wallets/", "/api/v1/wallets"),
        ("GET", "/api/v1/wallets/{id}/", "/api/v1/wallets/{id}"),
        ("POST", "/api/v1/wallets/{id}/operation/", "/api/v1/wallets/{id}/operation"),
        ("GET", "/api/v1/wallets/{id}/operations/?limit=5", operations_url("{id}") + "?limit=5"),
        ("GET", "/health/live/", "/health/live"),
        ("HEAD", "/health/ready/", "/health/ready"),
        ("GET", "/api/v1/openapi.json/", "/api/v1/openapi.json"),
        ("GET", "/api/docs/", "/api/docs"),
        ("GET", "/static/app.js/", "/static/app.js"),
    ],
)
async def test_a_route_with_a_trailing_slash_is_a_308_to_the_route(
    client: Client, method: str, path: str, canonical: str
) -> None:
    wallet_id = str((await create_wallet(client))["id"])
    response = await client.request(
        method, path.format(id=wallet_id), allow_redirects=False, headers={"X-Request-ID": "r-1"}
    )
    assert response.status == 308, await response.text()
    assert response.headers["Location"] == canonical.format(id=wallet_id)
    assert response.headers["X-Request-ID"] == "r-1"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_redirected_post_is_sent_again_with_its_body(client: Client) -> None:
    created = await ok_json(await client.post(WALLETS + "/"), 201)
    response = await client.post(
        operation_url(created["id"]) + "/", data=operation_json("DEPOSIT", "5"), headers=JSON_TYPE
    )
    assert (await ok_json(response))["balance"] == "5.00"
    assert await wallet_count(client) == 1


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/nothing/", 404, "NOT_FOUND"),
        ("POST", "/api/v1/wallets//", 404, "NOT_FOUND"),
        ("GET", "/api/v1/wallets/{id}/x/", 404, "NOT_FOUND"),
        ("POST", "/api/v1/wallets//operation", 400, "VALIDATION_ERROR"),
        ("GET", "/api/v1/wallets//operations", 400, "VALIDATION_ERROR"),
    ],
)
async def test_a_path_unknown_even_without_its_slash_is_not_redirected(
    client: Client, method: str, path: str, status: int, code: str
) -> None:
    wallet_id = str((await create_wallet(client))["id"])
    response = await client.request(
        method,
        path.format(id=wallet_id),
        data=operation_json("DEPOSIT", "5"),
        headers=JSON_TYPE,
        allow_redirects=False,
    )
    await problem(response, status, code)


async def test_the_page_at_the_root_is_not_a_trailing_slash(client: Client) -> None:
    response = await client.get("/", allow_redirects=False)
    assert response.status == 200


# --- caching and the server's name ----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/wallets"),
        ("GET", "/api/v1/wallets"),
        ("GET", "/api/v1/wallets/{id}"),
        ("GET", "/api/v1/wallets/{id}/operations"),
        ("GET", "/api/v1/wallets/not-an-id"),
        ("PUT", "/api/v1/wallets"),
        ("GET", "/api/v1/nothing"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/health/live"),
        ("GET", "/health/ready"),
        ("GET", "/"),
        ("GET", "/api/docs"),
        ("GET", "/metrics"),
    ],
)
async def test_answers_are_not_to_be_stored_and_name_no_server_version(
    client: Client, method: str, path: str
) -> None:
    wallet_id = str((await create_wallet(client))["id"])
    response = await client.request(method, path.format(id=wallet_id))
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Server"] == "wallet"


@pytest.mark.parametrize("path", ["/static/app.js", "/api/docs/assets/swagger-ui.css"])
async def test_assets_stay_cacheable_without_a_server_version(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert response.headers["Server"] == "wallet"
