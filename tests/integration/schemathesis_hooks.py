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
from typing import Any
from uuid import UUID, uuid4

import schemathesis

from wallet.domain.currency import CURRENCIES
from wallet.domain.pagination import CursorCodec, Position
from wallet.domain.services import WALLETS_SCOPE, operations_scope
from wallet.entrypoints.http.openapi import CURSOR_TEXT

SECRET_VARIABLE = "FUZZ_CURSOR_SECRET"
BASE_URL_VARIABLE = "FUZZ_BASE_URL"
STATE_REFUSALS = {"INSUFFICIENT_FUNDS", "BALANCE_LIMIT_EXCEEDED", "IDEMPOTENCY_KEY_REUSED"}
WELL_FORMED = re.compile(CURSOR_TEXT["pattern"])
# Every wallet the fuzz makes holds a currency of 3 digits, the most the schema lets an
# amount have, so that every schema-valid amount is one its wallet takes (the service
# runs with it as its default too). Currencies of fewer digits: tests/unit/test_currencies.py.
WIDEST_CURRENCY = "BHD"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPAN_MICROS = (datetime(9999, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)
MADE: dict[str, list[str]] = {"wallets": [], "transfers": []}  # ids of the last 50 of each


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
    transfer_id = (case.path_parameters or {}).get("transferId")
    if transfer_id in (None, "None") and "transferId" in (case.path_parameters or {}):
        # A link inferred from an entry's `transferId`, which is null for a deposit: no
        # transfer to read, so read one the fuzz made, or an unknown one (a 404).
        transfer_id = case.path_parameters["transferId"] = str(uuid4())
    if is_uuid(transfer_id) and MADE["transfers"] and UUID(str(transfer_id)).int % 2 == 0:
        case.path_parameters["transferId"] = MADE["transfers"][-1]


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Remember the wallets and transfers the fuzz made, for the transfers it draws next."""
    if case.method.upper() != "POST" or response.status_code != 201:
        return
    made = json.loads(response.content)
    kind = "transfers" if "fromWalletId" in made else "wallets"
    if made["id"] not in MADE[kind]:  # a replayed creation answers the same id again
        MADE[kind] = [*MADE[kind][-49:], made["id"]]


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


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a schema-valid request refused for the state it met."""
    if failure.code != "ST202" or response.status_code not in (400, 422):
        return True
    try:
        problem = json.loads(response.content)
    except ValueError:
        return True
    return problem.get("code") not in STATE_REFUSALS


def signed(drawn: str, scope: str) -> str:
    """A cursor the service made: the drawn bytes read as a position, signed for ``scope``."""
    raw = base64.urlsafe_b64decode(drawn + "=" * (-len(drawn) % 4))
    micros = int.from_bytes(raw[:8], "big") % SPAN_MICROS
    position = Position(EPOCH + timedelta(microseconds=micros), UUID(bytes=raw[8:24]))
    secret = os.environ[SECRET_VARIABLE].encode("utf-8")
    return CursorCodec(secret).encode(scope, position)


def scope_of(case: Any) -> str | None:
    """The list a request reads: all wallets, or one wallet's operations, of one reference
    when it names one (None: no wallet)."""
    wallet_id = (case.path_parameters or {}).get("walletId")
    if wallet_id is None:
        return WALLETS_SCOPE
    reference = (case.query or {}).get("reference")
    named = reference if isinstance(reference, str) else None
    try:
        return operations_scope(UUID(str(wallet_id)), named)
    except ValueError:  # a malformed id: the request is refused for it, cursor or not
        return None
