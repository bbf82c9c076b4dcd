"""The OpenAPI document against the running app: the same routes, every status, every body.

Each request in CASES provokes a real answer from the app on the in-memory adapters; its
status must be one the document lists for that operation, and its body and headers must
match what the document says for that exact status and content type.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from dependency_injector import providers
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.unit.fakes import serve_from
from wallet.adapters.memory import InMemoryBalanceCache, InMemoryDatabase
from wallet.config import Settings
from wallet.container import Container
from wallet.domain.holds import DEFAULT_EXPIRES_IN, MAX_EXPIRES_IN
from wallet.domain.model import OperationRequest, OperationType
from wallet.domain.money import (
    MAX_AMOUNT_MINOR,
    MAX_BALANCE_MINOR,
    InvalidAmount,
    Money,
    parse_amount,
)
from wallet.domain.pagination import CursorCodec, InvalidCursor, Position
from wallet.entrypoints.http import openapi, pages
from wallet.entrypoints.http.app import create_app
from wallet.entrypoints.http.parsing import MAX_BODY_BYTES
from wallet.entrypoints.http.problems import PROBLEM_CONTENT_TYPE

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]

DOC = openapi.document()
DOC_URI = "urn:wallet:openapi"
REGISTRY: Registry[Any] = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(DOC))
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
DOCUMENTED_PREFIXES = ("/api/v1/", "/health/")
JSON = "application/json"
REQUEST_ID = "openapi-test:42"
API_HEADERS = {
    "X-Request-ID",
    "Location",
    "Retry-After",
    "Allow",
    "Idempotent-Replayed",
    "WWW-Authenticate",
}
API_KEY = "unit-test-api-key"

WALLETS = "/api/v1/wallets"
WALLET = "/api/v1/wallets/{walletId}"
OPERATION = "/api/v1/wallets/{walletId}/operation"
OPERATIONS = "/api/v1/wallets/{walletId}/operations"
BALANCE = "/api/v1/wallets/{walletId}/balance"
LIVE = "/health/live"
READY = "/health/ready"
OPENAPI = "/api/v1/openapi.json"
TRANSFERS = "/api/v1/transfers"
TRANSFER = "/api/v1/transfers/{transferId}"
HOLDS = "/api/v1/wallets/{walletId}/holds"
HOLD = "/api/v1/holds/{holdId}"
CAPTURE = "/api/v1/holds/{holdId}/capture"
VOID = "/api/v1/holds/{holdId}/void"
EVENTS = "/api/v1/events"

# What {walletId} and the cursors in a case become; see arrange().
EXISTING = "{wallet}"
UNKNOWN = "{unknown}"
FULL = "{full}"
WALLETS_CURSOR = "{walletsCursor}"
OPERATIONS_CURSOR = "{operationsCursor}"
HOLDS_CURSOR = "{holdsCursor}"
# What {holdId} becomes, for the holds arrange() places on the wallet; see place_holds().
PAYING = "{paying}"
CAPTURED = "{captured}"
PAYING_FULL = "{payingFull}"

DATABASE_DOWN = "database down"
CACHE_DOWN = "cache down"
EXPIRED = "holds expired"
EVENTS_FORGOTTEN = "the oldest events forgotten"

# Documented statuses no request can provoke in this app, and why.
UNREACHABLE = {
    ("get", LIVE, 500): "the handler cannot fail; 500 is the error middleware's net for bugs",
    ("get", OPENAPI, 500): "the document is static; 500 is the error middleware's net for bugs",
    ("post", WALLETS, 409): "needs two requests at once; tests/unit/test_idempotency.py and "
    "tests/integration/test_idempotency.py race them",
    ("post", OPERATION, 409): "needs two requests at once; tests/unit/test_idempotency.py and "
    "tests/integration/test_idempotency.py race them",
    ("post", TRANSFERS, 409): "needs two requests at once; tests/unit/test_transfers.py races them",
    ("post", HOLDS, 409): "needs two requests at once; every POST claims its key through the "
    "one IdempotentCommands that tests/unit/test_transfers.py races",
}
KEY_USED = "a key used before"


def as_json(value: object) -> bytes:
    return json.dumps(value).encode()


def operation_body(kind: str, amount: object) -> bytes:
    return as_json({"operationType": kind, "amount": amount})


def transfer_body(payer: str, payee: str, amount: object, **more: object) -> bytes:
    """A transfer between two of arrange()'s wallets, named by their ids' keys there."""
    return as_json(
        {"fromWalletId": f"<{payer}>", "toWalletId": f"<{payee}>", "amount": amount, **more}
    )


def hold_body(amount: object, **more: object) -> bytes:
    """A hold's body; a ``<name>`` of one of arrange()'s wallets stands for its id."""
    return as_json({"amount": amount, **more})


def with_ids(body: bytes, ids: dict[str, str]) -> bytes:
    """The body with each ``<name>`` of a wallet replaced by that wallet's id."""
    for name, value in ids.items():
        body = body.replace(f"<{name}>".encode(), value.encode())
    return body


@dataclass(frozen=True)
class Case:
    """One request, and the status it gets."""

    name: str
    method: str
    template: str  # a documented path template, or a path the app does not know
    status: int
    code: str | None = None  # the problem's code, for error answers
    wallet: str = EXISTING  # what {walletId} becomes
    transfer: str = "{transfer}"  # what {transferId} becomes
    hold: str = "{hold}"  # what {holdId} becomes
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    content_type: str = JSON
    chunked: bool = False
    given: frozenset[str] = frozenset()
    key: str | None = None  # an Idempotency-Key to send


TOO_LARGE = b"{" + b" " * MAX_BODY_BYTES + b"}"
DEPOSIT = operation_body("DEPOSIT", "50.00")

USED = frozenset({KEY_USED})
TRANSFER_25 = transfer_body("wallet", "other", "25.00")
HOLD_20 = hold_body("20.00")
CASES = [
    # POST /api/v1/transfers
    Case("transfer", "POST", TRANSFERS, 201, body=TRANSFER_25),
    Case(
        "transfer with a reference and metadata",
        "POST",
        TRANSFERS,
        201,
        body=transfer_body("wallet", "other", 1, reference="inv-1", metadata={"a": "b"}),
    ),
    Case("transfer with a key", "POST", TRANSFERS, 201, body=TRANSFER_25, key="fresh-transfer"),
    Case(
        "transfer again with the same key",
        "POST",
        TRANSFERS,
        201,
        body=transfer_body("wallet", "other", 25),
        key="used-transfer",
        given=USED,
    ),
    Case(
        "transfer another amount with a used key",
        "POST",
        TRANSFERS,
        422,
        "IDEMPOTENCY_KEY_REUSED",
        body=transfer_body("wallet", "other", 3),
        key="used-transfer",
        given=USED,
    ),
    Case(
        "transfer to the same wallet",
        "POST",
        TRANSFERS,
        400,
        "VALIDATION_ERROR",
        body=transfer_body("wallet", "wallet", 1),
    ),
    Case(
        "transfer with a field too many",
        "POST",
        TRANSFERS,
        400,
        "VALIDATION_ERROR",
        body=transfer_body("wallet", "other", 1, note="x"),
    ),
    Case(
        "transfer to a wallet of another currency",
        "POST",
        TRANSFERS,
        400,
        "CURRENCY_MISMATCH",
        body=transfer_body("wallet", "euro", 1),
    ),
    Case(
        "transfer more than the payer has",
        "POST",
        TRANSFERS,
        400,
        "INSUFFICIENT_FUNDS",
        body=transfer_body("wallet", "other", "100.01"),
    ),
    Case(
        "transfer to a full wallet",
        "POST",
        TRANSFERS,
        400,
        "BALANCE_LIMIT_EXCEEDED",
        body=transfer_body("wallet", "full", 1),
        wallet=FULL,
    ),
    Case(
        "transfer to an unknown wallet",
        "POST",
        TRANSFERS,
        404,
        "WALLET_NOT_FOUND",
        body=transfer_body("wallet", "unknown", 1),
    ),
    Case(
        "transfer with a body too large",
        "POST",
        TRANSFERS,
        413,
        "PAYLOAD_TOO_LARGE",
        body=TOO_LARGE,
    ),
    Case(
        "transfer from a form post",
        "POST",
        TRANSFERS,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        body=b"a=1",
        content_type="application/x-www-form-urlencoded",
    ),
    Case(
        "transfer while the database is down",
        "POST",
        TRANSFERS,
        503,
        "SERVICE_UNAVAILABLE",
        body=TRANSFER_25,
        given=frozenset({DATABASE_DOWN}),
    ),
    Case("list transfers", "GET", TRANSFERS, 405, "METHOD_NOT_ALLOWED"),
    # GET /api/v1/transfers/{transferId}
    Case("get a transfer", "GET", TRANSFER, 200),
    Case("get a malformed transfer id", "GET", TRANSFER, 400, "VALIDATION_ERROR", transfer="x"),
    Case("get an unknown transfer", "GET", TRANSFER, 404, "TRANSFER_NOT_FOUND", transfer=UNKNOWN),
    Case(
        "get a transfer while the database is down",
        "GET",
        TRANSFER,
        503,
        "SERVICE_UNAVAILABLE",
        given=frozenset({DATABASE_DOWN}),
    ),
    Case("delete a transfer", "DELETE", TRANSFER, 405, "METHOD_NOT_ALLOWED"),
    # POST /api/v1/wallets/{walletId}/holds
    Case("place a hold", "POST", HOLDS, 201, body=HOLD_20),
    Case(
        "place a hold that pays another wallet, with every field",
        "POST",
        HOLDS,
        201,
        body=hold_body(1, toWalletId="<other>", expiresIn=60, reference="r", metadata={"a": "b"}),
    ),
    Case(
        "place a hold with its optional fields null",
        "POST",
        HOLDS,
        201,
        body=hold_body(1, toWalletId=None, expiresIn=None, reference=None, metadata=None),
    ),
    Case("place a hold with a key", "POST", HOLDS, 201, body=HOLD_20, key="fresh-hold"),
    Case(
        "place a hold again with the same key",
        "POST",
        HOLDS,
        201,
        body=hold_body(1),
        key="used-hold",
        given=USED,
    ),
    Case(
        "place another hold with a used key",
        "POST",
        HOLDS,
        422,
        "IDEMPOTENCY_KEY_REUSED",
        body=hold_body(2),
        key="used-hold",
        given=USED,
    ),
    Case(
        "place a hold again after a recorded refusal",
        "POST",
        HOLDS,
        400,
        "INSUFFICIENT_FUNDS",
        body=hold_body(10**9),
        key="used-refused-hold",
        given=USED,
    ),
    Case(
        "place a hold that pays its own wallet",
        "POST",
        HOLDS,
        400,
        "VALIDATION_ERROR",
        body=hold_body(1, toWalletId="<wallet>"),
    ),
    Case(
        "place a hold expiring in a fraction of seconds",
        "POST",
        HOLDS,
        400,
        "VALIDATION_ERROR",
        body=b'{"amount": 1, "expiresIn": 60.0}',
    ),
    Case(
        "place a hold expiring after 30 days",
        "POST",
        HOLDS,
        400,
        "VALIDATION_ERROR",
        body=hold_body(1, expiresIn=MAX_EXPIRES_IN + 1),
    ),
    Case("place a hold without an amount", "POST", HOLDS, 400, "VALIDATION_ERROR", body=b"{}"),
    Case("place a hold without a body", "POST", HOLDS, 400, "VALIDATION_ERROR"),
    Case(
        "place a hold on a malformed wallet id",
        "POST",
        HOLDS,
        400,
        "VALIDATION_ERROR",
        wallet="wallet-1",
        body=HOLD_20,
    ),
    Case(
        "place a hold that pays a wallet of another currency",
        "POST",
        HOLDS,
        400,
        "CURRENCY_MISMATCH",
        body=hold_body(1, toWalletId="<euro>"),
    ),
    Case(
        "place a hold for more than is available, though not more than the balance",
        "POST",
        HOLDS,
        400,
        "INSUFFICIENT_FUNDS",
        body=hold_body("90.00"),
    ),
    Case(
        "place a hold on an unknown wallet",
        "POST",
        HOLDS,
        404,
        "WALLET_NOT_FOUND",
        wallet=UNKNOWN,
        body=HOLD_20,
    ),
    Case(
        "place a hold that pays an unknown wallet",
        "POST",
        HOLDS,
        404,
        "WALLET_NOT_FOUND",
        body=hold_body(1, toWalletId="<unknown>"),
    ),
    Case(
        "place a hold with a body too large",
        "POST",
        HOLDS,
        413,
        "PAYLOAD_TOO_LARGE",
        body=TOO_LARGE,
    ),
    Case(
        "place a hold from a form post",
        "POST",
        HOLDS,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        body=b"amount=1",
        content_type="application/x-www-form-urlencoded",
    ),
    Case(
        "place a hold while the database is down",
        "POST",
        HOLDS,
        503,
        "SERVICE_UNAVAILABLE",
        body=HOLD_20,
        given=frozenset({DATABASE_DOWN}),
    ),
    Case("delete the holds", "DELETE", HOLDS, 405, "METHOD_NOT_ALLOWED"),
    # GET /api/v1/wallets/{walletId}/holds
    Case("list holds", "GET", HOLDS, 200),
    Case("list held holds", "GET", HOLDS, 200, params=(("status", "HELD"),)),
    Case(
        "list expired holds",
        "GET",
        HOLDS,
        200,
        params=(("status", "EXPIRED"),),
        given=frozenset({EXPIRED}),
    ),
    Case("list one hold", "GET", HOLDS, 200, params=(("limit", "1"),)),
    Case("list the next holds", "GET", HOLDS, 200, params=(("cursor", HOLDS_CURSOR),)),
    Case(
        "list holds of a status in lower case",
        "GET",
        HOLDS,
        400,
        "VALIDATION_ERROR",
        params=(("status", "held"),),
    ),
    Case(
        "list holds with two statuses",
        "GET",
        HOLDS,
        400,
        "VALIDATION_ERROR",
        params=(("status", "HELD"), ("status", "VOIDED")),
    ),
    Case(
        "list held holds after a cursor of all holds",
        "GET",
        HOLDS,
        400,
        "VALIDATION_ERROR",
        params=(("status", "HELD"), ("cursor", HOLDS_CURSOR)),
    ),
    Case(
        "list holds with an operations cursor",
        "GET",
        HOLDS,
        400,
        "VALIDATION_ERROR",
        params=(("cursor", OPERATIONS_CURSOR),),
    ),
    Case("list holds of a malformed id", "GET", HOLDS, 400, "VALIDATION_ERROR", wallet="wallet-1"),
    Case("list holds of an unknown wallet", "GET", HOLDS, 404, "WALLET_NOT_FOUND", wallet=UNKNOWN),
    Case(
        "list holds while the database is down",
        "GET",
        HOLDS,
        503,
        "SERVICE_UNAVAILABLE",
        given=frozenset({DATABASE_DOWN}),
    ),
    # GET /api/v1/holds/{holdId}
    Case("get a hold", "GET", HOLD, 200),
    Case("get a captured hold", "GET", HOLD, 200, hold=CAPTURED),
    Case("get an expired hold", "GET", HOLD, 200, given=frozenset({EXPIRED})),
    Case("get a malformed hold id", "GET", HOLD, 400, "VALIDATION_ERROR", hold="hold-1"),
    Case("get an unknown hold", "GET", HOLD, 404, "HOLD_NOT_FOUND", hold=UNKNOWN),
    Case(
        "get a hold while the database is down",
        "GET",
        HOLD,
        503,
        "SERVICE_UNAVAILABLE",
        given=frozenset({DATABASE_DOWN}),
    ),
    Case("delete a hold", "DELETE", HOLD, 405, "METHOD_NOT_ALLOWED"),
    # POST /api/v1/holds/{holdId}/capture
    Case("capture a hold without a body", "POST", CAPTURE, 200),
    Case("capture a hold with {}", "POST", CAPTURE, 200, body=b"{}"),
    Case("capture a hold with a null amount", "POST", CAPTURE, 200, body=b'{"amount": null}'),
    Case("capture part of a hold", "POST", CAPTURE, 200, body=as_json({"amount": "2.50"})),
    Case("capture a hold that pays another wallet", "POST", CAPTURE, 200, hold=PAYING),
    Case("capture a hold with a key", "POST", CAPTURE, 200, key="fresh-capture"),
    Case(
        "capture a hold again with the same key",
        "POST",
        CAPTURE,
        200,
        hold="{keyedHold}",
        key="used-capture",
        given=USED,
    ),
    Case(
        "capture another hold with a used key",
        "POST",
        CAPTURE,
        422,
        "IDEMPOTENCY_KEY_REUSED",
        key="used-capture",
        given=USED,
    ),
    Case(
        "capture again after a recorded refusal",
        "POST",
        CAPTURE,
        400,
        "BALANCE_LIMIT_EXCEEDED",
        wallet=FULL,
        hold=PAYING_FULL,
        key="used-refused-capture",
        given=USED,
    ),
    Case(
        "capture more than the hold",
        "POST",
        CAPTURE,
        400,
        "VALIDATION_ERROR",
        body=as_json({"amount": "10.01"}),
    ),
    Case(
        "capture a tenth of a cent",
        "POST",
        CAPTURE,
        400,
        "VALIDATION_ERROR",
        body=as_json({"amount": "0.001"}),
    ),
    Case(
        "capture with a field too many",
        "POST",
        CAPTURE,
        400,
        "VALIDATION_ERROR",
        body=as_json({"amount": 1, "toWalletId": None}),
    ),
    Case("capture a malformed hold id", "POST", CAPTURE, 400, "VALIDATION_ERROR", hold="hold-1"),
    Case(
        "capture a hold that pays a full wallet",
        "POST",
        CAPTURE,
        400,
        "BALANCE_LIMIT_EXCEEDED",
        wallet=FULL,
        hold=PAYING_FULL,
    ),
    Case("capture an unknown hold", "POST", CAPTURE, 404, "HOLD_NOT_FOUND", hold=UNKNOWN),
    Case("capture a captured hold", "POST", CAPTURE, 409, "HOLD_NOT_ACTIVE", hold=CAPTURED),
    Case(
        "capture an expired hold",
        "POST",
        CAPTURE,
        409,
        "HOLD_NOT_ACTIVE",
        given=frozenset({EXPIRED}),
    ),
    Case(
        "capture with a body too large", "POST", CAPTURE, 413, "PAYLOAD_TOO_LARGE", body=TOO_LARGE
    ),
    Case(
        "capture with a text body",
        "POST",
        CAPTURE,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        body=b"{}",
        content_type="text/plain",
    ),
    Case(
        "capture while the database is down",
        "POST",
        CAPTURE,
        503,
        "SERVICE_UNAVAILABLE",
        given=frozenset({DATABASE_DOWN}),
    ),
    Case("get the capture endpoint", "GET", CAPTURE, 405, "METHOD_NOT_ALLOWED"),
    # POST /api/v1/holds/{holdId}/void
    Case("void a hold without a body", "POST", VOID, 200),
    Case("void a hold with {}", "POST", VOID, 200, body=b"{}"),
    Case("void a hold with a key", "POST", VOID, 200, key="fresh-void"),
    Case(
        "void a hold again with the same key",
        "POST",
        VOID,
        200,
        hold="{keyedVoid}",
        key="used-void",
        given=USED,
    ),
    Case(
        "void another hold with a used key",
        "POST",
        VOID,
        422,
        "IDEMPOTENCY_KEY_REUSED",
        key="used-void",
        given=USED,
    ),
    Case(
        "void with a body that says something",
        "POST",
        VOID,
        400,
        "VALIDATION_ERROR",
        body=as_json({"amount": 1}),
    ),
    Case("void a malformed hold id", "POST", VOID, 400, "VALIDATION_ERROR", hold="hold-1"),
    Case("void an unknown hold", "POST", VOID, 404, "HOLD_NOT_FOUND", hold=UNKNOWN),
    Case("void a captured hold", "POST", VOID, 409, "HOLD_NOT_ACTIVE", hold=CAPTURED),
    Case("void an expired hold", "POST", VOID, 409, "HOLD_NOT_ACTIVE", given=frozenset({EXPIRED})),
    Case("void with a body too large", "POST", VOID, 413, "PAYLOAD_TOO_LARGE", body=TOO_LARGE),
    Case(
        "void from a form post",
        "POST",
        VOID,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        body=b"a=1",
        content_type="application/x-www-form-urlencoded",
    ),
    Case(
        "void while the database is down",
        "POST",
        VOID,
        503,
        "SERVICE_UNAVAILABLE",
        given=frozenset({DATABASE_DOWN}),
    ),
    Case("get the void endpoint", "GET", VOID, 405, "METHOD_NOT_ALLOWED"),
    # Idempotency-Key on both POSTs
    Case("create with a key", "POST", WALLETS, 201, key="fresh-create"),
    Case("create again with the same key", "POST", WALLETS, 201, key="used-create", given=USED),
    Case(
        "create with a key used to deposit",
        "POST",
        WALLETS,
        422,
        "IDEMPOTENCY_KEY_REUSED",
        key="used-deposit",
        given=USED,
    ),
    Case("create with a malformed key", "POST", WALLETS, 400, "VALIDATION_ERROR", key="a b"),
    Case("deposit with a key", "POST", OPERATION, 200, body=DEPOSIT, key="fresh-deposit"),
    Case(
        "deposit again with the same key",
        "POST",
        OPERATION,
        200,
        body=operation_body("DEPOSIT", 1),
        key="used-deposit",
        given=USED,
    ),
    Case(
        "deposit another amount with a used key",
        "POST",
        OPERATION,
        422,
        "IDEMPOTENCY_KEY_REUSED",
        body=DEPOSIT,
        key="used-deposit",
        given=USED,
    ),
    Case(
        "withdraw again after a recorded refusal",
        "POST",
        OPERATION,
        400,
        "INSUFFICIENT_FUNDS",
        body=operation_body("WITHDRAW", 10**9),
        key="used-withdraw",
        given=USED,
    ),
    Case(
        "deposit with a malformed key",
        "POST",
        OPERATION,
        400,
        "VALIDATION_ERROR",
        body=DEPOSIT,
        key="k" * 256,
    ),
    # POST /api/v1/wallets
    Case("create without a body", "POST", WALLETS, 201),
    Case("create with metadata", "POST", WALLETS, 201, body=as_json({"metadata": {"a": "b"}})),
    Case("create with {}", "POST", WALLETS, 201, body=b"{}"),
    Case("create with a field", "POST", WALLETS, 400, "VALIDATION_ERROR", body=b'{"a": 1}'),
    Case("create with malformed JSON", "POST", WALLETS, 400, "VALIDATION_ERROR", body=b"{"),
    Case("create with a body too large", "POST", WALLETS, 413, "PAYLOAD_TOO_LARGE", body=TOO_LARGE),
    Case(
        "create with a chunked body too large",
        "POST",
        WALLETS,
        413,
        "PAYLOAD_TOO_LARGE",
        body=TOO_LARGE,
        chunked=True,
    ),
    Case(
        "create from a form post",
        "POST",
        WALLETS,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        body=b"a=1",
        content_type="application/x-www-form-urlencoded",
    ),
    Case(
        "create while the database is down",
        "POST",
        WALLETS,
        503,
        "SERVICE_UNAVAILABLE",
        given=frozenset({DATABASE_DOWN}),
    ),
    Case("delete the wallet list", "DELETE", WALLETS, 405, "METHOD_NOT_ALLOWED"),
    # GET /api/v1/wallets
    Case("list wallets", "GET", WALLETS, 200),
    Case("list one wallet", "GET", WALLETS, 200, params=(("limit", "1"),)),
    Case("list the next wallets", "GET", WALLETS, 200, params=(("cursor", WALLETS_CURSOR),)),
    Case("list 0 wallets", "GET", WALLETS, 400, "VALIDATION_ERROR", params=(("limit", "0"),)),
    Case("list 1001 wallets", "GET", WALLETS, 400, "VALIDATION_ERROR", params=(("limit", "1001"),)),
    Case("list x wallets", "GET", WALLETS, 400, "VALIDATION_ERROR", params=(("limit", "x"),)),
    Case(
        "list wallets with two limits",
        "GET",
        WALLETS,
        400,
        "VALIDATION_ERROR",
        params=(("limit", "1"), ("limit", "2")),
    ),
    Case(
        "list wallets after a made-up cursor",
        "GET",
        WALLETS,
        400,
        "VALIDATION_ERROR",
        params=(("cursor", "bm90LWEtY3Vyc29y"),),
    ),
    Case(
        "list wallets with an operations cursor",
        "GET",
        WALLETS,
        400,
        "VALIDATION_ERROR",
        params=(("cursor", OPERATIONS_CURSOR),),
    ),
    Case(
        "list wallets while the database is down",
        "GET",
        WALLETS,
        503,
        "SERVICE_UNAVAILABLE",
        given=frozenset({DATABASE_DOWN}),
    ),
    # GET /api/v1/wallets/{walletId}
    Case("get a wallet", "GET", WALLET, 200),
    Case("get a wallet by its upper-case id", "GET", WALLET, 200, wallet="{wallet_upper}"),
    Case("get a malformed id", "GET", WALLET, 400, "VALIDATION_ERROR", wallet="not-a-uuid"),
    Case(
        "get an id without dashes",
        "GET",
        WALLET,
        400,
        "VALIDATION_ERROR",
        wallet="3f1c2d4e5b6a4c8d9e0f1a2b3c4d5e6f",
    ),
    Case("get an unknown wallet", "GET", WALLET, 404, "WALLET_NOT_FOUND", wallet=UNKNOWN),
    Case(
        "get a wallet while the database is down",
        "GET",
        WALLET,
        503,
        "SERVICE_UNAVAILABLE",
        wallet=UNKNOWN,  # never cached, so the read reaches the database
        given=frozenset({DATABASE_DOWN}),
    ),
    Case("put a wallet", "PUT", WALLET, 405, "METHOD_NOT_ALLOWED", body=b"{}"),
    # POST /api/v1/wallets/{walletId}/operation
    Case("deposit a string", "POST", OPERATION, 200, body=DEPOSIT),
    Case(
        "deposit a number", "POST", OPERATION, 200, body=b'{"operationType":"DEPOSIT","amount":0.1}'
    ),
    Case("withdraw", "POST", OPERATION, 200, body=operation_body("WITHDRAW", 100)),
    Case(
        "deposit with a reference and metadata",
        "POST",
        OPERATION,
        200,
        body=as_json(
            {"operationType": "DEPOSIT", "amount": 1, "reference": "r", "metadata": {"a": "b"}}
        ),
    ),
    Case(
        "deposit with a control character in its reference",
        "POST",
        OPERATION,
        400,
        "VALIDATION_ERROR",
        body=as_json({"operationType": "DEPOSIT", "amount": 1, "reference": "a\u0007"}),
    ),
    Case(
        "operate on a malformed id",
        "POST",
        OPERATION,
        400,
        "VALIDATION_ERROR",
        wallet="12345",
        body=DEPOSIT,
    ),
    Case(
        "operate on an empty id",
        "POST",
        OPERATION,
        400,
        "VALIDATION_ERROR",
        wallet="",
        body=DEPOSIT,
    ),
    Case(
        "list the operations of an empty id", "GET", OPERATIONS, 400, "VALIDATION_ERROR", wallet=""
    ),
    Case(
        "operate with a misspelt field",
        "POST",
        OPERATION,
        400,
        "VALIDATION_ERROR",
        body=b'{"operationType": "DEPOSIT", "ammount": 5}',
    ),
    Case(
        "deposit a tenth of a cent",
        "POST",
        OPERATION,
        400,
        "VALIDATION_ERROR",
        body=operation_body("DEPOSIT", "0.001"),
    ),
    Case(
        "operate with an unknown type",
        "POST",
        OPERATION,
        400,
        "VALIDATION_ERROR",
        body=operation_body("STEAL", 5),
    ),
    Case(
        "operate with a duplicated key",
        "POST",
        OPERATION,
        400,
        "VALIDATION_ERROR",
        body=b'{"operationType": "DEPOSIT", "amount": 5, "amount": 6}',
    ),
    Case("operate without a body", "POST", OPERATION, 400, "VALIDATION_ERROR", body=None),
    Case(
        "withdraw more than the balance",
        "POST",
        OPERATION,
        400,
        "INSUFFICIENT_FUNDS",
        body=operation_body("WITHDRAW", "100.01"),
    ),
    Case(
        "deposit past the maximum balance",
        "POST",
        OPERATION,
        400,
        "BALANCE_LIMIT_EXCEEDED",
        wallet=FULL,
        body=operation_body("DEPOSIT", "0.01"),
    ),
    Case(
        "operate on an unknown wallet",
        "POST",
        OPERATION,
        404,
        "WALLET_NOT_FOUND",
        wallet=UNKNOWN,
        body=DEPOSIT,
    ),
    Case(
        "operate with a body too large", "POST", OPERATION, 413, "PAYLOAD_TOO_LARGE", body=TOO_LARGE
    ),
    Case(
        "operate with a text body",
        "POST",
        OPERATION,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        body=DEPOSIT,
        content_type="text/plain",
    ),
    Case(
        "operate while the database is down",
        "POST",
        OPERATION,
        503,
        "SERVICE_UNAVAILABLE",
        body=DEPOSIT,
        given=frozenset({DATABASE_DOWN}),
    ),
    Case("get the operation endpoint", "GET", OPERATION, 405, "METHOD_NOT_ALLOWED"),
    # GET /api/v1/wallets/{walletId}/operations
    Case("list operations", "GET", OPERATIONS, 200),
    Case(
        "list the operations of a reference", "GET", OPERATIONS, 200, params=(("reference", "r"),)
    ),
    Case(
        "list the operations of an empty reference",
        "GET",
        OPERATIONS,
        400,
        "VALIDATION_ERROR",
        params=(("reference", ""),),
    ),
    Case(
        "list the next operations", "GET", OPERATIONS, 200, params=(("cursor", OPERATIONS_CURSOR),)
    ),
    Case(
        "list operations of a malformed id",
        "GET",
        OPERATIONS,
        400,
        "VALIDATION_ERROR",
        wallet="wallet-1",
    ),
    Case(
        "list -1 operations",
        "GET",
        OPERATIONS,
        400,
        "VALIDATION_ERROR",
        params=(("limit", "-1"),),
    ),
    Case(
        "list operations with a wallets cursor",
        "GET",
        OPERATIONS,
        400,
        "VALIDATION_ERROR",
        params=(("cursor", WALLETS_CURSOR),),
    ),
    Case(
        "list operations of an unknown wallet",
        "GET",
        OPERATIONS,
        404,
        "WALLET_NOT_FOUND",
        wallet=UNKNOWN,
    ),
    Case(
        "list operations while the database is down",
        "GET",
        OPERATIONS,
        503,
        "SERVICE_UNAVAILABLE",
        given=frozenset({DATABASE_DOWN}),
    ),
    Case(
        "post to the operations list", "POST", OPERATIONS, 405, "METHOD_NOT_ALLOWED", body=DEPOSIT
    ),
    # GET /api/v1/wallets/{walletId}/balance
    Case("the balance now", "GET", BALANCE, 200),
    Case("the balance at a moment", "GET", BALANCE, 200, params=(("at", "2026-01-01T00:00:00Z"),)),
    Case(
        "the balance at a moment with an offset",
        "GET",
        BALANCE,
        200,
        params=(("at", "2026-01-01T01:30:00.5+01:30"),),
    ),
    Case(
        "the balance at a moment without an offset",
        "GET",
        BALANCE,
        400,
        "VALIDATION_ERROR",
        params=(("at", "2026-01-01T00:00:00"),),
    ),
    Case(
        "the balance at a moment to come",
        "GET",
        BALANCE,
        400,
        "VALIDATION_ERROR",
        params=(("at", "2999-01-01T00:00:00Z"),),
    ),
    Case(
        "the balance of a malformed id", "GET", BALANCE, 400, "VALIDATION_ERROR", wallet="wallet-1"
    ),
    Case(
        "the balance of an unknown wallet at a moment",
        "GET",
        BALANCE,
        404,
        "WALLET_NOT_FOUND",
        wallet=UNKNOWN,
        params=(("at", "2026-01-01T00:00:00Z"),),
    ),
    Case(
        "the balance at a moment while the database is down",
        "GET",
        BALANCE,
        503,
        "SERVICE_UNAVAILABLE",
        params=(("at", "2026-01-01T00:00:00Z"),),
        given=frozenset({DATABASE_DOWN}),
    ),
    Case("post to the balance", "POST", BALANCE, 405, "METHOD_NOT_ALLOWED", body=DEPOSIT),
    # health and the document
    Case("live", "GET", LIVE, 200),
    Case("live while the database is down", "GET", LIVE, 200, given=frozenset({DATABASE_DOWN})),
    Case("post to live", "POST", LIVE, 405, "METHOD_NOT_ALLOWED"),
    Case("ready", "GET", READY, 200),
    Case("ready while the cache is down", "GET", READY, 200, given=frozenset({CACHE_DOWN})),
    Case(
        "ready while the database is down",
        "GET",
        READY,
        503,
        "SERVICE_UNAVAILABLE",
        given=frozenset({DATABASE_DOWN}),
    ),
    Case("delete ready", "DELETE", READY, 405, "METHOD_NOT_ALLOWED"),
    # GET /api/v1/events
    Case("read the events", "GET", EVENTS, 200),
    Case(
        "read a page of events after one",
        "GET",
        EVENTS,
        200,
        params=(("after", "2"), ("limit", "3")),
    ),
    Case("read events after all", "GET", EVENTS, 200, params=(("after", "9223372036854775807"),)),
    Case("read a wallet's events", "GET", EVENTS, 200, params=(("walletId", "{wallet_upper}"),)),
    Case(
        "read events after a negative id",
        "GET",
        EVENTS,
        400,
        "VALIDATION_ERROR",
        params=(("after", "-1"),),
    ),
    Case(
        "read events after an id of 20 digits",
        "GET",
        EVENTS,
        400,
        "VALIDATION_ERROR",
        params=(("after", "1" * 20),),
    ),
    Case(
        "read events after an id past the largest",
        "GET",
        EVENTS,
        200,
        params=(("after", "9223372036854775808"),),
    ),
    Case(
        "read events after two ids",
        "GET",
        EVENTS,
        400,
        "VALIDATION_ERROR",
        params=(("after", "1"), ("after", "2")),
    ),
    Case("read 0 events", "GET", EVENTS, 400, "VALIDATION_ERROR", params=(("limit", "0"),)),
    Case(
        "read the events of a malformed wallet id",
        "GET",
        EVENTS,
        400,
        "VALIDATION_ERROR",
        params=(("walletId", "wallet-1"),),
    ),
    Case(
        "read the events of an unknown wallet",
        "GET",
        EVENTS,
        404,
        "WALLET_NOT_FOUND",
        params=(("walletId", UNKNOWN),),
    ),
    Case(
        "read events after forgotten ones",
        "GET",
        EVENTS,
        410,
        "EVENTS_EXPIRED",
        params=(("after", "0"),),
        given=frozenset({EVENTS_FORGOTTEN}),
    ),
    Case(
        "read the events with the database down",
        "GET",
        EVENTS,
        503,
        "SERVICE_UNAVAILABLE",
        given=frozenset({DATABASE_DOWN}),
    ),
    Case("post an event", "POST", EVENTS, 405, "METHOD_NOT_ALLOWED", body=b"{}"),
    Case("the document", "GET", OPENAPI, 200),
    Case("post the document", "POST", OPENAPI, 405, "METHOD_NOT_ALLOWED", body=b"{}"),
    # paths the app does not know
    Case("an unknown path", "GET", "/api/v1/nothing", 404, "NOT_FOUND"),
    Case("below a wallet", "GET", "/api/v1/wallets/{walletId}/x", 404, "NOT_FOUND"),
    Case("a trailing slash on an unknown path", "POST", "/api/v1/nothing/", 404, "NOT_FOUND"),
    Case("the holds of no wallet", "GET", "/api/v1/holds", 404, "NOT_FOUND"),
]

# With a repository that has a bug, every route that reaches it answers 500.
# With WALLET_API_KEYS set, every /api/v1 operation refuses a request without a key.
KEYED_CASES = [
    Case(f"{method} {template} without a key", method, template, 401, "UNAUTHORIZED", body=body)
    for method, template, body in [
        ("POST", WALLETS, None),
        ("GET", WALLETS, None),
        ("GET", WALLET, None),
        ("POST", OPERATION, DEPOSIT),
        ("GET", OPERATIONS, None),
        ("GET", BALANCE, None),
        ("POST", TRANSFERS, TRANSFER_25),
        ("GET", TRANSFER, None),
        ("POST", HOLDS, HOLD_20),
        ("GET", HOLDS, None),
        ("GET", HOLD, None),
        ("POST", CAPTURE, None),
        ("POST", VOID, None),
        ("GET", EVENTS, None),
    ]
]

BROKEN_CASES = [
    Case("create", "POST", WALLETS, 500, "INTERNAL_ERROR"),
    Case("list wallets", "GET", WALLETS, 500, "INTERNAL_ERROR"),
    Case("get a wallet", "GET", WALLET, 500, "INTERNAL_ERROR", wallet=UNKNOWN),
    Case("operate", "POST", OPERATION, 500, "INTERNAL_ERROR", wallet=UNKNOWN, body=DEPOSIT),
    Case("list operations", "GET", OPERATIONS, 500, "INTERNAL_ERROR", wallet=UNKNOWN),
    Case(
        "the balance at a moment",
        "GET",
        BALANCE,
        500,
        "INTERNAL_ERROR",
        wallet=UNKNOWN,
        params=(("at", "2026-01-01T00:00:00Z"),),
    ),
    Case(
        "transfer",
        "POST",
        TRANSFERS,
        500,
        "INTERNAL_ERROR",
        body=transfer_body("unknown", "other", 1).replace(b"<other>", str(uuid4()).encode()),
    ),
    Case("get a transfer", "GET", TRANSFER, 500, "INTERNAL_ERROR", transfer=UNKNOWN),
    Case("place a hold", "POST", HOLDS, 500, "INTERNAL_ERROR", wallet=UNKNOWN, body=HOLD_20),
    Case("list holds", "GET", HOLDS, 500, "INTERNAL_ERROR", wallet=UNKNOWN),
    Case("get a hold", "GET", HOLD, 500, "INTERNAL_ERROR", hold=UNKNOWN),
    Case("capture a hold", "POST", CAPTURE, 500, "INTERNAL_ERROR", hold=UNKNOWN),
    Case("void a hold", "POST", VOID, 500, "INTERNAL_ERROR", hold=UNKNOWN),
    Case("read the events", "GET", EVENTS, 500, "INTERNAL_ERROR"),
    Case("ready", "GET", READY, 500, "INTERNAL_ERROR"),
]

BUG_MESSAGE = "secret-connection-string-and-a-stack"


class BrokenRepository(InMemoryDatabase):
    """A repository with a bug: every call fails with a plain RuntimeError."""

    def _check_available(self) -> None:
        raise RuntimeError(BUG_MESSAGE)

    async def ping(self) -> bool:
        raise RuntimeError(BUG_MESSAGE)


@pytest.fixture
async def broken_client(aiohttp_client: ClientFactory, container: Container) -> Client:
    serve_from(container, BrokenRepository(), batched=False)
    return await aiohttp_client(create_app(container))


# -- reading the document ------------------------------------------------------------------


def escape(segment: str) -> str:
    """One JSON pointer segment (RFC 6901)."""
    return segment.replace("~", "~0").replace("/", "~1")


def at(pointer: str) -> Any:
    node: Any = DOC
    for segment in pointer.lstrip("/").split("/"):
        key = segment.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def follow(pointer: str) -> tuple[str, Any]:
    """The object at ``pointer`` after its local $refs, and the pointer it ends at."""
    node = at(pointer)
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = at(pointer)
    return pointer, node


def validator(pointer: str) -> Draft202012Validator:
    """A validator for the schema at ``pointer``, its $refs resolved inside the document."""
    return Draft202012Validator(
        {"$ref": f"{DOC_URI}#{pointer}"},
        registry=REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def documented_operations() -> dict[tuple[str, str], Any]:
    """(method, path template) to operation object, for every documented operation."""
    return {
        (method, path): op
        for path, item in DOC["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    }


def documented_statuses() -> set[tuple[str, str, int]]:
    return {
        (method, path, int(status))
        for (method, path), op in documented_operations().items()
        for status in op["responses"]
    }


def documented_answer(case: Case, content_type: str) -> tuple[str, str]:
    """Where the document describes the answer to ``case``: its response and its schema.

    Asserts that it does: an undocumented status or content type fails here.
    """
    item = DOC["paths"].get(case.template)
    method = case.method.lower()
    if item is None:  # paths the app does not know answer a plain problem
        assert case.status == 404, f"{case.template} is not documented; only 404 fits it"
        assert content_type == PROBLEM_CONTENT_TYPE
        return "", "/components/schemas/Problem"
    if method not in item:
        assert case.status == 405, f"{case.method} {case.template} is not documented"
        for other in set(item) & HTTP_METHODS:
            assert "405" in item[other]["responses"], f"{other} {case.template} lacks 405"
        method = min(set(item) & HTTP_METHODS)
    responses = item[method]["responses"]
    assert str(case.status) in responses, (
        f"{case.method} {case.template} answered {case.status}, "
        f"which the document does not list (it lists {sorted(responses)})"
    )
    pointer, response = follow(f"/paths/{escape(case.template)}/{method}/responses/{case.status}")
    assert content_type in response["content"], (
        f"{content_type} is not documented for {case.status}; {list(response['content'])} are"
    )
    return pointer, f"{pointer}/content/{escape(content_type)}/schema"


def claims(case: Case) -> set[tuple[str, str, int]]:
    """The documented (method, path, status) triples that ``case`` provokes."""
    item = DOC["paths"].get(case.template, {})
    method = case.method.lower()
    if method in item:
        return {(method, case.template, case.status)}
    return {(other, case.template, case.status) for other in set(item) & HTTP_METHODS}


# -- checking an answer --------------------------------------------------------------------


async def check_against_document(case: Case, response: ClientResponse) -> Any:
    """The answer has the case's status, and the body and headers the document gives it."""
    assert response.status == case.status, await response.text()
    response_at, schema_at = documented_answer(case, response.content_type)
    body = json.loads(await response.text())
    errors = [error.message for error in validator(schema_at).iter_errors(body)]
    assert not errors, f"{case.name}: {errors} in {body}"
    if response_at:
        check_headers(response_at, response)
    assert response.headers["X-Request-ID"] == REQUEST_ID
    if case.code is not None:
        assert body["code"] == case.code
        assert body["status"] == case.status
        assert body["requestId"] == REQUEST_ID
    if case.status == 405:
        assert set(response.headers["Allow"].split(", ")) == allowed_methods(case.template)
    return body


def check_headers(response_at: str, response: ClientResponse) -> None:
    """Every header the document requires is there and matches its schema, and back."""
    documented = at(response_at).get("headers", {})
    for name in (name for name in API_HEADERS if name in response.headers):
        assert name in documented, f"{name} is sent but not documented for {response.status}"
    for name in documented:
        pointer, header = follow(f"{response_at}/headers/{escape(name)}")
        if not header.get("required"):
            continue
        assert name in response.headers, f"the documented header {name} is missing"
        value: object = response.headers[name]
        if header["schema"].get("type") == "integer":
            assert re.fullmatch(r"[0-9]+", str(value)), f"{name}: {value!r}"
            value = int(str(value))
        errors = [error.message for error in validator(f"{pointer}/schema").iter_errors(value)]
        assert not errors, f"header {name}: {errors}"


def allowed_methods(template: str) -> set[str]:
    """What Allow should say: the documented methods, and HEAD wherever GET is served."""
    methods = {m.upper() for m in DOC["paths"][template] if m in HTTP_METHODS}
    return (methods | {"HEAD"}) if "GET" in methods else methods


def check_request_is_documented(case: Case, ids: dict[str, str]) -> None:
    """A request the app accepted is one the document accepts: parameters and body."""
    operation_at = f"/paths/{escape(case.template)}/{case.method.lower()}"
    operation = at(operation_at)
    sent: dict[str, dict[str, str | None]] = {
        "path": {
            "walletId": wallet_id(case, ids),
            "transferId": transfer_id(case, ids),
            "holdId": hold_id(case, ids),
        },
        "query": dict(query(case, ids)),
        "header": {"X-Request-ID": REQUEST_ID},
    }
    names: set[str] = set()
    for index in range(len(operation.get("parameters", []))):
        pointer, parameter = follow(f"{operation_at}/parameters/{index}")
        names.add(parameter["name"])
        value: object = sent[parameter["in"]].get(parameter["name"])
        if value is None:
            assert not parameter["required"], f"{parameter['name']} is required"
            continue
        if parameter["schema"].get("type") == "integer":
            value = int(str(value))
        errors = [error.message for error in validator(f"{pointer}/schema").iter_errors(value)]
        assert not errors, f"{parameter['name']}={value!r}: {errors}"
    assert set(sent["query"]) <= names, "a query parameter the document does not know"
    if case.body is not None:
        schema_at = f"{operation_at}/requestBody/content/{escape(case.content_type)}/schema"
        body = json.loads(with_ids(case.body, ids))
        errors = [error.message for error in validator(schema_at).iter_errors(body)]
        assert not errors, f"request body {body}: {errors}"


# -- arranging a case ----------------------------------------------------------------------


async def arrange(
    case: Case, client: Client, repository: InMemoryDatabase, cache: InMemoryBalanceCache
) -> dict[str, str]:
    """Real state for the case to act on: wallets, a ledger, holds, cursors, outages."""
    wallet = await create_wallet(client)
    other = await create_wallet(client)
    for amount in ("60.00", "40.00"):
        response = await client.post(
            f"{WALLETS}/{wallet}/operation",
            data=operation_body("DEPOSIT", amount),
            headers={"Content-Type": JSON},
        )
        assert response.status == 200
    ids = {
        "wallet": wallet,
        "wallet_upper": wallet.upper(),
        "unknown": str(uuid4()),
        "walletsCursor": await next_cursor(client, WALLETS),
        "operationsCursor": await next_cursor(client, f"{WALLETS}/{wallet}/operations"),
        "other": other,
        "euro": await create_wallet(client, {"currency": "EUR"}),
    }
    ids["transfer"] = await a_transfer(client, ids)
    if case.wallet == FULL:
        ids["full"] = await full_wallet(client, repository)
    if is_about_holds(case):
        await place_holds(client, ids)
    if KEY_USED in case.given:
        await use_keys(client, wallet, ids)
        await use_hold_keys(client, ids)
    if EXPIRED in case.given:
        repository.clock = functools.partial(later, timedelta(seconds=DEFAULT_EXPIRES_IN + 1))
    if EVENTS_FORGOTTEN in case.given:
        repository.clock = functools.partial(later, timedelta(days=31))
        assert await repository.forget_events_older_than(timedelta(days=30))
    repository.available = DATABASE_DOWN not in case.given
    cache.available = CACHE_DOWN not in case.given
    return ids


async def use_keys(client: Client, wallet: str, ids: dict[str, str]) -> None:
    """Earlier requests under keys, made with the request id the cases send."""
    headers = {"Content-Type": JSON, "X-Request-ID": REQUEST_ID}
    for key, path, body, status in [
        ("used-create", WALLETS, None, 201),
        ("used-deposit", f"{WALLETS}/{wallet}/operation", operation_body("DEPOSIT", "1.00"), 200),
        ("used-withdraw", f"{WALLETS}/{wallet}/operation", operation_body("WITHDRAW", 10**9), 400),
        ("used-transfer", TRANSFERS, with_ids(TRANSFER_25, ids), 201),
    ]:
        response = await client.post(path, data=body, headers={**headers, "Idempotency-Key": key})
        assert response.status == status


async def use_hold_keys(client: Client, ids: dict[str, str]) -> None:
    """Holds placed, captured and voided under keys, with the request id the cases send: the
    captured one is ``keyedHold``, the voided one ``keyedVoid``; with a full wallet, a
    capture that would pay it is refused under a key too."""
    headers = {"Content-Type": JSON, "X-Request-ID": REQUEST_ID}
    holds = f"{WALLETS}/{ids['wallet']}/holds"
    ids["keyedHold"] = await place_hold(client, ids, hold_body(1), key="used-hold")
    refused = await client.post(
        holds, data=hold_body(10**9), headers={**headers, "Idempotency-Key": "used-refused-hold"}
    )
    assert refused.status == 400
    ids["keyedVoid"] = await place_hold(client, ids, hold_body(1))
    for key, hold, action, status in [
        ("used-capture", ids["keyedHold"], "capture", 200),
        ("used-void", ids["keyedVoid"], "void", 200),
        ("used-refused-capture", ids.get("payingFull"), "capture", 400),
    ]:
        if hold is not None:
            path = f"/api/v1/holds/{hold}/{action}"
            response = await client.post(path, headers={**headers, "Idempotency-Key": key})
            assert response.status == status


def is_about_holds(case: Case) -> bool:
    return "{holdId}" in case.template or case.template == HOLDS


async def place_holds(client: Client, ids: dict[str, str]) -> None:
    """Holds on the wallet: ``hold`` and ``paying`` (which pays the other wallet) of 10.00
    each still held, ``captured`` of 1.00 captured; with a full wallet, ``payingFull`` pays
    it. Of its 99.00, the wallet has 79.00 available (78.00 with ``payingFull``)."""
    ids["hold"] = await place_hold(client, ids, hold_body("10.00"))
    ids["paying"] = await place_hold(client, ids, hold_body("10.00", toWalletId="<other>"))
    ids["captured"] = await place_hold(client, ids, hold_body("1.00"))
    captured = await client.post(f"/api/v1/holds/{ids['captured']}/capture")
    assert captured.status == 200
    if "full" in ids:
        ids["payingFull"] = await place_hold(client, ids, hold_body("1.00", toWalletId="<full>"))
    ids["holdsCursor"] = await next_cursor(client, f"{WALLETS}/{ids['wallet']}/holds")


async def place_hold(
    client: Client, ids: dict[str, str], body: bytes, key: str | None = None
) -> str:
    """A hold on arrange()'s wallet; its id."""
    headers = {"Content-Type": JSON, "X-Request-ID": REQUEST_ID}
    if key is not None:
        headers["Idempotency-Key"] = key
    response = await client.post(
        f"{WALLETS}/{ids['wallet']}/holds", data=with_ids(body, ids), headers=headers
    )
    assert response.status == 201, await response.text()
    hold_id: str = (await response.json())["id"]
    return hold_id


def later(by: timedelta) -> datetime:
    """The time now, ``by`` later: the store's clock once the holds have expired."""
    return datetime.now(UTC) + by


async def a_transfer(client: Client, ids: dict[str, str]) -> str:
    """A transfer of a cent back and forth: the balances stay as they were."""
    headers = {"Content-Type": JSON}
    there = await client.post(
        TRANSFERS, data=with_ids(transfer_body("wallet", "other", "0.01"), ids), headers=headers
    )
    back = await client.post(
        TRANSFERS, data=with_ids(transfer_body("other", "wallet", "0.01"), ids), headers=headers
    )
    assert there.status == back.status == 201
    transfer_id: str = (await there.json())["id"]
    return transfer_id


async def create_wallet(client: Client, body: object = None) -> str:
    response = await client.post(WALLETS, json=body)
    assert response.status == 201
    wallet_id: str = (await response.json())["id"]
    return wallet_id


async def next_cursor(client: Client, path: str) -> str:
    response = await client.get(path, params={"limit": "1"})
    cursor: str = (await response.json())["nextCursor"]
    assert cursor
    return cursor


async def full_wallet(client: Client, repository: InMemoryDatabase) -> str:
    """A wallet at the maximum balance, filled with the largest deposits allowed."""
    wallet_id = await create_wallet(client)
    largest = OperationRequest(OperationType.DEPOSIT, Money(MAX_AMOUNT_MINOR))
    for _ in range(MAX_BALANCE_MINOR // MAX_AMOUNT_MINOR):
        applied = await repository.apply(UUID(wallet_id), largest)
    assert applied.wallet.balance == Money(MAX_BALANCE_MINOR)
    return wallet_id


def wallet_id(case: Case, ids: dict[str, str]) -> str | None:
    return case.wallet.format(**ids) if "{walletId}" in case.template else None


def query(case: Case, ids: dict[str, str]) -> list[tuple[str, str]]:
    return [(name, value.format(**ids)) for name, value in case.params]


def transfer_id(case: Case, ids: dict[str, str]) -> str | None:
    return case.transfer.format(**ids) if "{transferId}" in case.template else None


def hold_id(case: Case, ids: dict[str, str]) -> str | None:
    return case.hold.format(**ids) if "{holdId}" in case.template else None


def path_of(case: Case, ids: dict[str, str]) -> str:
    """The case's path, its template's ids filled in."""
    path = case.template.replace("{walletId}", wallet_id(case, ids) or "")
    path = path.replace("{transferId}", transfer_id(case, ids) or "")
    return path.replace("{holdId}", hold_id(case, ids) or "")


async def send(client: Client, case: Case, ids: dict[str, str]) -> ClientResponse:
    path = path_of(case, ids)
    headers = {"X-Request-ID": REQUEST_ID}
    if case.key is not None:
        headers["Idempotency-Key"] = case.key
    data: Any = case.body
    if case.body is not None:
        data = with_ids(case.body, ids)
        headers["Content-Type"] = case.content_type
        if case.chunked:
            data = chunks(data)
    return await client.request(
        case.method, path, params=query(case, ids), data=data, headers=headers
    )


async def chunks(body: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


# -- the tests -----------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOC)
    assert DOC["openapi"] == "3.1.0"
    assert DOC["servers"] == [{"url": "/"}]


async def test_the_document_is_served_as_built_once(client: Client) -> None:
    response = await client.get(OPENAPI)
    assert response.status == 200
    assert response.content_type == JSON
    assert await response.json() == DOC
    assert openapi.served_json() is openapi.served_json()


def test_document_returns_a_copy_the_caller_may_change() -> None:
    changed = openapi.document()
    changed["paths"].clear()
    assert openapi.document()["paths"] == DOC["paths"] != {}


def is_page(path: str) -> bool:
    """The wallet page, its assets and the metrics: for browsers and Prometheus, not the API."""
    return (
        path in ("/", "/metrics")
        or path.startswith("/api/docs")
        or path == pages.STATIC_URL
        or path.startswith(pages.STATIC_URL + "/")
    )


# The path parameters as the routes name them, and as the document does.
PATH_PARAMETERS = {
    "{wallet_id}": "{walletId}",
    "{transfer_id}": "{transferId}",
    "{hold_id}": "{holdId}",
}


def camel_case(name: str) -> str:
    return re.sub(r"_([a-z])", lambda match: match.group(1).upper(), name)


async def test_the_document_describes_exactly_the_routes_the_app_serves(client: Client) -> None:
    served = set()
    assert client.app is not None
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if is_page(path):
            continue
        assert path.startswith(DOCUMENTED_PREFIXES), f"{path} is neither API nor page"
        if route.method != "HEAD":
            handler = getattr(route.handler, "__name__", "")
            for name, parameter in PATH_PARAMETERS.items():
                path = path.replace(name, parameter)
            served.add((route.method.lower(), path, handler))
    documented = {
        (method, path, op["operationId"]) for (method, path), op in documented_operations().items()
    }
    assert {(m, p, camel_case(h)) for m, p, h in served} == documented


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_each_answer_is_the_documented_one(
    case: Case,
    client: Client,
    repository: InMemoryDatabase,
    cache: InMemoryBalanceCache,
) -> None:
    ids = await arrange(case, client, repository, cache)
    await check_against_document(case, await send(client, case, ids))
    if 200 <= case.status < 300:
        check_request_is_documented(case, ids)


@pytest.mark.parametrize("case", BROKEN_CASES, ids=[case.name for case in BROKEN_CASES])
async def test_a_bug_is_a_documented_500_without_details(
    case: Case, broken_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await send(broken_client, case, {"unknown": str(uuid4())})
        body = await check_against_document(case, response)
    text = json.dumps(body)
    for leak in ("Traceback", "RuntimeError", BUG_MESSAGE, ".py"):
        assert leak not in text
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == REQUEST_ID]
    assert all(r.exc_info for r in logged)
    assert logged, "the request id must find the bug's traceback in the log"


@pytest.fixture
async def keyed_client(aiohttp_client: Any, container: Container) -> Client:
    """The app configured with API keys."""
    keyed = Settings(database_url="postgresql://unused", redis_url="", api_keys=(API_KEY,))
    container.settings.override(providers.Object(keyed))
    client: Client = await aiohttp_client(create_app(container))
    return client


@pytest.mark.parametrize("case", KEYED_CASES, ids=[case.name for case in KEYED_CASES])
async def test_with_api_keys_a_request_without_one_is_the_documented_401(
    case: Case, keyed_client: Client
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": JSON}
    wallet, other = [await (await keyed_client.post(WALLETS, headers=headers)).json() for _ in "ab"]
    ids = {"wallet": wallet["id"], "other": other["id"]}
    deposit = await keyed_client.post(
        f"{WALLETS}/{ids['wallet']}/operation", data=DEPOSIT, headers=headers
    )
    assert deposit.status == 200
    made = await keyed_client.post(TRANSFERS, data=with_ids(TRANSFER_25, ids), headers=headers)
    ids["transfer"] = (await made.json())["id"]
    held = await keyed_client.post(  # on the payee: the wallet's 25.00 stay available
        f"{WALLETS}/{ids['other']}/holds", data=hold_body(1), headers=headers
    )
    ids["hold"] = (await held.json())["id"]
    path = path_of(case, ids)
    body = None if case.body is None else with_ids(case.body, ids)

    await check_against_document(case, await send(keyed_client, case, ids))

    for wrong in ("Bearer nope", f"Basic {API_KEY}", API_KEY, "Bearer"):
        response = await keyed_client.request(
            case.method, path, data=body, headers={**headers, "Authorization": wrong}
        )
        assert response.status == 401, wrong
    allowed = await keyed_client.request(case.method, path, data=body, headers=headers)
    assert allowed.status < 400
    assert (await keyed_client.get(LIVE)).status == 200


def test_every_documented_status_is_provoked() -> None:
    provoked = set().union(*(claims(case) for case in CASES + BROKEN_CASES + KEYED_CASES))
    assert not provoked & UNREACHABLE.keys()
    assert documented_statuses() - provoked == set(UNREACHABLE)
    assert provoked <= documented_statuses()


async def test_the_links_of_a_new_wallet_lead_to_it(client: Client) -> None:
    response = await client.post(WALLETS)
    wallet = await response.json()
    assert response.headers["Location"] == f"{WALLETS}/{wallet['id']}"
    links = documented_operations()[("post", WALLETS)]["responses"]["201"]["links"]
    by_id = {op["operationId"]: key for key, op in documented_operations().items()}
    assert {link["operationId"] for link in links.values()} == {
        "getWallet",
        "postOperation",
        "listOperations",
    }
    for link in links.values():
        method, template = by_id[link["operationId"]]
        assert link["parameters"] == {"walletId": "$response.body#/id"}
        path = template.replace("{walletId}", wallet["id"])
        body = DEPOSIT if method == "post" else None
        followed = await client.request(method, path, data=body, headers={"Content-Type": JSON})
        assert followed.status == 200, f"{link['operationId']}: {await followed.text()}"


async def test_the_links_of_a_new_hold_lead_to_it(client: Client) -> None:
    wallet = await create_wallet(client)
    funded = await client.post(
        f"{WALLETS}/{wallet}/operation", data=DEPOSIT, headers={"Content-Type": JSON}
    )
    assert funded.status == 200
    links = documented_operations()[("post", HOLDS)]["responses"]["201"]["links"]
    by_id = {op["operationId"]: key for key, op in documented_operations().items()}
    assert {link["operationId"] for link in links.values()} == {
        "getHold",
        "captureHold",
        "voidHold",
    }
    for link in links.values():
        response = await client.post(
            f"{WALLETS}/{wallet}/holds", data=hold_body(1), headers={"Content-Type": JSON}
        )
        hold = await response.json()
        assert response.headers["Location"] == f"/api/v1/holds/{hold['id']}"
        assert link["parameters"] == {"holdId": "$response.body#/id"}
        method, template = by_id[link["operationId"]]
        followed = await client.request(method, template.replace("{holdId}", hold["id"]))
        assert followed.status == 200, f"{link['operationId']}: {await followed.text()}"


async def test_with_api_keys_the_document_stays_open(keyed_client: Client) -> None:
    response = await keyed_client.get(OPENAPI)
    assert response.status == 200
    assert await response.json() == DOC
    assert (await keyed_client.get("/api/v1/nothing")).status == 401


def test_the_document_says_which_operations_need_no_key() -> None:
    for (method, path), operation in documented_operations().items():
        if path.startswith("/api/v1/") and path != OPENAPI:
            assert operation["security"] == [{}, {"apiKey": []}], f"{method} {path}"
            assert "401" in operation["responses"], f"{method} {path}"
        else:
            assert operation["security"] == [], f"{method} {path}"
            assert "401" not in operation["responses"], f"{method} {path}"


@pytest.mark.parametrize("case", KEYED_CASES, ids=[case.name for case in KEYED_CASES])
async def test_with_api_keys_two_authorization_headers_are_a_documented_400(
    case: Case, keyed_client: Client
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": JSON}
    wallet = await (await keyed_client.post(WALLETS, headers=headers)).json()
    path = path_of(case, {"wallet": wallet["id"], "transfer": str(uuid4()), "hold": str(uuid4())})
    twice = [("Authorization", f"Bearer {API_KEY}")] * 2 + [
        ("Content-Type", JSON),
        ("X-Request-ID", REQUEST_ID),
    ]

    response = await keyed_client.request(case.method, path, data=case.body, headers=twice)

    refused = Case(case.name, case.method, case.template, 400, "VALIDATION_ERROR")
    body = await check_against_document(refused, response)
    assert body["errors"] == [{"field": "Authorization", "message": "must be given at most once"}]
    balance = await (await keyed_client.get(f"{WALLETS}/{wallet['id']}", headers=headers)).json()
    assert balance["balance"] == "0.00", "a refused request changes nothing"


# -- the document is as strict as the service ---------------------------------------------

EXACT_DOC = json.loads(openapi.served_json(), parse_float=Decimal)  # numbers as written
AMOUNT_LITERALS = [
    *("0.01", "0.1", "0.07", "0.29", "0.100", "1e2", "1E-2", "50", "999999999999.99"),
    *("1000000000000", "1000000000000.00", "1e12", "0", "0.00", "-1", "0.001", "0.015"),
    *("1000000000000.01", "1e13", "745173967130.9828", "true", "null", "[1]"),
    *('"50"', '"0.29"', '"0001.5"', '"999999999999.99"', '"1000000000000"'),
    *('"1000000000000.00"', '"0"', '"00.00"', '"1000000000000.01"', '"10000000000000"'),
    *('"1.5e2"', '"1."', '".5"', '"0.001"', '"-1"', '"abc"', '""'),
]


def exact_validator(pointer: str) -> Draft202012Validator:
    """A validator over the document read with exact decimals, as JSON means its numbers."""
    registry: Registry[Any] = Registry().with_resource(
        DOC_URI, DRAFT202012.create_resource(EXACT_DOC)
    )
    return Draft202012Validator({"$ref": f"{DOC_URI}#{pointer}"}, registry=registry)


@pytest.mark.parametrize("literal", AMOUNT_LITERALS)
def test_the_amount_schema_accepts_exactly_the_amounts_the_service_takes(literal: str) -> None:
    amount = json.loads(literal, parse_float=Decimal, parse_int=Decimal)
    try:
        parse_amount(amount)  # before the wallet, and so its currency, is known
    except InvalidAmount:
        taken = False
    else:
        taken = True
    body = {"operationType": "DEPOSIT", "amount": amount}
    documented = exact_validator("/components/schemas/OperationRequest").is_valid(body)
    assert documented is taken


def test_the_cursor_schema_fits_every_cursor_the_service_makes_and_no_other_form() -> None:
    codec = CursorCodec(b"unit-test-cursor-secret-32-bytes")
    schema = exact_validator("/components/parameters/Cursor/schema")
    for micros in (0, 1, 10**15, 2**57):
        created_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
        cursor = codec.encode("wallets", Position(created_at, uuid4()))
        assert schema.is_valid(cursor), cursor
        for other_form in ("", "a", cursor + "=", cursor[:-1], cursor[:-1] + "B", cursor + "A"):
            with pytest.raises(InvalidCursor):
                codec.decode("wallets", other_form)
            assert not schema.is_valid(other_form), other_form
