"""schemathesis hooks for the fuzz test: what a JSON schema cannot say about this API.

Loaded through ``SCHEMATHESIS_HOOKS``; ``FUZZ_CURSOR_SECRET`` is the secret the service
under test signs its cursors with.

- A cursor is valid only if the service signed it for that very list. A well-formed cursor
  that schemathesis draws is signed here, for the list the request reads, so a schema-valid
  cursor is a valid one; a malformed one is left as drawn, to be refused.
- A schema-valid request may still be refused for the state it meets: a withdrawal larger
  than the balance, a deposit past the maximum balance, an idempotency key used before for
  another request. Those refusals, and only those, are not "valid data rejected".
- A transfer names two different wallets that exist, which the schema cannot say: a drawn
  transfer is sent between two wallets the fuzz made (remembered from their creation),
  and a transfer id drawn for a read is, half the time, one the fuzz made; so requests
  reach the money rules rather than a 404. A transfer id a link took from an entry's
  `transferId`, null for a deposit, becomes such an id too. Without two wallets yet, a
  body naming one wallet twice gets a fresh payee id (then unknown: a 404, as documented).
- A balance's moment `at` may not be later than now, which a schema cannot say: a drawn
  moment still to come is brought into the past (the same instant of an earlier era), so a
  schema-valid `at` is a valid one; a malformed one is left as drawn, to be refused.
- An amount's digits are checked against its wallet's currency, which the schema cannot
  say: every wallet made during the fuzz holds a 3-digit currency (a valid code drawn for
  a new wallet is replaced by BHD), so every amount the schema allows is one it takes.
- A hold is placed, half the time, on a wallet the fuzz made, funded with its amount first;
  its `toWalletId` is another wallet the fuzz made, never its own (which a schema cannot
  say). A hold id drawn for a read, a capture or a void is, half the time, one the fuzz
  made and has not seen captured, voided or expiring, so requests reach a hold still held
  rather than all meet the documented 409. A capture's amount may not be more than its
  hold's, which the schema cannot say either: a valid amount drawn larger than a hold the
  fuzz made becomes that hold's amount.
- `expiresIn` is a JSON integer written without a fraction, which a schema cannot say
  (to JSON Schema `60.0` is an integer): a whole number drawn as a float is sent as an int.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import schemathesis

from wallet.domain.currency import CURRENCIES
from wallet.domain.holds import HoldStatus
from wallet.domain.money import InvalidAmount, parse_amount
from wallet.domain.pagination import CursorCodec, Position
from wallet.domain.services import WALLETS_SCOPE, holds_scope, operations_scope
from wallet.entrypoints.http.openapi import CURSOR_TEXT, UUID_ANY_CASE_PATTERN, UUID_PATTERN

SECRET_VARIABLE = "FUZZ_CURSOR_SECRET"
BASE_URL_VARIABLE = "FUZZ_BASE_URL"
STATE_REFUSALS = {"INSUFFICIENT_FUNDS", "BALANCE_LIMIT_EXCEEDED", "IDEMPOTENCY_KEY_REUSED"}
WELL_FORMED = re.compile(CURSOR_TEXT["pattern"])
PATH_ID = re.compile(UUID_ANY_CASE_PATTERN)  # an id a path takes, in either case
BODY_ID = re.compile(UUID_PATTERN)  # an id a body takes, in lower case
HOLDS_PATH = "/api/v1/wallets/{walletId}/holds"
CAPTURE_PATH = "/api/v1/holds/{holdId}/capture"
VOID_PATH = "/api/v1/holds/{holdId}/void"
HOLD_NOT_ACTIVE = "HOLD_NOT_ACTIVE"
EXPIRY_MARGIN = timedelta(seconds=5)  # a hold expiring sooner may expire before it is reached
# Every wallet the fuzz makes holds a currency of 3 digits, the most the schema lets an
# amount have, so that every schema-valid amount is one its wallet takes (the service
# runs with it as its default too). Currencies of fewer digits: tests/unit/test_currencies.py.
WIDEST_CURRENCY = "BHD"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPAN_MICROS = (datetime(9999, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)
KEPT = 50  # how many ids of each kind are remembered
MADE: dict[str, list[str]] = {"wallets": [], "transfers": [], "holds": []}  # the last ids


class MadeHold:
    """What the fuzz knows of a hold it made. (Not a dataclass: schemathesis loads this file
    as a module outside ``sys.modules``, where a dataclass cannot be made.)"""

    def __init__(self, amount: Decimal, expires_at: datetime) -> None:
        self.amount = amount
        self.expires_at = expires_at
        self.settled = False  # seen captured, voided or no longer held


HOLDS: dict[str, MadeHold] = {}  # each hold in MADE


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    cursor = (case.query or {}).get("cursor")
    scope = scope_of(case)
    if isinstance(cursor, str) and WELL_FORMED.fullmatch(cursor) and scope is not None:
        case.query["cursor"] = signed(cursor, scope)
    body = case.body
    if (
        isinstance(body, dict)
        and isinstance(body.get("currency"), str)
        and body["currency"] in CURRENCIES
    ):
        body["currency"] = WIDEST_CURRENCY
    if (
        isinstance(body, dict)
        and is_uuid(body.get("fromWalletId"))
        and is_uuid(body.get("toWalletId"))
    ):
        between_known_wallets(body)
    at = (case.query or {}).get("at")
    if isinstance(at, str):
        case.query["at"] = in_the_past(at)
    made_or_drawn(case, "transferId", MADE["transfers"])
    settled = {hold for hold, known in HOLDS.items() if known.settled}
    made_or_drawn(case, "holdId", open_holds() or MADE["holds"], settled)
    if case.method.upper() == "POST" and case.path == HOLDS_PATH:
        on_a_made_wallet(case)
        in_whole_seconds(case.body)
    if case.method.upper() == "POST" and case.path == CAPTURE_PATH:
        within_the_hold(case)


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Remember the wallets, transfers and holds the fuzz made, and which of its holds are
    no longer held, for the requests it draws next."""
    if case.method.upper() != "POST":
        return
    if case.path in (CAPTURE_PATH, VOID_PATH):
        if response.status_code == 200 or problem_code(response) == HOLD_NOT_ACTIVE:
            settled = HOLDS.get(str(case.path_parameters["holdId"]).lower())
            if settled is not None:
                settled.settled = True
    elif response.status_code == 201:
        remember(json.loads(response.content))


def remember(made: dict[str, Any]) -> None:
    """A wallet, transfer or hold the fuzz made, told apart by the fields it answers with."""
    kind = "transfers" if "fromWalletId" in made else "holds" if "expiresAt" in made else "wallets"
    if made["id"] in MADE[kind]:  # a replayed creation answers the same id again
        return
    MADE[kind] = [*MADE[kind][1 - KEPT :], made["id"]]
    if kind == "holds":
        expires_at = datetime.fromisoformat(made["expiresAt"])
        HOLDS[made["id"]] = MadeHold(Decimal(made["amount"]), expires_at)
        for forgotten in HOLDS.keys() - set(MADE["holds"]):
            del HOLDS[forgotten]


def open_holds() -> list[str]:
    """The holds the fuzz made that are still held, as far as it knows, oldest first."""
    soon = datetime.now(UTC) + EXPIRY_MARGIN
    return [
        hold for hold in MADE["holds"] if not HOLDS[hold].settled and HOLDS[hold].expires_at > soon
    ]


def made_or_drawn(
    case: Any, name: str, made: list[str], stale: set[str] | frozenset[str] = frozenset()
) -> None:
    """The drawn id of a transfer or hold in the path, half the time the last of ``made``;
    a ``stale`` one always (cases may share the path a hook already filled in). A link
    inferred from an entry's `transferId` or `holdId`, null for a deposit, names nothing
    to read: it becomes a drawn id too (unknown: a 404). A malformed id is left as drawn,
    to be refused."""
    parameters = case.path_parameters or {}
    if name not in parameters:
        return
    if parameters[name] in (None, "None"):
        parameters[name] = str(uuid4())
    drawn = parameters[name]
    if not isinstance(drawn, str) or not PATH_ID.fullmatch(drawn) or not made:
        return
    if drawn.lower() in stale or UUID(drawn).int % 2 == 0:
        parameters[name] = made[-1]


def on_a_made_wallet(case: Any) -> None:
    """A drawn hold, half the time on a wallet the fuzz made, which is funded with its
    amount; a payee it names is another wallet the fuzz made, never the hold's own."""
    parameters = case.path_parameters or {}
    wallet = parameters.get("walletId")
    if not isinstance(wallet, str) or not PATH_ID.fullmatch(wallet):
        return
    wallets = MADE["wallets"]
    if wallets and UUID(wallet).int % 2 == 0:
        wallet = parameters["walletId"] = wallets[UUID(wallet).int % len(wallets)]
    body = case.body
    if not isinstance(body, dict):
        return
    payee = body.get("toWalletId")
    if isinstance(payee, str) and BODY_ID.fullmatch(payee):
        body["toWalletId"] = another_wallet(UUID(wallet), UUID(payee))
    if wallet in wallets:
        fund(wallet, body.get("amount"))


def in_whole_seconds(body: object) -> None:
    """A drawn `expiresIn` that is a whole number drawn as a float (`60.0`), sent as the
    JSON integer it stands for; any other value as drawn."""
    if not isinstance(body, dict):
        return
    expires_in = body.get("expiresIn")
    if isinstance(expires_in, float) and expires_in.is_integer():
        body["expiresIn"] = int(expires_in)


def another_wallet(payer: UUID, drawn: UUID) -> str:
    """A wallet the fuzz made other than ``payer``, picked by the drawn id; without one,
    the drawn id, unless it names the payer (then a fresh one: unknown, a 404)."""
    others = [wallet for wallet in MADE["wallets"] if UUID(wallet) != payer]
    if others:
        return others[drawn.int % len(others)]
    return str(uuid4()) if drawn == payer else str(drawn)


def within_the_hold(case: Any) -> None:
    """A capture of a hold the fuzz made takes at most the hold: a valid amount drawn
    larger becomes the hold's amount. An invalid one is left as drawn, to be refused."""
    hold = HOLDS.get(str((case.path_parameters or {}).get("holdId")).lower())
    body = case.body
    if hold is None or not isinstance(body, dict) or body.get("amount") is None:
        return
    drawn = valid_amount(body["amount"])
    if drawn is not None and drawn > hold.amount:
        body["amount"] = str(hold.amount)


def valid_amount(drawn: object) -> Decimal | None:
    """The drawn amount's value when the service takes it (whatever the currency), read as
    the service reads JSON; None when it does not."""
    try:
        read = json.loads(json.dumps(drawn), parse_float=Decimal, parse_int=Decimal)
        return parse_amount(read).value
    except (InvalidAmount, TypeError, ValueError):
        return None


def between_known_wallets(body: dict[str, Any]) -> None:
    """The drawn transfer between two different wallets the fuzz made, picked by its ids."""
    wallets = MADE["wallets"]
    if len(wallets) < 2:
        if body["toWalletId"] == body["fromWalletId"]:
            body["toWalletId"] = str(uuid4())
        return
    first = UUID(body["fromWalletId"]).int % len(wallets)
    second = (first + 1 + UUID(body["toWalletId"]).int % (len(wallets) - 1)) % len(wallets)
    body["fromWalletId"], body["toWalletId"] = wallets[first], wallets[second]
    fund(wallets[first], body.get("amount"))


def fund(wallet_id: str, amount: object) -> None:
    """Deposit the amount a transfer is about to move into its payer, so that transfers
    mostly go through rather than all meet an empty wallet (a deposit refused for its
    size leaves the transfer to be refused too, as documented)."""
    if not isinstance(amount, str | int | float):
        return
    url = f"{os.environ[BASE_URL_VARIABLE]}/api/v1/wallets/{wallet_id}/operation"
    data = json.dumps({"operationType": "DEPOSIT", "amount": amount}).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with contextlib.suppress(urllib.error.HTTPError), urllib.request.urlopen(request, timeout=5):
        pass


def in_the_past(drawn: str) -> str:
    """A drawn moment later than now, moved back by whole spans of (now - 1970) into the
    past; any other moment, or text that is none, as drawn."""
    try:
        moment = datetime.fromisoformat(drawn.upper().replace(" ", "+"))
    except ValueError:
        return drawn
    now = datetime.now(UTC)
    if moment.tzinfo is None or moment <= now:
        return drawn
    span = (now - EPOCH) // timedelta(microseconds=1)
    micros = (moment - EPOCH) // timedelta(microseconds=1) % span
    return (EPOCH + timedelta(microseconds=micros)).isoformat()


def is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def problem_code(response: Any) -> str | None:
    """The code of a problem response; None for any other answer."""
    try:
        problem = json.loads(response.content)
    except ValueError:
        return None
    return problem.get("code") if isinstance(problem, dict) else None


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a schema-valid request refused for the state it met."""
    if failure.code != "ST202" or response.status_code not in (400, 422):
        return True
    return problem_code(response) not in STATE_REFUSALS


def signed(drawn: str, scope: str) -> str:
    """A cursor the service made: the drawn bytes read as a position, signed for ``scope``."""
    raw = base64.urlsafe_b64decode(drawn + "=" * (-len(drawn) % 4))
    micros = int.from_bytes(raw[:8], "big") % SPAN_MICROS
    position = Position(EPOCH + timedelta(microseconds=micros), UUID(bytes=raw[8:24]))
    secret = os.environ[SECRET_VARIABLE].encode("utf-8")
    return CursorCodec(secret).encode(scope, position)


def scope_of(case: Any) -> str | None:
    """The list a request reads: all wallets, one wallet's operations (of one reference
    when it names one), or one wallet's holds (of one status when it names one); None for
    a malformed wallet id."""
    wallet_id = (case.path_parameters or {}).get("walletId")
    if wallet_id is None:
        return WALLETS_SCOPE
    try:
        wallet = UUID(str(wallet_id))
    except ValueError:  # a malformed id: the request is refused for it, cursor or not
        return None
    if case.path == HOLDS_PATH:
        status = (case.query or {}).get("status")
        known = status if isinstance(status, str) and status in HoldStatus.__members__ else None
        return holds_scope(wallet, None if known is None else HoldStatus(known))
    reference = (case.query or {}).get("reference")
    return operations_scope(wallet, reference if isinstance(reference, str) else None)
