"""Hostile input: each request gets its contract error, a problem document, and changes nothing."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Hostile:
    name: str
    status: int
    code: str
    body: bytes | None = None
    path: str = "/api/v1/wallets/{wallet}/operation"
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))


def nested(depth: int) -> bytes:
    return b'{"operationType": "DEPOSIT", "amount": ' + b"[" * depth + b"1" + b"]" * depth + b"}"


def amount(literal: bytes) -> bytes:
    return b'{"operationType": "DEPOSIT", "amount": ' + literal + b"}"


def encoded(coding: str) -> dict[str, str]:
    return {**JSON, "Content-Encoding": coding}


GZIPPED = gzip.compress(amount(b'"1"'))
GZIP_BOMB = gzip.compress(amount(b'"1"') + b" " * 10_000_000)  # 10 MB in about 10 KB


CASES = [
    Hostile("nesting 33 deep", 400, "VALIDATION_ERROR", nested(33)),
    Hostile("nesting 20000 deep", 400, "VALIDATION_ERROR", nested(20000)),
    Hostile("a huge exponent", 400, "VALIDATION_ERROR", amount(b"1e999999999999999999")),
    Hostile("a tiny exponent", 400, "VALIDATION_ERROR", amount(b"1e-999999999999999999")),
    Hostile("a 101-digit number", 400, "VALIDATION_ERROR", amount(b"1" * 101)),
    Hostile("a 5000-digit number", 400, "VALIDATION_ERROR", amount(b"9" * 5000)),
    Hostile("NaN", 400, "VALIDATION_ERROR", amount(b"NaN")),
    Hostile("a NUL in a string", 400, "VALIDATION_ERROR", b'{"operationType": "DEP\\u0000OSIT", "amount": 1}'),
    Hostile("a raw NUL byte", 400, "VALIDATION_ERROR", b'{"operationType": "DEPOSIT\x00", "amount": 1}'),
    Hostile("invalid UTF-8", 400, "VALIDATION_ERROR", b'{"operationType": "DEPOSIT", "amount": "\xff\xfe"}'),
    Hostile("a byte-order mark", 400, "VALIDATION_ERROR", b'\xef\xbb\xbf{"operationType": "DEPOSIT", "amount": 1}'),
    Hostile("a duplicated key", 400, "VALIDATION_ERROR", b'{"operationType": "DEPOSIT", "amount": 1, "amount": 9}'),
    Hostile("SQL in the type", 400, "VALIDATION_ERROR", b'{"operationType": "DEPOSIT\'; DROP TABLE wallets;--", "amount": 1}'),
    Hostile("SQL in the amount", 400, "VALIDATION_ERROR", b'{"operationType": "DEPOSIT", "amount": "1 OR 1=1"}'),
    Hostile("SQL in the id", 400, "VALIDATION_ERROR", amount(b"1"), path="/api/v1/wallets/1'%20OR%20'1'='1/operation"),
    Hostile("a body over 64 KiB", 413, "PAYLOAD_TOO_LARGE", amount(b'"1"') + b" " * 70_000),
    Hostile("a form post", 415, "UNSUPPORTED_MEDIA_TYPE", b"operationType=DEPOSIT&amount=1",
            headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Hostile("text/plain JSON", 415, "UNSUPPORTED_MEDIA_TYPE", amount(b"1"),
            headers={"Content-Type": "text/plain"}),
    Hostile("JSON in latin-1", 415, "UNSUPPORTED_MEDIA_TYPE", amount(b"1"),
            headers={"Content-Type": "application/json; charset=latin-1"}),
    Hostile("a zstd body", 415, "UNSUPPORTED_MEDIA_TYPE", b"(\xb5/\xfd", headers=encoded("zstd")),
    Hostile("a br body", 415, "UNSUPPORTED_MEDIA_TYPE", b"\x0b\x02\x80", headers=encoded("br")),
    Hostile("an unknown content coding", 415, "UNSUPPORTED_MEDIA_TYPE", amount(b"1"), headers=encoded("rot13")),
    Hostile("two content codings", 415, "UNSUPPORTED_MEDIA_TYPE", GZIPPED, headers=encoded("gzip, gzip")),
    Hostile("gzip that is not gzip", 400, "VALIDATION_ERROR", amount(b"1"), headers=encoded("gzip")),
    Hostile("deflate that is not deflate", 400, "VALIDATION_ERROR", b"hello", headers=encoded("deflate")),
    Hostile("a cut-off gzip body", 400, "VALIDATION_ERROR", GZIPPED[:-4], headers=encoded("gzip")),
    Hostile("gzip with more after it", 400, "VALIDATION_ERROR", GZIPPED + b"junk", headers=encoded("gzip")),
    Hostile("a gzip bomb", 413, "PAYLOAD_TOO_LARGE", GZIP_BOMB, headers=encoded("gzip")),
    Hostile("a 20 KB idempotency key", 400, "VALIDATION_ERROR", amount(b"1"),
            headers={**JSON, "Idempotency-Key": "k" * 20_000}),
    Hostile("a 10,000-digit limit", 400, "VALIDATION_ERROR", None,
            path="/api/v1/wallets/{wallet}/operations?limit=" + "9" * 10_000, method="GET",
            headers={}),
    Hostile("a dot-dot path", 404, "NOT_FOUND", amount(b"1"), path="/api/v1/wallets/../../etc/passwd"),
    Hostile("an encoded dot-dot path", 404, "NOT_FOUND", None,
            path="/static/..%2f..%2fsetup.cfg", method="GET", headers={}),
    Hostile("an encoded slash in the id", 400, "VALIDATION_ERROR", amount(b"1"),
            path="/api/v1/wallets/{wallet}%2Fx/operation"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_hostile_input_is_refused_and_changes_nothing(client: Client, case: Hostile) -> None:
    created = await (await client.post("/api/v1/wallets")).json()
    wallet = created["id"]
    funded = await client.post(
        f"/api/v1/wallets/{wallet}/operation",
        json={"operationType": "DEPOSIT", "amount": "10.00"},
    )
    assert funded.status == 200

    response = await client.request(
        case.method, case.path.format(wallet=wallet), data=case.body, headers=case.headers
    )

    assert response.status == case.status, await response.text()
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["code"] == case.code
    assert problem["requestId"] == response.headers["X-Request-ID"]
    assert "Traceback" not in await response.text()
    after = await (await client.get(f"/api/v1/wallets/{wallet}")).json()
    history = await (await client.get(f"/api/v1/wallets/{wallet}/operations")).json()
    assert after["balance"] == "10.00"
    assert len(history["items"]) == 1


async def test_a_long_request_id_header_is_replaced_not_echoed(client: Client) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "r" * 5000})
    assert response.status == 200
    assert len(response.headers["X-Request-ID"]) <= 128
