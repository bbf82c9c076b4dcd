"""JSON views of domain values: camelCase, money as strings with its currency's decimals,
UTC with Z."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from wallet.domain.events import Event
from wallet.domain.holds import Captured, Hold
from wallet.domain.model import BalanceAt, Operation, Page, Wallet
from wallet.domain.transfers import Transfer
from wallet.entrypoints.http.headers import JSON_ANSWER_HEADERS

JsonObject = dict[str, Any]


REPLAYED_HEADER = "Idempotent-Replayed"


def replay_headers(replayed: bool) -> dict[str, str]:
    return {REPLAYED_HEADER: "true"} if replayed else {}


def json_response(
    data: object,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    """A JSON response serialised by orjson (several times faster than the standard json),
    made with the headers every answer carries."""
    made = {**JSON_ANSWER_HEADERS, "Content-Type": content_type}
    if headers:
        made.update(headers)
    return web.Response(body=orjson.dumps(data), status=status, headers=made)


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a Z, e.g. 2026-11-27T16:03:02.123456Z."""
    if moment.tzinfo is not UTC:  # the database already answers in UTC
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


# Remembered for wallets: a wallet read again and again shows the same two moments each
# time. A new entry's moment is new: looking it up first would only cost.
remembered_timestamp = functools.lru_cache(maxsize=4096)(timestamp)


def render_wallet(wallet: Wallet) -> JsonObject:
    balance = str(wallet.balance)
    held = wallet.held
    return {
        "id": str(wallet.id),
        "currency": wallet.currency.code,
        "balance": balance,
        "heldBalance": str(held),
        "availableBalance": str(wallet.available) if held.minor else balance,
        "metadata": dict(wallet.metadata),
        "createdAt": remembered_timestamp(wallet.created_at),
        "updatedAt": remembered_timestamp(wallet.updated_at),
    }


def render_balance_at(balance: BalanceAt) -> JsonObject:
    return {
        "walletId": str(balance.wallet_id),
        "currency": balance.balance.currency.code,
        "balance": str(balance.balance),
        "at": timestamp(balance.at),
    }


def render_operation(operation: Operation) -> JsonObject:
    return {
        "id": str(operation.id),
        "walletId": str(operation.wallet_id),
        "operationType": operation.type.value,
        "currency": operation.amount.currency.code,
        "amount": str(operation.amount),
        "balanceAfter": str(operation.balance_after),
        "reference": operation.reference,
        "metadata": dict(operation.metadata),
        "transferId": None if operation.transfer_id is None else str(operation.transfer_id),
        "holdId": None if operation.hold_id is None else str(operation.hold_id),
        "createdAt": timestamp(operation.created_at),
    }


def render_applied(applied: Operation) -> JsonObject:
    """An operation's answer: the wallet, its balance right after, and the ledger entry."""
    operation = render_operation(applied)
    return {
        "walletId": operation["walletId"],
        "balance": operation["balanceAfter"],
        "operation": operation,
    }


def render_transfer(transfer: Transfer) -> JsonObject:
    return {
        "id": str(transfer.id),
        "fromWalletId": str(transfer.from_wallet_id),
        "toWalletId": str(transfer.to_wallet_id),
        "currency": transfer.amount.currency.code,
        "amount": str(transfer.amount),
        "holdId": None if transfer.hold_id is None else str(transfer.hold_id),
        "reference": transfer.reference,
        "metadata": dict(transfer.metadata),
        "createdAt": timestamp(transfer.created_at),
        "operations": [render_operation(operation) for operation in transfer.operations],
    }


def render_hold(hold: Hold) -> JsonObject:
    captured = hold.captured_amount
    return {
        "id": str(hold.id),
        "walletId": str(hold.wallet_id),
        "toWalletId": None if hold.to_wallet_id is None else str(hold.to_wallet_id),
        "currency": hold.currency.code,
        "amount": str(hold.amount),
        "capturedAmount": None if captured is None else str(captured),
        "status": hold.status.value,
        "expiresAt": timestamp(hold.expires_at),
        "reference": hold.reference,
        "metadata": dict(hold.metadata),
        "createdAt": timestamp(hold.created_at),
        "updatedAt": timestamp(hold.updated_at),
    }


def render_captured(captured: Captured) -> JsonObject:
    """A capture's answer: the hold as captured, and the entries the capture wrote."""
    return {
        "hold": render_hold(captured.hold),
        "operations": [render_operation(operation) for operation in captured.operations],
    }


def render_hold_page(page: Page[Hold]) -> JsonObject:
    return {"items": [render_hold(h) for h in page.items], "nextCursor": page.next_cursor}


def render_wallet_page(page: Page[Wallet]) -> JsonObject:
    return {"items": [render_wallet(w) for w in page.items], "nextCursor": page.next_cursor}


def render_operation_page(page: Page[Operation]) -> JsonObject:
    return {"items": [render_operation(o) for o in page.items], "nextCursor": page.next_cursor}


def render_subject(subject: Wallet | Operation | Transfer | Hold | Captured) -> JsonObject:
    """An event's ``data``: the changed thing as the API renders it anywhere else."""
    if isinstance(subject, Wallet):
        return render_wallet(subject)
    if isinstance(subject, Operation):
        return render_operation(subject)
    if isinstance(subject, Transfer):
        return render_transfer(subject)
    if isinstance(subject, Hold):
        return render_hold(subject)
    return render_captured(subject)


def render_event(event: Event) -> JsonObject:
    """One event, as the feed lists it and the stream carries it (ids are decimal strings)."""
    return {
        "id": str(event.id),
        "type": event.type.value,
        "walletId": str(event.wallet_id),
        "createdAt": timestamp(event.created_at),
        "data": render_subject(event.subject),
    }


def event_body(event: Event) -> bytes:
    """The event's JSON as bytes: the body of its message on the stream."""
    return orjson.dumps(render_event(event))


def render_event_page(events: list[Event]) -> JsonObject:
    """A page of the feed; ``lastEventId`` is the page's last id, to read on ``after`` it."""
    return {
        "items": [render_event(e) for e in events],
        "lastEventId": str(events[-1].id) if events else None,
    }
