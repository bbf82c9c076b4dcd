"""Request parsing: strict JSON, ids, paging and operations, turned into domain values.

Everything a client sends is checked here, completely, before any use case runs.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, NoReturn, TypeGuard
from uuid import UUID

from aiohttp import hdrs, web

from wallet.domain.currency import Currency, InvalidCurrency, parse_currency
from wallet.domain.errors import FieldError, ValidationFailed
from wallet.domain.holds import (
    DEFAULT_EXPIRES_IN,
    MAX_EXPIRES_IN,
    MIN_EXPIRES_IN,
    CaptureCommand,
    HoldCommand,
    HoldStatus,
)
from wallet.domain.idempotency import HEADER, Idempotency, parse_key
from wallet.domain.model import REQUESTABLE, OperationCommand, OperationType
from wallet.domain.money import MAX_LITERAL_LENGTH, Amount, InvalidAmount, parse_amount
from wallet.domain.references import (
    NO_METADATA,
    InvalidReference,
    Metadata,
    metadata_errors,
    parse_reference,
)
from wallet.domain.transfers import TransferCommand
from wallet.entrypoints.http.problems import (
    CLIENT_CLOSED,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    Problem,
)
from wallet.entrypoints.http.request_keys import REQUEST_ID
from wallet.uuids import parse_uuid

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy  # aiohttp's headers

MAX_BODY_BYTES = 65_536
MAX_JSON_DEPTH = 32
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_EVENT_ID = 2**63 - 1  # the largest id the feed's bigint sequence can give

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LIMIT = re.compile(r"[0-9]{1,4}", re.ASCII)
_EVENT_ID = re.compile(r"[0-9]{1,19}", re.ASCII)
_RFC3339 = re.compile(  # date T time, a fraction of up to nine digits, then the offset
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+ -][0-9]{2}:[0-9]{2})"  # a space: a "+" sent unescaped in the query
)
_OPERATION_FIELDS = ("operationType", "amount")
_OPTIONAL_OPERATION_FIELDS = ("reference", "metadata")
_NEW_WALLET_FIELDS = ("currency", "metadata")
_TRANSFER_FIELDS = ("fromWalletId", "toWalletId", "amount")
_HOLD_FIELDS = ("amount",)
_OPTIONAL_HOLD_FIELDS = ("toWalletId", "expiresIn")
_HOLD_STATUSES = {status.value: status for status in HoldStatus}
_OPERATION_TYPES = {kind.value: kind for kind in REQUESTABLE}
# The content codings a body may come in, by the window bits zlib decodes each with;
# identity needs no decoding. (aiohttp's own decoding is off: see create_app.)
_CONTENT_CODINGS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}
ACCEPTED_CONTENT_CODINGS = ("identity", *_CONTENT_CODINGS)


class _InvalidJson(ValueError):
    """The body is not JSON this service accepts."""


class _NoBody:
    """The request carried no body at all (as opposed to a JSON ``null``)."""

    def __repr__(self) -> str:
        return "NO_BODY"


NO_BODY = _NoBody()


def parse_wallet_id(request: web.Request) -> UUID:
    raw = request.match_info["wallet_id"]
    if not _UUID.fullmatch(raw):
        _fail("walletId", "must be a UUID like 3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f")
    return parse_uuid(raw)


def parse_transfer_id(request: web.Request) -> UUID:
    raw = request.match_info["transfer_id"]
    if not _UUID.fullmatch(raw):
        _fail("transferId", "must be a UUID like 3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f")
    return parse_uuid(raw)


def parse_hold_id(request: web.Request) -> UUID:
    raw = request.match_info["hold_id"]
    if not _UUID.fullmatch(raw):
        _fail("holdId", "must be a UUID like 3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f")
    return parse_uuid(raw)


def parse_hold_status(request: web.Request) -> HoldStatus | None:
    """The ``status`` filter of a list of holds, given at most once; None without one."""
    given = _query_once(request, "status")
    if given is None:
        return None
    status = _HOLD_STATUSES.get(given)
    if status is None:
        _fail("status", f"must be one of {', '.join(_HOLD_STATUSES)}")
    return status


def parse_page(request: web.Request) -> tuple[int, str | None]:
    """The ``limit`` and ``cursor`` query parameters, each given at most once."""
    errors: list[FieldError] = []
    limit = _limit(request, errors)
    cursors = request.query.getall("cursor", [])
    if len(cursors) > 1:
        errors.append(FieldError("cursor", "must be given at most once"))
    elif cursors and not cursors[0]:
        errors.append(FieldError("cursor", "must not be empty"))
    if errors:
        raise ValidationFailed(errors, _summary(errors))
    return limit, cursors[0] if cursors else None


def parse_event_query(request: web.Request) -> tuple[int | None, int, UUID | None]:
    """The feed's ``after`` (None without it: from the oldest event kept), ``limit`` and
    ``walletId`` query parameters, each given at most once; every error at once."""
    errors: list[FieldError] = []
    after = _after(request, errors)
    limit = _limit(request, errors)
    wallet_id = _wallet_filter(request, errors)
    if errors:
        raise ValidationFailed(errors, _summary(errors))
    return after, limit, wallet_id


def _after(request: web.Request, errors: list[FieldError]) -> int | None:
    """The event id ``after``: up to 19 decimal digits. One past the feed's largest id
    reads as that id: no event comes after either."""
    given = _given_once(request, "after", errors)
    if given is None:
        return None
    if _EVENT_ID.fullmatch(given):
        return min(int(given), MAX_EVENT_ID)
    message = "must be an event id: a whole number of at most 19 digits, digits only"
    errors.append(FieldError("after", message))
    return None


def _wallet_filter(request: web.Request, errors: list[FieldError]) -> UUID | None:
    """The ``walletId`` a list is filtered by, if any."""
    given = _given_once(request, "walletId", errors)
    if given is None:
        return None
    if _UUID.fullmatch(given):
        return parse_uuid(given)
    errors.append(FieldError("walletId", "must be a wallet id (a UUID)"))
    return None


def _limit(request: web.Request, errors: list[FieldError]) -> int:
    """The ``limit`` of a page (the default without one); what is wrong goes to ``errors``."""
    given = _given_once(request, "limit", errors)
    if given is None:
        return DEFAULT_PAGE_SIZE
    if _LIMIT.fullmatch(given) and 1 <= int(given) <= MAX_PAGE_SIZE:
        return int(given)
    errors.append(FieldError("limit", f"must be an integer from 1 to {MAX_PAGE_SIZE}"))
    return DEFAULT_PAGE_SIZE


def _given_once(request: web.Request, name: str, errors: list[FieldError]) -> str | None:
    """The query parameter ``name``; given more than once, an error in ``errors`` and None."""
    given = request.query.getall(name, [])
    if len(given) > 1:
        errors.append(FieldError(name, "must be given at most once"))
        return None
    return given[0] if given else None


def parse_idempotency(request: web.Request, meaning: Callable[[], str]) -> Idempotency | None:
    """The request's Idempotency-Key, tied to what the request means; None without one.
    What it means is worked out only for a request that has a key."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = parse_key(raw)
    said = meaning()
    return Idempotency.of(key, request.method, request.path.lower(), said, request[REQUEST_ID])


def parse_moment(request: web.Request) -> datetime | None:
    """The ``at`` query parameter, given at most once: RFC 3339 with an offset (``Z`` or
    ``±hh:mm``), as an aware time; None without one. Digits past the microsecond are
    dropped: ledger times have none, so no entry moves across ``at`` by it. A query string
    reads an unescaped ``+`` as a space; in the offset's place it can only be the ``+``."""
    text = _query_once(request, "at")
    if text is None:
        return None
    if _RFC3339.fullmatch(text) is not None:
        with suppress(ValueError):  # a day, hour or offset out of range
            return datetime.fromisoformat(text.upper().replace(" ", "+"))
    _fail("at", 'must be an RFC 3339 time with an offset, like "2026-12-05T10:00:00Z"')


def parse_reference_filter(request: web.Request) -> str | None:
    """The ``reference`` query parameter, given at most once; None without one."""
    given = _query_once(request, "reference")
    if given is None:
        return None
    try:
        return parse_reference(given)
    except InvalidReference as error:
        _fail("reference", str(error))


def _query_once(request: web.Request, name: str) -> str | None:
    """The query parameter ``name``, refused when given more than once; None without it."""
    given = request.query.getall(name, [])
    if len(given) > 1:
        _fail(name, "must be given at most once")
    return given[0] if given else None


def parse_operation(body: object) -> OperationCommand:
    """A complete, valid operation request, or every field error at once."""
    if not isinstance(body, dict):
        _fail("body", "must be a JSON object with operationType and amount")
    if len(body) == len(_OPERATION_FIELDS):  # the usual, well-formed request, checked quickly
        kind, amount = body.get("operationType"), body.get("amount")
        operation_type = _OPERATION_TYPES.get(kind) if isinstance(kind, str) else None
        if operation_type is not None and amount is not None:
            with suppress(InvalidAmount):
                return OperationCommand(operation_type, parse_amount(amount))
    errors = _field_errors(body, _OPERATION_FIELDS)
    operation_type = body.get("operationType")
    if "operationType" in body and not (
        isinstance(operation_type, str) and operation_type in _OPERATION_TYPES
    ):
        errors.append(FieldError("operationType", "must be DEPOSIT or WITHDRAW"))
    amount = _amount(body, errors)
    reference, metadata = _labels(body, errors)
    if errors or amount is None:
        raise ValidationFailed(errors, _summary(errors))
    return OperationCommand(OperationType(str(operation_type)), amount, reference, metadata)


def parse_transfer(body: object) -> TransferCommand:
    """A complete, valid transfer request, or every field error at once."""
    if not isinstance(body, dict):
        _fail("body", "must be a JSON object with fromWalletId, toWalletId and amount")
    errors = _field_errors(body, _TRANSFER_FIELDS)
    ids = {}
    for name in ("fromWalletId", "toWalletId"):
        value = body.get(name)
        if name not in body:
            continue
        if isinstance(value, str) and _UUID.fullmatch(value):
            ids[name] = parse_uuid(value)
        else:
            errors.append(FieldError(name, "must be a wallet id (a UUID)"))
    if len(ids) == 2 and ids["fromWalletId"] == ids["toWalletId"]:
        errors.append(FieldError("toWalletId", "must be another wallet than fromWalletId"))
    amount = _amount(body, errors)
    reference, metadata = _labels(body, errors)
    if errors or amount is None:
        raise ValidationFailed(errors, _summary(errors))
    return TransferCommand(ids["fromWalletId"], ids["toWalletId"], amount, reference, metadata)


def parse_hold(body: object, wallet_id: UUID) -> HoldCommand:
    """A complete, valid request to place a hold on ``wallet_id``, or every field error at
    once. Optional fields sent as ``null`` are absent."""
    if not isinstance(body, dict):
        _fail("body", "must be a JSON object with amount")
    errors = _field_errors(body, _HOLD_FIELDS, _OPTIONAL_HOLD_FIELDS)
    to_wallet_id = None
    payee = body.get("toWalletId")
    if isinstance(payee, str) and _UUID.fullmatch(payee):
        to_wallet_id = parse_uuid(payee)
        if to_wallet_id == wallet_id:
            errors.append(FieldError("toWalletId", "must be another wallet than the hold's"))
    elif payee is not None:
        errors.append(FieldError("toWalletId", "must be a wallet id (a UUID)"))
    expires_in = body.get("expiresIn")
    if expires_in is None:
        expires_in = DEFAULT_EXPIRES_IN
    elif not _whole_number(expires_in) or not MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN:
        errors.append(
            FieldError(
                "expiresIn",
                f"must be a whole number of seconds from {MIN_EXPIRES_IN} to {MAX_EXPIRES_IN}",
            )
        )
    amount = _amount(body, errors)
    reference, metadata = _labels(body, errors)
    if errors or amount is None:
        raise ValidationFailed(errors, _summary(errors))
    return HoldCommand(wallet_id, amount, to_wallet_id, int(expires_in), reference, metadata)


def _whole_number(value: object) -> TypeGuard[Decimal]:
    """A JSON integer: a number written without a fraction or an exponent (``1.0e1`` is
    ten, but not written as an integer)."""
    return isinstance(value, JsonInteger)


def parse_capture(body: object, hold_id: UUID) -> CaptureCommand:
    """A capture: an empty body or ``{}`` takes the whole hold, ``{"amount"}`` part of it."""
    if body is NO_BODY:
        return CaptureCommand(hold_id)
    if not isinstance(body, dict):
        _fail("body", "must be empty, or a JSON object with at most amount")
    errors = [
        FieldError(name, "is not a known field; expected amount")
        for name in body
        if name != "amount"
    ]
    amount = None if body.get("amount") is None else _amount(body, errors)
    if errors:
        raise ValidationFailed(errors, _summary(errors))
    return CaptureCommand(hold_id, amount)


def parse_empty(body: object) -> None:
    """A body that must say nothing: empty, or ``{}``."""
    if body is not NO_BODY and body != {}:
        _fail("body", "must be empty or {}")


def _field_errors(
    body: dict[str, object], required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[FieldError]:
    """The body's unknown fields and missing ``required`` ones (a reference and metadata
    may come with any command, and the ``optional`` ones with this one)."""
    known = (*required, *optional, *_OPTIONAL_OPERATION_FIELDS)
    errors = [
        FieldError(name, f"is not a known field; expected {', '.join(known)}")
        for name in body
        if name not in known
    ]
    return errors + [FieldError(name, "is required") for name in required if name not in body]


def _amount(body: dict[str, object], errors: list[FieldError]) -> Amount | None:
    """The body's ``amount``, if it has a valid one; what is wrong with it goes to ``errors``."""
    if "amount" not in body:
        return None
    try:
        return parse_amount(body["amount"])
    except InvalidAmount as error:
        errors.append(FieldError("amount", str(error)))
        return None


def _labels(body: dict[str, object], errors: list[FieldError]) -> tuple[str | None, Metadata]:
    """The body's optional ``reference`` and ``metadata``; what is wrong with them is added
    to ``errors``."""
    reference = None
    try:
        reference = parse_reference(body.get("reference"))
    except InvalidReference as error:
        errors.append(FieldError("reference", str(error)))
    metadata, wrong = metadata_errors(body.get("metadata"))
    errors += wrong
    return reference, metadata


def parse_new_wallet(body: object, default_currency: Currency) -> tuple[Currency, Metadata]:
    """A new wallet's currency and metadata: an empty body or ``{}`` gives
    ``default_currency`` and no metadata."""
    if body is NO_BODY or body == {}:
        return default_currency, NO_METADATA
    if not isinstance(body, dict):
        _fail("body", "must be empty or a JSON object with currency and metadata")
    errors = [
        FieldError(name, "is not a known field; expected currency, metadata")
        for name in sorted(body)
        if name not in _NEW_WALLET_FIELDS
    ]
    currency = default_currency
    if body.get("currency") is not None:
        try:
            currency = parse_currency(body["currency"])
        except InvalidCurrency as error:
            errors.append(FieldError("currency", str(error)))
    metadata, wrong = metadata_errors(body.get("metadata"))
    errors += wrong
    if errors:
        raise ValidationFailed(errors, _summary(errors))
    return currency, metadata


def _summary(errors: list[FieldError]) -> str:
    return "; ".join(f"{e.field}: {e.message}" for e in errors)


async def read_json(request: web.Request) -> object:
    """The JSON body, with numbers as exact Decimals; NO_BODY when the body is empty.

    Enforces the contract's limits: 64 KiB (sent and decoded), ``application/json``
    for any body, valid UTF-8, nesting of at most 32 levels, no duplicate keys, no
    NaN or Infinity, number literals of at most 100 characters. A body may come
    chunked and in gzip or deflate; any other framing or coding is refused.
    """
    headers = request.headers
    if hdrs.TRANSFER_ENCODING in headers:
        _check_transfer_coding(headers)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _too_large()
    try:  # awaited here, not in a helper: one coroutine less on every write
        raw = await request.read()
    except ConnectionError:  # the client closed the connection before sending it all
        raise Problem(CLIENT_CLOSED, "The client closed the connection mid-body") from None
    except web.RequestPayloadError as error:  # bad framing aiohttp found in the body
        _fail("body", f"could not be read: {str(error).splitlines()[-1].strip()}")
    if not raw:
        return NO_BODY
    charset = (request.charset or "utf-8").lower()
    if request.content_type != "application/json" or charset not in ("utf-8", "utf8"):
        given = request.headers.get("Content-Type", "none")
        raise Problem(UNSUPPORTED_MEDIA_TYPE, f"Send the body as application/json, not {given}")
    try:
        if hdrs.CONTENT_ENCODING in headers:
            raw = _decoded(raw, _content_coding(headers))
        return decode_json(raw)
    except _InvalidJson as error:
        _fail("body", str(error))


def _check_transfer_coding(headers: CIMultiDictProxy[str]) -> None:
    """Only plain ``chunked``: a body in a transfer coding the server does not decode
    (``gzip, chunked``) would otherwise be read as if it were not encoded."""
    given = headers.getall(hdrs.TRANSFER_ENCODING, ())
    if given and [c.strip().lower() for c in ",".join(given).split(",")] != ["chunked"]:
        _fail(
            hdrs.TRANSFER_ENCODING, "must be chunked alone; no other transfer coding is supported"
        )


def _content_coding(headers: CIMultiDictProxy[str]) -> str:
    """The body's one content coding ("identity" when none); 415 for any other."""
    given = ",".join(headers.getall(hdrs.CONTENT_ENCODING, ()))
    codings = [c.strip().lower() for c in given.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return "identity"
    if len(codings) > 1 or codings[0] not in _CONTENT_CODINGS:
        accepted = ", ".join(ACCEPTED_CONTENT_CODINGS)
        raise Problem(
            UNSUPPORTED_MEDIA_TYPE,
            f"Content-Encoding {given} is not supported; use one of {accepted}",
        )
    return codings[0]


def _decoded(raw: bytes, coding: str) -> bytes:
    """The body decoded, at most 64 KiB of it: a small gzip bomb is refused, not inflated."""
    if coding == "identity":
        return raw
    wbits = _CONTENT_CODINGS[coding]
    if coding == "deflate" and raw[0] & 0x0F != 8:  # no zlib header: raw deflate, as some send
        wbits = -zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    try:
        body = decoder.decompress(raw, MAX_BODY_BYTES + 1)
    except zlib.error:
        raise _InvalidJson(f"is not valid {coding} data") from None
    if len(body) > MAX_BODY_BYTES:
        raise _too_large()
    if not decoder.eof or decoder.unused_data:
        raise _InvalidJson(f"is not complete {coding} data, or has more after its end")
    return body


def _too_large() -> Problem:
    return Problem(PAYLOAD_TOO_LARGE, f"The request body is larger than {MAX_BODY_BYTES} bytes")


def decode_json(raw: bytes) -> object:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _InvalidJson("is not valid UTF-8") from None
    _check_depth(text)
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise _InvalidJson(f"is not valid JSON: {error.msg} at position {error.pos}") from None


def _check_depth(text: str) -> None:
    """Refuse deep nesting before the recursive parser sees it."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return  # too few openings to nest that deep: no need to walk the text
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise _InvalidJson(f"is nested deeper than {MAX_JSON_DEPTH} levels")
        elif char in "]}":
            depth -= 1


class JsonInteger(Decimal):
    """A number the JSON text wrote as an integer literal: digits only."""

    __slots__ = ()


def _integer(literal: str) -> Decimal:
    if len(literal) > MAX_LITERAL_LENGTH:
        raise _InvalidJson(f"holds a number literal longer than {MAX_LITERAL_LENGTH} characters")
    return JsonInteger(literal)


def _number(literal: str) -> Decimal:
    if len(literal) > MAX_LITERAL_LENGTH:
        raise _InvalidJson(f"holds a number literal longer than {MAX_LITERAL_LENGTH} characters")
    try:
        return Decimal(literal)
    except InvalidOperation:  # an exponent beyond what Decimal can hold
        raise _InvalidJson(f"holds the number {literal}, which is out of range") from None


def _reject_constant(name: str) -> NoReturn:
    raise _InvalidJson(f"holds {name}, which is not a JSON number")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _InvalidJson(f"has the key {key!r} more than once")
        result[key] = value
    return result


# One decoder for every request: numbers stay exact Decimals, duplicate keys are refused.
_DECODER = json.JSONDecoder(
    parse_float=_number,
    parse_int=_integer,
    parse_constant=_reject_constant,
    object_pairs_hook=_unique_keys,
)


def _fail(field: str, message: str) -> NoReturn:
    raise ValidationFailed.single(field, message)
