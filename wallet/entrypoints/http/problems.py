"""RFC 9457 problem details: the one catalogue of problems, and errors turned into them.

The catalogue is the domain's errors (each declares its code, status and title) and the
few problems only the HTTP layer answers. The problem bodies, the OpenAPI document and the
page's messages are all made from it.
"""

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
    reaches_client: bool = True

    @property
    def type(self) -> str:
        return "/problems/" + self.code.lower().replace("_", "-")


# The problems the HTTP layer answers by itself; the domain's are declared on its errors.
UNAUTHORIZED = ProblemKind(401, "UNAUTHORIZED", "Unauthorized")
NOT_FOUND = ProblemKind(404, "NOT_FOUND", "Not found")
METHOD_NOT_ALLOWED = ProblemKind(405, "METHOD_NOT_ALLOWED", "Method not allowed")
PAYLOAD_TOO_LARGE = ProblemKind(413, "PAYLOAD_TOO_LARGE", "Payload too large")
UNSUPPORTED_MEDIA_TYPE = ProblemKind(415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type")
INTERNAL_ERROR = ProblemKind(500, "INTERNAL_ERROR", "Internal server error")
# Never seen by a client: it left before its request was read. The status (nginx's 499)
# keeps it apart from the server's errors in the access line and the metrics.
CLIENT_CLOSED = ProblemKind(
    499, "CLIENT_CLOSED_REQUEST", "Client closed request", reaches_client=False
)
HTTP_KINDS = (
    UNAUTHORIZED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    INTERNAL_ERROR,
    CLIENT_CLOSED,
)


def domain_errors() -> list[type[errors.WalletError]]:
    """The domain's error classes that declare a problem of their own."""
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, errors.WalletError)
        and "status" in vars(value)
    ]


def _catalogue() -> dict[str, ProblemKind]:
    """Every problem by its code, by status; a code two errors share must agree on the rest."""
    declared = [ProblemKind(e.status, e.code, e.title) for e in domain_errors()]
    catalogue: dict[str, ProblemKind] = {}
    for kind in (*declared, *HTTP_KINDS):
        if catalogue.setdefault(kind.code, kind) != kind:
            raise TypeError(f"{kind.code} is declared twice, differently")
    return dict(sorted(catalogue.items(), key=lambda item: item[1].status))


CATALOGUE = _catalogue()
ANSWERED = tuple(kind for kind in CATALOGUE.values() if kind.reaches_client)


def kind_of(error: type[errors.WalletError]) -> ProblemKind:
    return CATALOGUE[error.code]


VALIDATION = kind_of(errors.ValidationFailed)
SERVICE_UNAVAILABLE = kind_of(errors.StorageUnavailable)

# aiohttp's own refusals, by status; any other is a validation problem, or a 5xx a bug.
_REFUSED_AS = (VALIDATION, NOT_FOUND, METHOD_NOT_ALLOWED, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE)
_HTTP_REFUSALS = {**{kind.status: kind for kind in _REFUSED_AS}, 403: NOT_FOUND, 410: NOT_FOUND}


def for_status(status: int) -> ProblemKind | None:
    """The problem an answer of this status stands for when it names none, if just one does.

    That is the kind aiohttp's own refusal of that status gets, else the status's one kind.
    """
    if (refusal := _HTTP_REFUSALS.get(status)) is not None and refusal.status == status:
        return refusal
    kinds = [kind for kind in ANSWERED if kind.status == status]
    return kinds[0] if len(kinds) == 1 else None


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
    kind = CATALOGUE.get(error.code, INTERNAL_ERROR)
    if isinstance(error, errors.ValidationFailed):
        return Problem(kind, error.detail, tuple(error.errors))
    if isinstance(error, errors.StorageUnavailable):
        detail = "The database is unavailable; try again shortly"
        return Problem(kind, detail, headers={"Retry-After": str(retry_after)})
    return Problem(kind, str(error))


def from_http(error: web.HTTPException) -> Problem:
    """Turn aiohttp's own 4xx answers (no route, wrong method, body too big) into problems."""
    kind = _refusal(error.status)
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
    kind = _refusal(status)
    return internal_error() if kind is INTERNAL_ERROR else Problem(kind, detail)


def _refusal(status: int) -> ProblemKind:
    return _HTTP_REFUSALS.get(status, INTERNAL_ERROR if status >= 500 else VALIDATION)


def unauthorised() -> Problem:
    detail = "Send a valid API key as Authorization: Bearer <key>"
    return Problem(UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def internal_error() -> Problem:
    return Problem(
        INTERNAL_ERROR, "An unexpected error occurred; the request id finds it in the log"
    )
