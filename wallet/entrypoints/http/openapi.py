"""The OpenAPI 3.1 document of the API, served at /api/v1/openapi.json.

The document is plain data assembled from small helpers and from the limits the code
itself uses, so a changed limit changes the document too. tests/unit/test_openapi.py
holds it to the running app: every route, every status, every body. Every problem it names,
with its status, comes from the problem catalogue.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from wallet.config import Settings
from wallet.domain import errors
from wallet.domain.currency import CURRENCIES, MAX_AMOUNT_MAJOR, MAX_BALANCE_MAJOR
from wallet.domain.events import EventType
from wallet.domain.holds import DEFAULT_EXPIRES_IN, MAX_EXPIRES_IN, MIN_EXPIRES_IN, HoldStatus
from wallet.domain.model import MAX_BALANCE, REQUESTABLE, OperationType
from wallet.domain.money import MAX_AMOUNT_MINOR, MAX_DECIMALS, MAX_LITERAL_LENGTH, Money
from wallet.domain.pagination import CURSOR_BYTES
from wallet.domain.references import (
    MAX_METADATA_ENTRIES,
    MAX_METADATA_VALUE_LENGTH,
    MAX_REFERENCE_LENGTH,
    METADATA_KEY_TEXT,
)
from wallet.entrypoints.http.parsing import (
    DEFAULT_PAGE_SIZE,
    MAX_BODY_BYTES,
    MAX_EVENT_ID,
    MAX_JSON_DEPTH,
    MAX_PAGE_SIZE,
)
from wallet.entrypoints.http.problems import (
    ANSWERED,
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    PROBLEM_CONTENT_TYPE,
    SERVICE_UNAVAILABLE,
    UNAUTHORIZED,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION,
    ProblemKind,
    kind_of,
)

Json = dict[str, Any]

routes = web.RouteTableDef()

JSON = "application/json"
DOCUMENT_PATH = "/api/v1/openapi.json"
MAX_AMOUNT = Money(MAX_AMOUNT_MINOR)
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
UUID_ANY_CASE_PATTERN = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"
# Money with the decimals of its currency: none, 2 or 3.
MONEY_PATTERN = r"^[0-9]+(\.[0-9]{2,3})?$"
# A decimal string of at most 3 decimals and at most the largest amount, a power of ten:
# fewer digits, or that very number (leading zeros aside). Its currency may allow fewer.
_MAX_DIGITS = len(str(MAX_AMOUNT_MAJOR))
AMOUNT_STRING_PATTERN = (
    rf"^0*([0-9]{{1,{_MAX_DIGITS - 1}}}(\.[0-9]{{1,{MAX_DECIMALS}}})?"
    rf"|{MAX_AMOUNT_MAJOR}(\.0{{1,{MAX_DECIMALS}}})?)$"
)
ZERO_STRING_PATTERN = rf"^0+(\.0{{1,{MAX_DECIMALS}}})?$"
# Text without Unicode category Cc (C0, DEL, C1); a metadata value only without NUL.
REFERENCE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*$"
METADATA_VALUE_PATTERN = r"^[^\u0000]*$"
TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$"
_EVENT_ID_DIGITS = len(str(MAX_EVENT_ID))
EVENT_ID_PATTERN = rf"^[1-9][0-9]{{0,{_EVENT_ID_DIGITS - 1}}}$"
AFTER_PATTERN = rf"^[0-9]{{1,{_EVENT_ID_DIGITS}}}$"
RETENTION_DAYS = f"{Settings().events_retention_days:g}"  # the default

INSUFFICIENT_FUNDS = kind_of(errors.InsufficientFunds)
BALANCE_LIMIT = kind_of(errors.BalanceLimitExceeded)
WALLET_NOT_FOUND = kind_of(errors.WalletNotFound)
TRANSFER_NOT_FOUND = kind_of(errors.TransferNotFound)
HOLD_NOT_FOUND = kind_of(errors.HoldNotFound)
HOLD_NOT_ACTIVE = kind_of(errors.HoldNotActive)
EVENTS_EXPIRED = kind_of(errors.EventsExpired)
CURRENCY_MISMATCH = kind_of(errors.CurrencyMismatch)
IDEMPOTENCY_KEY_IN_USE = kind_of(errors.IdempotencyKeyInUse)
IDEMPOTENCY_KEY_REUSED = kind_of(errors.IdempotencyKeyReused)
# The status of a refused deposit or withdrawal, whichever bound it would cross.
(REFUSED_OPERATION_STATUS,) = {INSUFFICIENT_FUNDS.status, BALANCE_LIMIT.status}

DESCRIPTION = f"""\
A wallet service: create wallets, deposit and withdraw exact amounts, move money between
wallets, reserve it with holds, read balances and each wallet's ledger.

**Money.** Every wallet holds one `currency`, fixed at creation: an active ISO 4217 code
whose minor unit has 0, 2 or 3 digits (`JPY`, `USD`, `BHD`); money never changes currency.
Amounts and balances are exact decimals rendered as strings with exactly the currency's
digits (`"1500"`, `"150.00"`, `"1.500"`). A request `amount` is a JSON number or a decimal
string, taken exactly as written and never rounded: it must be above 0, at most
{MAX_AMOUNT_MAJOR} in major units, with at most the currency's decimals (a string as
written: for a 0-digit currency digits only; a number once trailing zeros are dropped:
`0.100` is `0.10`). More than 3 decimals is refused before the wallet is looked up; the
wallet's digits are checked once it is found, before any balance rule. A balance stays
between 0 and {MAX_BALANCE_MAJOR} in major units (for USD, 0.00 and {MAX_BALANCE}); an
operation that would cross either bound is refused with {REFUSED_OPERATION_STATUS} and
changes nothing.

**References and metadata.** An operation, a transfer or a hold may carry a `reference` \
(1 to {MAX_REFERENCE_LENGTH} characters, counted as Unicode code points, without control \
characters; not unique) and those or a new wallet `metadata` (an object of at most \
{MAX_METADATA_ENTRIES} entries, keys
1 to 40 of `A-Z a-z 0-9 _ . -`, values strings of at most {MAX_METADATA_VALUE_LENGTH} \
characters). Both are
returned as given (`null` and `{{}}` when absent) and are part of what a request means under
an `Idempotency-Key`. `?reference=` lists only a wallet's operations of that reference.

**Holds.** A hold reserves part of a wallet's available balance now, to be captured or
voided later. `heldBalance` is the sum of the wallet's holds still `HELD`; `availableBalance`
(`balance` less `heldBalance`) is what a withdrawal, a transfer out or a new hold may take.
A capture takes the whole hold or less, once, and releases the rest: as a `WITHDRAW`, or as a
transfer to the hold's `toWalletId`; its entries carry the `holdId`. A void releases it all.
From `expiresAt` on, a hold still held reads `EXPIRED` and reserves nothing. Placing or
voiding a hold writes no ledger entry; a capture or void of a hold no longer held is \
{HOLD_NOT_ACTIVE.status}.

**Events.** Every change is also an event, read from `/api/v1/events` in the order it
committed: `wallet.created`, `operation.applied` (a deposit or a withdrawal),
`transfer.completed` (under its payer), `hold.created`, `hold.captured` (the capture's
answer; it makes no transfer or operation event of its own), `hold.voided` and
`hold.expired`. An event's `data` is the changed thing as the API answered it. Events are
kept `WALLET_EVENTS_RETENTION_DAYS` days ({RETENTION_DAYS} by default); an `after` older
than that is {EVENTS_EXPIRED.status}.

**Paging.** Lists take `limit` (1 to {MAX_PAGE_SIZE}, default {DEFAULT_PAGE_SIZE}) and
`cursor`, the opaque `nextCursor` of the previous page (`null` on the last page). Lists are
ordered by (`createdAt`, `id`): wallets oldest first, operations and holds newest first.
Pages never skip or repeat an item while items are being added. A cursor belongs to one
list; one the service did not make, or an altered one, is {VALIDATION.status}.

**Consistency.** Each operation is atomic and appended to the wallet's ledger, which is
never changed. No lost updates, no double application, no negative balance under any
concurrency. A 2xx answer to a POST means the effect is committed. At all times
`balance` equals deposits minus withdrawals, and each operation's `balanceAfter` is the
running total in ledger order. A read after a successful POST never shows an older
balance than the POST returned.

**Requests.** Bodies are UTF-8 JSON of at most {MAX_BODY_BYTES} bytes, nested at most
{MAX_JSON_DEPTH} levels, without duplicated keys or unknown fields. A POST with a body
must send `Content-Type: application/json`. A request is validated completely before
anything runs, so an invalid request is always `{VALIDATION.code}`. A path of this API
spelt with a trailing slash (`POST /api/v1/wallets/`) is answered `308 Permanent Redirect`
with `Location` the path without it, query kept: the client sends the same request there.
Answers are not to be cached (`Cache-Control: no-store`).

**Errors** are RFC 9457 problem details (`{PROBLEM_CONTENT_TYPE}`) on every path,
unknown paths ({NOT_FOUND.status} `{NOT_FOUND.code}`) and other methods on a known path \
({METHOD_NOT_ALLOWED.status} with `Allow`)
included. Their `requestId` equals the `X-Request-ID` response header. \
{SERVICE_UNAVAILABLE.status} means the
database is unreachable or slow; it comes quickly, never as a hang, with `Retry-After`.
"""


def _base64url(size: int) -> Json:
    """Exactly the unpadded URL-safe base64 texts of ``size`` bytes: no other spelling."""
    full, rest = divmod(size, 3)
    letter = "[A-Za-z0-9_-]"
    # The last letter of a partial group carries only the bits left, the rest zero.
    tail = {0: "", 1: letter + "[AQgw]", 2: letter + "{2}[AEIMQUYcgkosw048]"}[rest]
    length = 4 * full + (rest + 1 if rest else 0)
    return {
        "pattern": f"^{letter}{{{4 * full}}}{tail}$",
        "minLength": length,
        "maxLength": length,
    }


CURSOR_TEXT = _base64url(CURSOR_BYTES)


def _ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def _schema(name: str) -> Json:
    return _ref("schemas", name)


def _object(
    properties: dict[str, Json],
    description: str = "",
    optional: dict[str, Json] | None = None,
    **extra: Any,
) -> Json:
    """A closed object whose every listed property is always present, and ``optional``
    ones that may be left out."""
    schema: Json = {
        "type": "object",
        "required": list(properties),
        "properties": {**properties, **(optional or {})},
        "additionalProperties": False,
        **extra,
    }
    if description:
        schema["description"] = description
    return schema


def _page(item: str, order: str) -> Json:
    return _object(
        {
            "items": {"type": "array", "maxItems": MAX_PAGE_SIZE, "items": _schema(item)},
            "nextCursor": {
                "type": ["string", "null"],
                **CURSOR_TEXT,
                "description": "Pass as `cursor` for the next page; `null` on the last page.",
            },
        },
        f"One page of {item.lower()}s, {order}.",
    )


def _narrowed(schema: str, **properties: Json) -> Json:
    """``schema``, with ``properties`` held to the values they can have there."""
    return {"allOf": [_schema(schema), {"properties": properties}]}


NO_ID = {"type": "null"}
# What each type of event carries as ``data``: the answer the API gave the change.
EVENT_DATA: dict[EventType, Json] = {
    EventType.WALLET_CREATED: _schema("Wallet"),
    EventType.OPERATION_APPLIED: _narrowed(
        "Operation",
        operationType={"enum": [kind.value for kind in REQUESTABLE]},
        transferId=NO_ID,
        holdId=NO_ID,
    ),
    EventType.TRANSFER_COMPLETED: _narrowed("Transfer", holdId=NO_ID),
    EventType.HOLD_CREATED: _narrowed("Hold", status={"const": HoldStatus.HELD.value}),
    EventType.HOLD_CAPTURED: _schema("HoldCaptured"),
    EventType.HOLD_VOIDED: _narrowed("Hold", status={"const": HoldStatus.VOIDED.value}),
    EventType.HOLD_EXPIRED: _narrowed("Hold", status={"const": HoldStatus.EXPIRED.value}),
}

# -- schemas -------------------------------------------------------------------------------

SCHEMAS: dict[str, Json] = {
    "Id": {
        "type": "string",
        "format": "uuid",
        "pattern": UUID_PATTERN,
        "description": "A UUID in lower case.",
        "examples": ["3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f"],
    },
    "Money": {
        "type": "string",
        "pattern": MONEY_PATTERN,
        "description": "An exact amount with exactly its currency's decimals (0, 2 or 3).",
        "examples": ["150.00", "0.10", "1500", "1.500"],
    },
    "Currency": {
        "type": "string",
        "enum": list(CURRENCIES),
        "description": "An active ISO 4217 code whose minor unit has 0, 2 or 3 digits.",
        "examples": ["USD", "EUR", "JPY", "BHD"],
    },
    "Timestamp": {
        "type": "string",
        "format": "date-time",
        "pattern": TIMESTAMP_PATTERN,
        "description": "RFC 3339 in UTC, with a `Z` suffix.",
        "examples": ["2026-11-27T16:03:02.123456Z"],
    },
    "OperationType": {
        "type": "string",
        "enum": [t.value for t in OperationType],
        "description": "A ledger entry's kind.",
    },
    "RequestedOperationType": {
        "type": "string",
        "enum": [t.value for t in REQUESTABLE],
        "description": "What `/operation` takes; transfers have an endpoint of their own.",
    },
    "Amount": {
        "description": (
            f"Above 0 and at most {MAX_AMOUNT_MAJOR}, with at most the wallet's "
            "currency's decimals (never more than 3); never rounded."
        ),
        "oneOf": [
            {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_AMOUNT_MAJOR,
                "multipleOf": 10**-MAX_DECIMALS,
                "description": (
                    f"A JSON number (`50`, `0.1`, `1e2`) of at most {MAX_LITERAL_LENGTH} "
                    "characters."
                ),
            },
            {
                "type": "string",
                "pattern": AMOUNT_STRING_PATTERN,
                "maxLength": MAX_LITERAL_LENGTH,
                "not": {"pattern": ZERO_STRING_PATTERN},
                "description": 'A decimal string (`"50"`, `"50.00"`).',
            },
        ],
    },
    "Reference": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_REFERENCE_LENGTH,
        "pattern": REFERENCE_PATTERN,
        "description": (
            f"The client's own reference: 1 to {MAX_REFERENCE_LENGTH} characters (Unicode "
            "code points) without control characters; not unique."
        ),
        "examples": ["order-1234"],
    },
    "Metadata": {
        "type": "object",
        "maxProperties": MAX_METADATA_ENTRIES,
        "propertyNames": {"pattern": f"^{METADATA_KEY_TEXT}$"},
        "additionalProperties": {
            "type": "string",
            "maxLength": MAX_METADATA_VALUE_LENGTH,
            "pattern": METADATA_VALUE_PATTERN,
        },
        "description": (
            f"The client's own notes: at most {MAX_METADATA_ENTRIES} entries, keys of "
            f"`A-Z a-z 0-9 _ . -`, values strings of at most {MAX_METADATA_VALUE_LENGTH} "
            "characters (without NUL)."
        ),
        "examples": [{"orderId": "1234", "channel": "web"}],
    },
    "Wallet": _object(
        {
            "id": _schema("Id"),
            "currency": _schema("Currency"),
            "balance": _schema("Money"),
            "heldBalance": {
                "allOf": [_schema("Money")],
                "description": "The part of the balance that holds still `HELD` reserve.",
            },
            "availableBalance": {
                "allOf": [_schema("Money")],
                "description": "`balance` less `heldBalance`: what a withdrawal, a "
                "transfer out or a new hold may take.",
            },
            "metadata": _schema("Metadata"),
            "createdAt": _schema("Timestamp"),
            "updatedAt": _schema("Timestamp"),
        },
        "A wallet and its current balance.",
    ),
    "Operation": _object(
        {
            "id": _schema("Id"),
            "walletId": _schema("Id"),
            "operationType": _schema("OperationType"),
            "currency": _schema("Currency"),
            "amount": _schema("Money"),
            "balanceAfter": _schema("Money"),
            "reference": {
                "oneOf": [_schema("Reference"), {"type": "null"}],
                "description": "As the operation was asked for; `null` without one.",
            },
            "metadata": {
                "allOf": [_schema("Metadata")],
                "description": "As the operation was asked for; `{}` without any.",
            },
            "transferId": {
                "oneOf": [_schema("Id"), {"type": "null"}],
                "description": "The transfer the entry belongs to; `null` when none.",
            },
            "holdId": {
                "oneOf": [_schema("Id"), {"type": "null"}],
                "description": "The hold the entry captures; `null` when none.",
            },
            "createdAt": _schema("Timestamp"),
        },
        "One ledger entry; entries are never changed or deleted.",
    ),
    "OperationRequest": _object(
        {
            "operationType": _schema("RequestedOperationType"),
            "amount": _schema("Amount"),
        },
        "A deposit or a withdrawal. Unknown fields are refused.",
        optional={
            "reference": {"oneOf": [_schema("Reference"), {"type": "null"}]},
            "metadata": {"oneOf": [_schema("Metadata"), {"type": "null"}]},
        },
        examples=[
            {"operationType": "DEPOSIT", "amount": "50.00"},
            {
                "operationType": "WITHDRAW",
                "amount": "12.50",
                "reference": "order-1234",
                "metadata": {"channel": "web"},
            },
        ],
    ),
    "TransferRequest": _object(
        {
            "fromWalletId": {"allOf": [_schema("Id")], "description": "The payer."},
            "toWalletId": {
                "allOf": [_schema("Id")],
                "description": "The payee: another wallet of the same currency.",
            },
            "amount": _schema("Amount"),
        },
        "A transfer between two wallets of one currency. Unknown fields are refused.",
        optional={
            "reference": {"oneOf": [_schema("Reference"), {"type": "null"}]},
            "metadata": {"oneOf": [_schema("Metadata"), {"type": "null"}]},
        },
        examples=[
            {
                "fromWalletId": "3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f",
                "toWalletId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                "amount": "25.00",
                "reference": "invoice-77",
            }
        ],
    ),
    "BalanceAt": _object(
        {
            "walletId": _schema("Id"),
            "currency": _schema("Currency"),
            "balance": _schema("Money"),
            "at": _schema("Timestamp"),
        },
        "A wallet's balance at a moment: the `balanceAfter` of its last entry made at or "
        "before `at` (one made at `at` counts), zero before its first.",
    ),
    "Transfer": _object(
        {
            "id": _schema("Id"),
            "fromWalletId": _schema("Id"),
            "toWalletId": _schema("Id"),
            "currency": _schema("Currency"),
            "amount": _schema("Money"),
            "holdId": {
                "oneOf": [_schema("Id"), {"type": "null"}],
                "description": "The hold it captured; `null` for a plain transfer.",
            },
            "reference": {"oneOf": [_schema("Reference"), {"type": "null"}]},
            "metadata": _schema("Metadata"),
            "createdAt": _schema("Timestamp"),
            "operations": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": _schema("Operation"),
                "description": "The payer's `TRANSFER_OUT`, then the payee's `TRANSFER_IN`: "
                "two entries sharing the transfer's id, reference and metadata, committed "
                "together.",
            },
        },
        "Money moved between two wallets.",
    ),
    "HoldStatus": {
        "type": "string",
        "enum": [status.value for status in HoldStatus],
        "description": (
            "`HELD` until captured, voided or expired; from `expiresAt` on a hold still held "
            "reads `EXPIRED`, whatever a background job has marked yet."
        ),
    },
    "Hold": _object(
        {
            "id": _schema("Id"),
            "walletId": {"allOf": [_schema("Id")], "description": "The wallet it reserves on."},
            "toWalletId": {
                "oneOf": [_schema("Id"), {"type": "null"}],
                "description": "The wallet a capture pays; `null`: a capture is a withdrawal.",
            },
            "currency": _schema("Currency"),
            "amount": {"allOf": [_schema("Money")], "description": "The amount reserved."},
            "capturedAmount": {
                "oneOf": [_schema("Money"), {"type": "null"}],
                "description": "What the capture took; `null` until it is `CAPTURED`.",
            },
            "status": _schema("HoldStatus"),
            "expiresAt": _schema("Timestamp"),
            "reference": {"oneOf": [_schema("Reference"), {"type": "null"}]},
            "metadata": _schema("Metadata"),
            "createdAt": _schema("Timestamp"),
            "updatedAt": _schema("Timestamp"),
        },
        "Money reserved on a wallet, to be captured or voided later.",
    ),
    "HoldRequest": _object(
        {"amount": _schema("Amount")},
        "A hold on the wallet of the path. Unknown fields are refused; optional fields sent "
        "as `null` are absent.",
        optional={
            "toWalletId": {
                "oneOf": [_schema("Id"), {"type": "null"}],
                "description": "The wallet a capture pays: another wallet of the same "
                "currency. Without it a capture is a withdrawal.",
            },
            "expiresIn": {
                "oneOf": [
                    {
                        "type": "integer",
                        "minimum": MIN_EXPIRES_IN,
                        "maximum": MAX_EXPIRES_IN,
                        "default": DEFAULT_EXPIRES_IN,
                    },
                    {"type": "null"},
                ],
                "description": (
                    f"Whole seconds until it expires, {MIN_EXPIRES_IN} to {MAX_EXPIRES_IN} "
                    f"(30 days), a JSON integer without a fraction or an exponent; absent or "
                    f"`null`: {DEFAULT_EXPIRES_IN} (7 days)."
                ),
            },
            "reference": {"oneOf": [_schema("Reference"), {"type": "null"}]},
            "metadata": {"oneOf": [_schema("Metadata"), {"type": "null"}]},
        },
        examples=[
            {"amount": "20.00"},
            {
                "amount": "20.00",
                "toWalletId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                "expiresIn": 3600,
                "reference": "order-1234",
            },
        ],
    ),
    "CaptureRequest": {
        "type": "object",
        "properties": {"amount": {"oneOf": [_schema("Amount"), {"type": "null"}]}},
        "additionalProperties": False,
        "description": "How much to capture: at most the hold's amount, with at most its "
        "currency's decimals; absent or `null` (or no body at all): the whole hold. Unknown "
        "fields are refused.",
        "examples": [{}, {"amount": "12.50"}],
    },
    "VoidRequest": {
        "type": "object",
        "maxProperties": 0,
        "description": "Nothing to say: `{}`, or no body at all.",
    },
    "HoldCaptured": _object(
        {
            "hold": {"allOf": [_schema("Hold")], "description": "The hold, `CAPTURED`."},
            "operations": {
                "type": "array",
                "minItems": 1,
                "maxItems": 2,
                "items": _schema("Operation"),
                "description": "The entries the capture wrote, each with the `holdId`: the "
                "payer's `WITHDRAW`, or for a hold with `toWalletId` the payer's "
                "`TRANSFER_OUT` and the payee's `TRANSFER_IN` (a transfer with the `holdId`).",
            },
        },
        "A capture's answer: the hold as captured and the entries it wrote.",
    ),
    "NewWallet": {
        "type": "object",
        "properties": {
            "currency": {"oneOf": [_schema("Currency"), {"type": "null"}]},
            "metadata": {"oneOf": [_schema("Metadata"), {"type": "null"}]},
        },
        "additionalProperties": False,
        "description": "A new wallet's currency and metadata; absent or `null`: the default "
        "currency, no metadata. Unknown fields are refused.",
    },
    "AppliedOperation": _object(
        {
            "walletId": _schema("Id"),
            "balance": {
                "allOf": [_schema("Money")],
                "description": "The balance right after this operation.",
            },
            "operation": _schema("Operation"),
        },
        "The operation as applied, with the balance it left.",
    ),
    "WalletPage": _page("Wallet", "oldest first"),
    "OperationPage": _page("Operation", "newest first"),
    "HoldPage": _page("Hold", "newest first"),
    "EventId": {
        "type": "string",
        "pattern": EVENT_ID_PATTERN,
        "description": "An event's id: a decimal string of a positive integer; later commits "
        "have larger ones.",
        "examples": ["1042"],
    },
    "EventType": {
        "type": "string",
        "enum": [kind.value for kind in EventType],
        "description": "What changed; it says which schema the event's `data` has.",
    },
    "Event": {
        **_object(
            {
                "id": _schema("EventId"),
                "type": _schema("EventType"),
                "walletId": {
                    "allOf": [_schema("Id")],
                    "description": "Whose change it is: the wallet created or operated on, "
                    "a transfer's payer, a hold's wallet.",
                },
                "createdAt": _schema("Timestamp"),
                "data": {
                    "oneOf": [
                        _schema(name)
                        for name in ("Wallet", "Operation", "Transfer", "Hold", "HoldCaptured")
                    ],
                    "description": "The changed thing as the API answered the change: the "
                    "schema `type` names (see `allOf`).",
                },
            },
            "One committed change.",
        ),
        "allOf": [
            {
                "if": {"properties": {"type": {"const": kind.value}}},
                "then": {"properties": {"data": data}},
            }
            for kind, data in EVENT_DATA.items()
        ],
        "examples": [
            {
                "id": "1042",
                "type": EventType.WALLET_CREATED.value,
                "walletId": "3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f",
                "createdAt": "2026-11-27T16:03:02.123456Z",
                "data": {
                    "id": "3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f",
                    "currency": "USD",
                    "balance": "0.00",
                    "heldBalance": "0.00",
                    "availableBalance": "0.00",
                    "metadata": {},
                    "createdAt": "2026-11-27T16:03:02.123456Z",
                    "updatedAt": "2026-11-27T16:03:02.123456Z",
                },
            }
        ],
    },
    "EventPage": _object(
        {
            "items": {"type": "array", "maxItems": MAX_PAGE_SIZE, "items": _schema("Event")},
            "lastEventId": {
                "oneOf": [_schema("EventId"), {"type": "null"}],
                "description": "The id of the page's last event, to pass as `after` for the "
                "next page; `null` when the page is empty (then read again with the same "
                "`after`).",
            },
        },
        "One page of events, in commit order (ids ascending).",
    ),
    "FieldError": _object(
        {
            "field": {"type": "string", "description": "The field, parameter or `body`."},
            "message": {"type": "string"},
        }
    ),
    "Problem": {
        "type": "object",
        "description": (
            "RFC 9457 problem details. `errors` comes only with validation problems. "
            "Some problems carry more members (see `ReadinessProblem`)."
        ),
        "required": ["type", "title", "status", "detail", "code", "requestId"],
        "properties": {
            "type": {
                "type": "string",
                "format": "uri-reference",
                "description": f"Names the problem, e.g. `{INSUFFICIENT_FUNDS.type}`.",
            },
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "code": {"type": "string", "enum": [kind.code for kind in ANSWERED]},
            "requestId": {
                "type": "string",
                "pattern": REQUEST_ID_PATTERN,
                "description": "Equals the `X-Request-ID` response header.",
            },
            "errors": {"type": "array", "minItems": 1, "items": _schema("FieldError")},
        },
        "examples": [
            {
                "type": INSUFFICIENT_FUNDS.type,
                "title": INSUFFICIENT_FUNDS.title,
                "status": INSUFFICIENT_FUNDS.status,
                "detail": "Balance 10.00 is less than 50.00",
                "code": INSUFFICIENT_FUNDS.code,
                "requestId": "4b1d0c9e2f7a4c61a1e8d2b7c3f90a15",
            }
        ],
    },
    "Health": _object({"status": {"const": "ok"}}, "The process is up."),
    "CacheState": {
        "type": "string",
        "enum": ["ok", "down", "disabled"],
        "description": "The cache only speeds reads up; `down` does not make the service unready.",
    },
    "Readiness": _object(
        {
            "status": {"const": "ok"},
            "database": {"const": "ok"},
            "cache": _schema("CacheState"),
        },
        "The database answers.",
    ),
    "ReadinessProblem": {
        "description": "Not ready: a problem that also says the database's and cache's state.",
        "allOf": [
            _schema("Problem"),
            {
                "type": "object",
                "required": ["database", "cache"],
                "properties": {"database": {"const": "down"}, "cache": _schema("CacheState")},
            },
        ],
    },
}

# -- headers and parameters ----------------------------------------------------------------

HEADERS: dict[str, Json] = {
    "XRequestID": {
        "description": "The client's `X-Request-ID` when well formed, else a new one.",
        "required": True,
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    },
    "TransferLocation": {
        "description": "The URL of the new transfer.",
        "required": True,
        "schema": {
            "type": "string",
            "format": "uri-reference",
            "pattern": r"^/api/v1/transfers/" + UUID_PATTERN[1:],
        },
    },
    "HoldLocation": {
        "description": "The URL of the new hold.",
        "required": True,
        "schema": {
            "type": "string",
            "format": "uri-reference",
            "pattern": r"^/api/v1/holds/" + UUID_PATTERN[1:],
        },
    },
    "Location": {
        "description": "The URL of the new wallet.",
        "required": True,
        "schema": {
            "type": "string",
            "format": "uri-reference",
            "pattern": r"^/api/v1/wallets/" + UUID_PATTERN[1:],
        },
    },
    "RetryAfter": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "Allow": {
        "description": "The methods this path accepts, e.g. `GET, HEAD, POST`.",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
    },
    "WWWAuthenticate": {
        "description": "How to authenticate: `Bearer`.",
        "required": True,
        "schema": {"const": "Bearer"},
    },
    "IdempotentReplayed": {
        "description": (
            "`true` when this is the recorded answer to an earlier request with the same "
            "`Idempotency-Key`: nothing ran again."
        ),
        "required": False,
        "schema": {"const": "true"},
    },
}

PARAMETERS: dict[str, Json] = {
    "IdempotencyKey": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": (
            "Makes the POST safe to retry: 1 to 255 visible ASCII characters, one key per "
            "request (keys are global). The first request's outcome is recorded in the same "
            "transaction as its effect and kept at least 24 hours; the same key with the same "
            "request (same method, path and body meaning: key order, spacing and `5` vs "
            '`"5.00"` do not matter) gets that answer again, status and body, with '
            "`Idempotent-Replayed: true`, and nothing is applied twice, recorded refusals "
            f"included. The same key with another request is {IDEMPOTENCY_KEY_REUSED.status}; "
            f"while the first is still running, {IDEMPOTENCY_KEY_IN_USE.status}. A request "
            "that fails validation runs nothing and is not recorded."
        ),
        "schema": {"type": "string", "pattern": r"^[!-~]{1,255}$"},
    },
    "WalletId": {
        "name": "walletId",
        "in": "path",
        "required": True,
        "description": (
            f"A wallet id, 8-4-4-4-12 hex digits in either case; else {VALIDATION.status}."
        ),
        "schema": {"type": "string", "format": "uuid", "pattern": UUID_ANY_CASE_PATTERN},
    },
    "TransferId": {
        "name": "transferId",
        "in": "path",
        "required": True,
        "description": (
            f"A transfer id, 8-4-4-4-12 hex digits in either case; else {VALIDATION.status}."
        ),
        "schema": {"type": "string", "format": "uuid", "pattern": UUID_ANY_CASE_PATTERN},
    },
    "HoldId": {
        "name": "holdId",
        "in": "path",
        "required": True,
        "description": (
            f"A hold id, 8-4-4-4-12 hex digits in either case; else {VALIDATION.status}."
        ),
        "schema": {"type": "string", "format": "uuid", "pattern": UUID_ANY_CASE_PATTERN},
    },
    "HoldStatus": {
        "name": "status",
        "in": "query",
        "required": False,
        "description": (
            "Only the holds with this status now (a hold past its `expiresAt` is `EXPIRED`); "
            "give it at most once. A cursor belongs to the list of its status."
        ),
        "schema": _schema("HoldStatus"),
    },
    "Limit": {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "How many items a page holds at most; give it at most once.",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_PAGE_SIZE,
            "default": DEFAULT_PAGE_SIZE,
        },
    },
    "Reference": {
        "name": "reference",
        "in": "query",
        "required": False,
        "description": (
            "Only the operations of exactly this reference; give it at most once. A cursor "
            "belongs to the list of its reference."
        ),
        "schema": _schema("Reference"),
    },
    "At": {
        "name": "at",
        "in": "query",
        "required": False,
        "description": (
            "The moment, RFC 3339 with an offset (`Z` or `±hh:mm`), no later than the "
            "server's time now; give it at most once. Without it, the balance now."
        ),
        "schema": {"type": "string", "format": "date-time"},
        "examples": {"utc": {"value": "2026-12-05T10:00:00Z"}},
    },
    "Cursor": {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": (
            "The `nextCursor` of the previous page of the same list, unchanged; "
            "give it at most once."
        ),
        "schema": {"type": "string", **CURSOR_TEXT},
    },
    "After": {
        "name": "after",
        "in": "query",
        "required": False,
        "description": (
            "Only events with a larger id: the `lastEventId` of the previous page. An id is "
            "a decimal string of at most 19 digits; give it at most once. Without it, from "
            f"the oldest event kept. Ids never pass {MAX_EVENT_ID}: a larger `after` reads "
            "an empty page."
        ),
        "schema": {"type": "string", "pattern": AFTER_PATTERN},
        "examples": {"next page": {"value": "1042"}},
    },
    "EventsOfWallet": {
        "name": "walletId",
        "in": "query",
        "required": False,
        "description": (
            "Only this wallet's own events and the transfers and captures that pay it; give "
            f"it at most once. 8-4-4-4-12 hex digits in either case; else {VALIDATION.status}."
        ),
        "schema": {"type": "string", "format": "uuid", "pattern": UUID_ANY_CASE_PATTERN},
    },
    "RequestId": {
        "name": "X-Request-ID",
        "in": "header",
        "required": False,
        "description": (
            "Your id for this request, echoed in the response: 1 to 128 letters, digits, "
            "`-`, `_`, `.` or `:`. Any other value is replaced by a new id, not refused."
        ),
        "schema": {"type": "string"},
    },
}

# -- responses -----------------------------------------------------------------------------


def _headers(*names: str) -> Json:
    """Each header by its name, referring to the component of that name (without dashes),
    or to the one given after a colon (``Location:TransferLocation``)."""
    headers = {}
    for given in ("X-Request-ID", *names):
        name, _, component = given.partition(":")
        headers[name] = _ref("headers", component or name.replace("-", ""))
    return headers


def _json(description: str, schema: str, *headers: str, **extra: Any) -> Json:
    return {
        "description": description,
        "headers": _headers(*headers),
        "content": {JSON: {"schema": _schema(schema)}},
        **extra,
    }


@dataclass(frozen=True, slots=True)
class ProblemResponse:
    """A problem response: its status and the codes its body names come from its kinds."""

    description: str
    kinds: tuple[ProblemKind, ...]
    headers: tuple[str, ...] = ()
    schema: str = "Problem"

    @property
    def status(self) -> int:
        """The one status its kinds share."""
        (status,) = {kind.status for kind in self.kinds}
        return status

    def document(self) -> Json:
        narrowed = {
            "type": "object",
            "properties": {
                "status": {"const": self.status},
                "code": {"enum": [kind.code for kind in self.kinds]},
            },
        }
        schema = {"allOf": [_schema(self.schema), narrowed]}
        return {
            "description": self.description,
            "headers": _headers(*self.headers),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": schema}},
        }


def _problem(
    description: str, *kinds: ProblemKind, headers: tuple[str, ...] = (), schema: str = "Problem"
) -> ProblemResponse:
    return ProblemResponse(description, kinds, headers, schema)


PROBLEM_RESPONSES = {
    "ValidationError": _problem(
        "The request is malformed: body, id, `limit`, `cursor`, `reference`, `status`, "
        "`after` or `walletId`, or "
        "(with API keys configured) more than one `Authorization` header. `errors` lists each "
        "field.",
        VALIDATION,
    ),
    "OperationRefused": _problem(
        f"`{VALIDATION.code}`: the request is malformed. `{INSUFFICIENT_FUNDS.code}`: a "
        "withdrawal larger than the available balance (`balance` less what holds reserve). "
        f"`{BALANCE_LIMIT.code}`: a deposit past the maximum balance. Nothing changed. A "
        "refusal recorded under an `Idempotency-Key` is answered again as it was, `requestId` "
        "included; so is `X-Request-ID`, unless the retry names its own.",
        VALIDATION,
        INSUFFICIENT_FUNDS,
        BALANCE_LIMIT,
        headers=("Idempotent-Replayed",),
    ),
    "TransferRefused": _problem(
        f"`{VALIDATION.code}`: the request is malformed (the same wallet on both sides "
        f"included), or the amount has more decimals than the currency. "
        f"`{CURRENCY_MISMATCH.code}`: the wallets hold different currencies. "
        f"`{INSUFFICIENT_FUNDS.code}`: the payer's available balance is below the amount. "
        f"`{BALANCE_LIMIT.code}`: the payee would pass the maximum balance. Checked in that "
        "order, after both wallets are found; nothing moved. A refusal recorded under an "
        "`Idempotency-Key` is answered again as it was.",
        VALIDATION,
        CURRENCY_MISMATCH,
        INSUFFICIENT_FUNDS,
        BALANCE_LIMIT,
        headers=("Idempotent-Replayed",),
    ),
    "WalletNotFound": _problem("No wallet has this id.", WALLET_NOT_FOUND),
    "TransferWalletNotFound": _problem(
        "One of the two wallets does not exist; the detail names which (the payer is "
        "looked up first). Nothing moved.",
        WALLET_NOT_FOUND,
    ),
    "TransferNotFound": _problem("No transfer has this id.", TRANSFER_NOT_FOUND),
    "HoldRefused": _problem(
        f"`{VALIDATION.code}`: the request is malformed (`toWalletId` naming the hold's own "
        f"wallet included), or the amount has more decimals than the currency. "
        f"`{CURRENCY_MISMATCH.code}`: `toWalletId` holds another currency. "
        f"`{INSUFFICIENT_FUNDS.code}`: the wallet's available balance is below the amount. "
        "Checked in that order, after both wallets are found; nothing was reserved. A "
        "refusal recorded under an `Idempotency-Key` is answered again as it was.",
        VALIDATION,
        CURRENCY_MISMATCH,
        INSUFFICIENT_FUNDS,
        headers=("Idempotent-Replayed",),
    ),
    "HoldWalletNotFound": _problem(
        "The hold's wallet or its `toWalletId` does not exist; the detail names which (the "
        "hold's wallet is looked up first). Nothing was reserved.",
        WALLET_NOT_FOUND,
    ),
    "HoldNotFound": _problem("No hold has this id.", HOLD_NOT_FOUND),
    "CaptureRefused": _problem(
        f"`{VALIDATION.code}`: the request is malformed, or (once the hold is found and "
        "`HELD`) its amount is more than the hold's or has more decimals than its currency. "
        f"`{BALANCE_LIMIT.code}`: the payee would pass the maximum balance; the hold stays "
        "`HELD`. A capture never fails for funds: they were held. A refusal recorded "
        "under an `Idempotency-Key` is answered again as it was.",
        VALIDATION,
        BALANCE_LIMIT,
        headers=("Idempotent-Replayed",),
    ),
    "HoldConflict": _problem(
        f"`{HOLD_NOT_ACTIVE.code}`: the hold is no longer `HELD` (captured, voided or expired; "
        f"the detail names its status), so nothing changed. `{IDEMPOTENCY_KEY_IN_USE.code}`: "
        "another request with this `Idempotency-Key` is still running; retry later.",
        HOLD_NOT_ACTIVE,
        IDEMPOTENCY_KEY_IN_USE,
    ),
    "MethodNotAllowed": _problem(
        "The path exists but not with this method; `Allow` lists the methods it accepts.",
        METHOD_NOT_ALLOWED,
        headers=("Allow",),
    ),
    "PayloadTooLarge": _problem(
        f"The body is larger than {MAX_BODY_BYTES} bytes.", PAYLOAD_TOO_LARGE
    ),
    "UnsupportedMediaType": _problem(
        "The request has a body whose `Content-Type` is not `application/json`; nothing changed.",
        UNSUPPORTED_MEDIA_TYPE,
    ),
    "Unauthorized": _problem(
        "Only when the service is configured with API keys (`WALLET_API_KEYS`): the request "
        "has no `Authorization: Bearer <key>` with a valid key.",
        UNAUTHORIZED,
        headers=("WWW-Authenticate",),
    ),
    "IdempotencyKeyInUse": _problem(
        "Another request with this `Idempotency-Key` is still running; retry later.",
        IDEMPOTENCY_KEY_IN_USE,
    ),
    "IdempotencyKeyReused": _problem(
        "This `Idempotency-Key` was used before for a different request; nothing ran.",
        IDEMPOTENCY_KEY_REUSED,
    ),
    "EventsExpired": _problem(
        "Events after `after` are no longer kept (`WALLET_EVENTS_RETENTION_DAYS`): some the "
        "reader has not seen are gone. The detail names the `after` to go on from; without "
        "`after` the feed starts at the oldest event kept.",
        EVENTS_EXPIRED,
    ),
    "InternalError": _problem(
        "A bug. The body holds no details; its `requestId` finds them in the log.",
        INTERNAL_ERROR,
    ),
    "ServiceUnavailable": _problem(
        "The database is unreachable or did not answer in time; the outcome of a POST is "
        "unknown. Try again after `Retry-After` seconds.",
        SERVICE_UNAVAILABLE,
        headers=("Retry-After",),
    ),
}
RESPONSES = {name: response.document() for name, response in PROBLEM_RESPONSES.items()}


def _answers(*names: str) -> Json:
    """The named problem responses, each referred to under its own status."""
    return {str(PROBLEM_RESPONSES[name].status): _ref("responses", name) for name in names}


# Every route answers these; a route that reads a body or the database adds its own.
ANY_ROUTE = _answers("MethodNotAllowed", "InternalError")
WITH_BODY = _answers("PayloadTooLarge", "UnsupportedMediaType")
WITH_DATABASE = _answers("ServiceUnavailable")
VALIDATED = _answers("ValidationError")
KEYS_CONFIGURED = _answers("Unauthorized")
KEYED = _answers("IdempotencyKeyInUse", "IdempotencyKeyReused")
FINDS_WALLET = _answers("WalletNotFound")
OPEN_TAGS = ("health", "meta")  # no key needed, even with keys configured: no data there

# -- paths ---------------------------------------------------------------------------------


def _operation(
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    responses: Json,
    parameters: tuple[str, ...] = (),
    request_body: Json | None = None,
) -> Json:
    operation: Json = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
        "parameters": [_ref("parameters", name) for name in (*parameters, "RequestId")],
        "responses": dict(sorted({**responses, **ANY_ROUTE}.items())),
    }
    if tag in OPEN_TAGS:
        operation["security"] = []
    else:
        operation["responses"] = dict(sorted({**operation["responses"], **KEYS_CONFIGURED}.items()))
        operation["security"] = [{}, {"apiKey": []}]
    if request_body is not None:
        operation["requestBody"] = request_body
    return operation


def _wallet_link(operation_id: str, description: str) -> Json:
    return {
        "operationId": operation_id,
        "parameters": {"walletId": "$response.body#/id"},
        "description": description,
    }


def _hold_link(operation_id: str, description: str) -> Json:
    return {
        "operationId": operation_id,
        "parameters": {"holdId": "$response.body#/id"},
        "description": description,
    }


NOT_READY = _problem(
    "The database does not answer; try again after `Retry-After` seconds.",
    SERVICE_UNAVAILABLE,
    headers=("Retry-After",),
    schema="ReadinessProblem",
)


CREATED_HOLD = _json(
    "The new hold, `HELD`; the wallet's `heldBalance` grew by its amount.",
    "Hold",
    "Location:HoldLocation",
    "Idempotent-Replayed",
    links={
        "GetHold": _hold_link("getHold", "Read the hold."),
        "CaptureHold": _hold_link("captureHold", "Capture it, whole or in part."),
        "VoidHold": _hold_link("voidHold", "Release it."),
    },
)
# Capture and void change a hold: one no longer held is a conflict, as a key in use is.
CHANGES_HOLD = {
    **_answers("HoldNotFound", "HoldConflict", "IdempotencyKeyReused"),
    **WITH_BODY,
    **WITH_DATABASE,
}

CREATED_WALLET = _json(
    "The new wallet, with a balance of 0.",
    "Wallet",
    "Location",
    "Idempotent-Replayed",
    links={
        "GetWallet": _wallet_link("getWallet", "Read the new wallet."),
        "PostOperation": _wallet_link("postOperation", "Deposit into or withdraw from it."),
        "ListOperations": _wallet_link("listOperations", "Read its ledger."),
    },
)

PATHS: dict[str, Json] = {
    "/api/v1/wallets": {
        "post": _operation(
            "createWallet",
            "wallets",
            "Create a wallet",
            "Creates a wallet with a balance of 0 in the `currency` asked for; an absent "
            "body, `{}` or a `null` currency gives the service's default "
            "(`WALLET_DEFAULT_CURRENCY`, USD unless set).",
            {"201": CREATED_WALLET, **VALIDATED, **KEYED, **WITH_BODY, **WITH_DATABASE},
            parameters=("IdempotencyKey",),
            request_body={
                "required": False,
                "content": {
                    JSON: {
                        "schema": _schema("NewWallet"),
                        "examples": {
                            "default currency": {"value": {}},
                            "euro": {"value": {"currency": "EUR"}},
                            "with metadata": {
                                "value": {"currency": "USD", "metadata": {"owner": "u-42"}}
                            },
                        },
                    }
                },
            },
        ),
        "get": _operation(
            "listWallets",
            "wallets",
            "List wallets",
            "Every wallet, oldest first, a page at a time.",
            {
                "200": _json("A page of wallets.", "WalletPage"),
                **VALIDATED,
                **WITH_DATABASE,
            },
            parameters=("Limit", "Cursor"),
        ),
    },
    "/api/v1/wallets/{walletId}": {
        "get": _operation(
            "getWallet",
            "wallets",
            "Get a wallet",
            "The wallet and its balance, never older than a POST that already answered.",
            {
                "200": _json("The wallet.", "Wallet"),
                **VALIDATED,
                **FINDS_WALLET,
                **WITH_DATABASE,
            },
            parameters=("WalletId",),
        ),
    },
    "/api/v1/wallets/{walletId}/operation": {
        "post": _operation(
            "postOperation",
            "operations",
            "Deposit or withdraw",
            "Applies one operation atomically and appends it to the wallet's ledger. "
            "A refused operation changes nothing.",
            {
                "200": _json(
                    "The operation and the balance right after it.",
                    "AppliedOperation",
                    "Idempotent-Replayed",
                ),
                **_answers("OperationRefused"),
                **FINDS_WALLET,
                **KEYED,
                **WITH_BODY,
                **WITH_DATABASE,
            },
            parameters=("WalletId", "IdempotencyKey"),
            request_body={
                "required": True,
                "content": {JSON: {"schema": _schema("OperationRequest")}},
            },
        ),
    },
    "/api/v1/wallets/{walletId}/operations": {
        "get": _operation(
            "listOperations",
            "operations",
            "List a wallet's operations",
            "The wallet's ledger, newest first, a page at a time; with `reference`, only "
            "its operations of that reference.",
            {
                "200": _json("A page of operations.", "OperationPage"),
                **VALIDATED,
                **FINDS_WALLET,
                **WITH_DATABASE,
            },
            parameters=("WalletId", "Limit", "Cursor", "Reference"),
        ),
    },
    "/api/v1/wallets/{walletId}/balance": {
        "get": _operation(
            "getBalanceAt",
            "operations",
            "Get a wallet's balance at a moment",
            "The wallet's balance as its ledger stood at `at`, found by one indexed lookup "
            "of its last entry made by then; zero before its first. Without `at`, the "
            "balance now.",
            {
                "200": _json("The balance at the moment.", "BalanceAt"),
                **VALIDATED,
                **FINDS_WALLET,
                **WITH_DATABASE,
            },
            parameters=("WalletId", "At"),
        ),
    },
    "/api/v1/transfers": {
        "post": _operation(
            "createTransfer",
            "transfers",
            "Transfer between wallets",
            "Moves `amount` from `fromWalletId` to `toWalletId`, wallets of one currency: "
            "the payer's `TRANSFER_OUT` and the payee's `TRANSFER_IN` commit together or "
            "not at all. Concurrent transfers in any directions never deadlock; many payers "
            "paying one payee are applied in batches.",
            {
                "201": _json(
                    "The transfer and its two entries.",
                    "Transfer",
                    "Location:TransferLocation",
                    "Idempotent-Replayed",
                    links={
                        "GetTransfer": {
                            "operationId": "getTransfer",
                            "parameters": {"transferId": "$response.body#/id"},
                            "description": "Read the transfer again.",
                        }
                    },
                ),
                **_answers("TransferRefused", "TransferWalletNotFound"),
                **KEYED,
                **WITH_BODY,
                **WITH_DATABASE,
            },
            parameters=("IdempotencyKey",),
            request_body={
                "required": True,
                "content": {JSON: {"schema": _schema("TransferRequest")}},
            },
        ),
    },
    "/api/v1/transfers/{transferId}": {
        "get": _operation(
            "getTransfer",
            "transfers",
            "Get a transfer",
            "The transfer and its two ledger entries.",
            {
                "200": _json("The transfer.", "Transfer"),
                **VALIDATED,
                **_answers("TransferNotFound"),
                **WITH_DATABASE,
            },
            parameters=("TransferId",),
        ),
    },
    "/api/v1/wallets/{walletId}/holds": {
        "post": _operation(
            "createHold",
            "holds",
            "Place a hold",
            "Reserves `amount` of the wallet's available balance until it is captured, voided "
            "or expires (`expiresIn` seconds from now); no ledger entry is written. With "
            "`toWalletId`, a wallet of the same currency, a capture pays that wallet; without "
            "it, a capture is a withdrawal.",
            {
                "201": CREATED_HOLD,
                **_answers("HoldRefused", "HoldWalletNotFound"),
                **KEYED,
                **WITH_BODY,
                **WITH_DATABASE,
            },
            parameters=("WalletId", "IdempotencyKey"),
            request_body={
                "required": True,
                "content": {JSON: {"schema": _schema("HoldRequest")}},
            },
        ),
        "get": _operation(
            "listHolds",
            "holds",
            "List a wallet's holds",
            "The wallet's holds, newest first, a page at a time; with `status`, only those "
            "with that status now.",
            {
                "200": _json("A page of holds.", "HoldPage"),
                **VALIDATED,
                **FINDS_WALLET,
                **WITH_DATABASE,
            },
            parameters=("WalletId", "HoldStatus", "Limit", "Cursor"),
        ),
    },
    "/api/v1/holds/{holdId}": {
        "get": _operation(
            "getHold",
            "holds",
            "Get a hold",
            "The hold with its status now: from `expiresAt` on, a hold still held reads `EXPIRED`.",
            {
                "200": _json("The hold.", "Hold"),
                **VALIDATED,
                **_answers("HoldNotFound"),
                **WITH_DATABASE,
            },
            parameters=("HoldId",),
        ),
    },
    "/api/v1/holds/{holdId}/capture": {
        "post": _operation(
            "captureHold",
            "holds",
            "Capture a hold",
            "Takes `amount` of a `HELD` hold (the whole hold without one), once, and releases "
            "the rest: a `WITHDRAW` from its wallet, or for a hold with `toWalletId` a "
            "transfer to that wallet (readable at `/api/v1/transfers/{id}`), its entries "
            "naming the hold. Checked in this order: an unknown hold, one no longer held, "
            "the amount, the payee's maximum balance. A capture racing the expiry is decided "
            "by the database's clock, never both.",
            {
                "200": _json(
                    "The hold as captured and the entries the capture wrote.",
                    "HoldCaptured",
                    "Idempotent-Replayed",
                ),
                **_answers("CaptureRefused"),
                **CHANGES_HOLD,
            },
            parameters=("HoldId", "IdempotencyKey"),
            request_body={
                "required": False,
                "content": {JSON: {"schema": _schema("CaptureRequest")}},
            },
        ),
    },
    "/api/v1/holds/{holdId}/void": {
        "post": _operation(
            "voidHold",
            "holds",
            "Void a hold",
            "Releases the whole of a `HELD` hold; no ledger entry is written.",
            {
                "200": _json("The hold, `VOIDED`.", "Hold", "Idempotent-Replayed"),
                **VALIDATED,
                **CHANGES_HOLD,
            },
            parameters=("HoldId", "IdempotencyKey"),
            request_body={
                "required": False,
                "content": {JSON: {"schema": _schema("VoidRequest")}},
            },
        ),
    },
    "/api/v1/events": {
        "get": _operation(
            "listEvents",
            "events",
            "Read the event feed",
            "Every committed change as an event, in commit order: ids ascending, each larger "
            "than `after`. Paging with `after` = the previous page's `lastEventId` gives every "
            "event exactly once, in id order, and never later a smaller id than one already "
            "given: an event is listed only once no commit still running can take a smaller "
            "one. Per wallet, events follow ledger order. With `walletId`, only that wallet's "
            "own events and the transfers and captures that pay it; an unknown wallet is "
            f"{WALLET_NOT_FOUND.status}, as for every read of one wallet. Other query "
            "parameters are ignored, as on every list.",
            {
                "200": _json("A page of events.", "EventPage"),
                **VALIDATED,
                **FINDS_WALLET,
                **_answers("EventsExpired"),
                **WITH_DATABASE,
            },
            parameters=("After", "Limit", "EventsOfWallet"),
        ),
    },
    "/health/live": {
        "get": _operation(
            "live",
            "health",
            "Liveness",
            "The process is up. Touches neither the database nor the cache.",
            {"200": _json("Alive.", "Health")},
        ),
    },
    "/health/ready": {
        "get": _operation(
            "ready",
            "health",
            "Readiness",
            "Ready while the database answers. A cache outage is reported, not unready.",
            {
                "200": _json("Ready.", "Readiness"),
                str(NOT_READY.status): NOT_READY.document(),
            },
        ),
    },
    "/api/v1/openapi.json": {
        "get": _operation(
            "openapiJson",
            "meta",
            "This document",
            "The OpenAPI 3.1 description of the API.",
            {
                "200": {
                    "description": "The document.",
                    "headers": _headers(),
                    "content": {
                        JSON: {
                            "schema": {
                                "type": "object",
                                "required": ["openapi", "info", "paths"],
                                "properties": {"openapi": {"const": "3.1.0"}},
                            }
                        }
                    },
                }
            },
        ),
    },
}

TAGS = [
    {"name": "wallets", "description": "Create, list and read wallets."},
    {"name": "operations", "description": "Move money and read the ledger."},
    {"name": "transfers", "description": "Move money between wallets."},
    {"name": "holds", "description": "Reserve money now, capture or void it later."},
    {"name": "events", "description": "Every change, in the order it committed."},
    {"name": "health", "description": "Probes for orchestrators and load balancers."},
    {"name": "meta", "description": "The API's own description."},
]


def _build() -> Json:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Wallet API", "version": "1.0.0", "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "tags": TAGS,
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "parameters": PARAMETERS,
            "headers": HEADERS,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "Only when the service is configured with `WALLET_API_KEYS`: every "
                        "`/api/v1` request then needs `Authorization: Bearer <key>`, given "
                        f"once (two `Authorization` headers are {VALIDATION.status} "
                        f"`{VALIDATION.code}`). This "
                        "document and the health endpoints stay open. Without keys "
                        "configured, `Authorization` is not read at all."
                    ),
                }
            },
        },
    }


@functools.cache
def served_json() -> str:
    """The document as served: it is static, so it is built and encoded once per process."""
    return json.dumps(_build(), separators=(",", ":"))


def document() -> Json:
    """The document as data: a fresh deep copy, safe for the caller to change."""
    decoded: Json = json.loads(served_json())
    return decoded


@routes.get(DOCUMENT_PATH)
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(text=served_json(), content_type=JSON)
