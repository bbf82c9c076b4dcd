"""RFC 9457 problem details: the one table from errors to HTTP answers."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from aiohttp import web

from wallet.domain import errors
from wallet.entrypoints.http.render import REPLAYED_HEADER, json_response

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ProblemKind:
    status: int
    code: str
    title: str

    @property
    def type(self) -> str:
        return "/problems/" + self.code.lower().replace("_", "-")


VALIDATION = ProblemKind(400, "VALIDATION_ERROR", "Invalid request")
INSUFFICIENT_FUNDS = ProblemKind(400, "INSUFFICIENT_FUNDS", "Insufficient funds")
BALANCE_LIMIT = ProblemKind(400, "BALANCE_LIMIT_EXCEEDED", "Balance limit exceeded")
UNAUTHORIZED = ProblemKind(401, "UNAUTHORIZED", "Unauthorized")
WALLET_NOT_FOUND = ProblemKind(404, "WALLET_NOT_FOUND", "Wallet not found")
NOT_FOUND = ProblemKind(404, "NOT_FOUND", "Not found")
METHOD_NOT_ALLOWED = ProblemKind(405, "METHOD_NOT_ALLOWED", "Method not allowed")
IDEMPOTENCY_KEY_IN_USE = ProblemKind(409, "IDEMPOTENCY_KEY_IN_USE", "Idempotency key in use")
PAYLOAD_TOO_LARGE = ProblemKind(413, "PAYLOAD_TOO_LARGE", "Payload too large")
UNSUPPORTED_MEDIA_TYPE = ProblemKind(415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type")
IDEMPOTENCY_KEY_REUSED = ProblemKind(422, "IDEMPOTENCY_KEY_REUSED", "Idempotency key reused")
INTERNAL_ERROR = ProblemKind(500, "INTERNAL_ERROR", "Internal server error")
SERVICE_UNAVAILABLE = ProblemKind(503, "SERVICE_UNAVAILABLE", "Service unavailable")
# Never seen by a client: it left before its request was read. The status (nginx's 499)
# keeps it apart from the server's errors in the access line and the metrics.
CLIENT_CLOSED = ProblemKind(499, "CLIENT_CLOSED_REQUEST", "Client closed request")

ALL_KINDS = (
    VALIDATION,
    INSUFFICIENT_FUNDS,
    BALANCE_LIMIT,
    UNAUTHORIZED,
    WALLET_NOT_FOUND,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    IDEMPOTENCY_KEY_IN_USE,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    IDEMPOTENCY_KEY_REUSED,
    INTERNAL_ERROR,
    SERVICE_UNAVAILABLE,
)

_DOMAIN_KINDS: dict[type[errors.WalletError], ProblemKind] = {
    errors.ValidationFailed: VALIDATION,
    errors.InsufficientFunds: INSUFFICIENT_FUNDS,
    errors.BalanceLimitExceeded: BALANCE_LIMIT,
    errors.WalletNotFound: WALLET_NOT_FOUND,
    errors.StorageUnavailable: SERVICE_UNAVAILABLE,
    errors.IdempotencyKeyInUse: IDEMPOTENCY_KEY_IN_USE,
    errors.IdempotencyKeyTaken: IDEMPOTENCY_KEY_IN_USE,
    errors.IdempotencyKeyReused: IDEMPOTENCY_KEY_REUSED,
}

_HTTP_KINDS: dict[int, ProblemKind] = {
    400: VALIDATION,
    403: NOT_FOUND,
    404: NOT_FOUND,
    410: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
}


@dataclass(frozen=True, slots=True)
class Problem(Exception):
    """An HTTP problem; raised by entrypoint code, rendered by the error middleware."""

    kind: ProblemKind
    detail: str
    errors: tuple[errors.FieldError, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)

    def response(self, request_id: str) -> web.Response:
        body: dict[str, object] = {
            "type": self.kind.type,
            "title": self.kind.title,
            "status": self.kind.status,
            "detail": self.detail,
            "code": self.kind.code,
            "requestId": request_id,
        }
        if self.errors:
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        body.update(self.extra)
        return json_response(body, self.kind.status, self.headers, PROBLEM_CONTENT_TYPE)


def invalid(field_name: str, message: str) -> Problem:
    """A validation problem about one field."""
    return from_domain(errors.ValidationFailed.single(field_name, message), retry_after=0)


def from_domain(error: errors.WalletError, retry_after: int) -> Problem:
    if isinstance(error, errors.Replayed):
        original = from_domain(error.original, retry_after)
        return replace(original, headers={**original.headers, REPLAYED_HEADER: "true"})
    kind = _DOMAIN_KINDS.get(type(error), INTERNAL_ERROR)
    if isinstance(error, errors.ValidationFailed):
        return Problem(kind, error.detail, tuple(error.errors))
    if kind is SERVICE_UNAVAILABLE:
        detail = "The database is unavailable; try again shortly"
        return Problem(kind, detail, headers={"Retry-After": str(retry_after)})
    return Problem(kind, str(error))


def from_http(error: web.HTTPException) -> Problem:
    """Turn aiohttp's own 4xx answers (no route, wrong method, body too big) into problems."""
    kind = _HTTP_KINDS.get(error.status, INTERNAL_ERROR if error.status >= 500 else VALIDATION)
    headers = {}
    if isinstance(error, web.HTTPMethodNotAllowed):
        headers["Allow"] = ", ".join(sorted(error.allowed_methods))
    detail = {
        NOT_FOUND: "No resource at this path",
        METHOD_NOT_ALLOWED: f"{error.reason}; allowed: {headers.get('Allow', '')}",
        PAYLOAD_TOO_LARGE: "The request body is larger than 65536 bytes",
    }.get(kind, error.reason)
    return Problem(kind, detail, headers=headers)


def refused(status: int, detail: str) -> Problem:
    """aiohttp's own refusal of a request the app never saw (bad HTTP), as a problem."""
    kind = _HTTP_KINDS.get(status, INTERNAL_ERROR if status >= 500 else VALIDATION)
    return internal_error() if kind is INTERNAL_ERROR else Problem(kind, detail)


def unauthorised() -> Problem:
    detail = "Send a valid API key as Authorization: Bearer <key>"
    return Problem(UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def internal_error() -> Problem:
    return Problem(
        INTERNAL_ERROR, "An unexpected error occurred; the request id finds it in the log"
    )
