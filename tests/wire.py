"""Raw HTTP/1.1 for tests that speak to the service over a socket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from wallet.entrypoints.http.headers import SECURITY_HEADERS

DEPOSIT = b'{"operationType": "DEPOSIT", "amount": "1.00"}'


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def problem(self) -> dict[str, Any]:
        """The problem document, checked to be one with the headers every answer has."""
        assert self.headers["content-type"] == "application/problem+json", self
        problem: dict[str, Any] = orjson.loads(self.body)
        assert problem["status"] == self.status
        assert problem["requestId"] == self.headers["x-request-id"]
        for name, value in SECURITY_HEADERS.items():
            assert self.headers[name.lower()] == value
        return problem


def parse_answer(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body)


def operation_path(wallet: str) -> str:
    return f"/api/v1/wallets/{wallet}/operation"


def chunked(wallet: str, transfer_coding: str, body: bytes = DEPOSIT) -> bytes:
    return (
        f"POST {operation_path(wallet)} HTTP/1.1\r\nHost: wallet\r\n"
        f"Content-Type: application/json\r\nTransfer-Encoding: {transfer_coding}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


# Requests aiohttp's parser (or its Expect handling) refuses before the app sees them.
REFUSED = {
    "a bad request line": b"GARBAGE\r\n\r\n",
    "a bad method in a request line": b"G(T / HTTP/1.1\r\nHost: wallet\r\n\r\n",
    "a bad header": b"GET /health/live HTTP/1.1\r\nHost: wallet\r\nBad Header: y\r\n\r\n",
    "a header line with no colon": b"GET /health/live HTTP/1.1\r\nHost: wallet\r\nnocolon\r\n\r\n",
    "a bad chunk size": (
        b"POST /api/v1/wallets HTTP/1.1\r\nHost: wallet\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n"
    ),
    "an unknown transfer coding alone": (
        b"POST /api/v1/wallets HTTP/1.1\r\nHost: wallet\r\nTransfer-Encoding: foo\r\n\r\n"
    ),
    "a request line over the limit": b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    "an Expect other than 100-continue": (
        b"GET /health/live HTTP/1.1\r\nHost: wallet\r\nExpect: foo\r\nConnection: close\r\n\r\n"
    ),
}
