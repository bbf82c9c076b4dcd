"""The headers every answer carries: the security headers, a Server header that names no
version (aiohttp's default does) and, unless an answer says how long it keeps, no-store."""

from __future__ import annotations

from aiohttp import web

SERVER_NAME = "wallet"
REQUEST_ID_HEADER = "X-Request-ID"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
STAMPED_HEADERS = {**SECURITY_HEADERS, "Server": SERVER_NAME}
# What a JSON answer is made with at once: one dict given to the response beats stamping
# the same headers into it one by one afterwards, on every request.
JSON_ANSWER_HEADERS = {**STAMPED_HEADERS, "Cache-Control": "no-store"}


def stamp(response: web.StreamResponse, request_id: str) -> None:
    """The headers every answer carries, the app's and those aiohttp makes itself; an
    answer made with them already only gets its request id."""
    headers = response.headers
    if "Server" not in headers:
        headers.update(STAMPED_HEADERS)
        if "Cache-Control" not in headers:  # assets say how long they keep
            headers["Cache-Control"] = "no-store"
    headers[REQUEST_ID_HEADER] = request_id
