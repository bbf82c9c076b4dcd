"""schemathesis hooks for the fuzz test: what a JSON schema cannot say about this API.

Loaded through ``SCHEMATHESIS_HOOKS``; ``FUZZ_CURSOR_SECRET`` is the secret the service
under test signs its cursors with.

- A cursor is valid only if the service signed it for that very list. A well-formed cursor
  that schemathesis draws is signed here, for the list the request reads, so a schema-valid
  cursor is a valid one; a malformed one is left as drawn, to be refused.
- A schema-valid request may still be refused for the state it meets: a withdrawal larger
  than the balance, a deposit past the maximum balance, an idempotency key used before for
  another request. Those refusals, and only those, are not "valid data rejected".
- An amount's digits are checked against its wallet's currency, which the schema cannot
  say: every wallet made during the fuzz holds a 3-digit currency (a valid code drawn for
  a new wallet is replaced by BHD), so every amount the schema allows is one it takes.
"""

from __future__ import annotations

import base64
import json
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import schemathesis

from wallet.domain.currency import CURRENCIES
from wallet.domain.pagination import CursorCodec, Position
from wallet.domain.services import WALLETS_SCOPE, operations_scope
from wallet.entrypoints.http.openapi import CURSOR_TEXT

SECRET_VARIABLE = "FUZZ_CURSOR_SECRET"
STATE_REFUSALS = {"INSUFFICIENT_FUNDS", "BALANCE_LIMIT_EXCEEDED", "IDEMPOTENCY_KEY_REUSED"}
WELL_FORMED = re.compile(CURSOR_TEXT["pattern"])
# Every wallet the fuzz makes holds a currency of 3 digits, the most the schema lets an
# amount have, so that every schema-valid amount is one its wallet takes (the service
# runs with it as its default too). Currencies of fewer digits: tests/unit/test_currencies.py.
WIDEST_CURRENCY = "BHD"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPAN_MICROS = (datetime(9999, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


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
