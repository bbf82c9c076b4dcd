"""Set-up through the JSON API, for tests whose subject is the page, not the set-up."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def post(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def create_wallets(base_url: str, count: int) -> list[str]:
    """Create ``count`` wallets, oldest first, and return their ids."""
    return [post(f"{base_url}/api/v1/wallets")["id"] for _ in range(count)]


def deposit(base_url: str, wallet_id: str, amount: str, reference: str | None = None) -> None:
    body = {"operationType": "DEPOSIT", "amount": amount}
    if reference is not None:
        body["reference"] = reference
    post(f"{base_url}/api/v1/wallets/{wallet_id}/operation", body)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def create_wallet(base_url: str, currency: str = "USD") -> str:
    """Create one wallet in ``currency`` and return its id."""
    return str(post(f"{base_url}/api/v1/wallets", {"currency": currency})["id"])


def balance(base_url: str, wallet_id: str) -> str:
    return str(get(f"{base_url}/api/v1/wallets/{wallet_id}")["balance"])


def operations(base_url: str, wallet_id: str) -> list[dict[str, Any]]:
    """The wallet's latest ledger entries, newest first."""
    items: list[dict[str, Any]] = get(f"{base_url}/api/v1/wallets/{wallet_id}/operations")["items"]
    return items


def wallet(base_url: str, wallet_id: str) -> dict[str, Any]:
    found: dict[str, Any] = get(f"{base_url}/api/v1/wallets/{wallet_id}")
    return found


def place_hold(base_url: str, wallet_id: str, amount: str, **fields: Any) -> dict[str, Any]:
    """Place a hold of ``amount`` on the wallet (``toWalletId=``, ``expiresIn=``, … as given)."""
    hold: dict[str, Any] = post(
        f"{base_url}/api/v1/wallets/{wallet_id}/holds", {"amount": amount, **fields}
    )
    return hold


def hold(base_url: str, hold_id: str) -> dict[str, Any]:
    found: dict[str, Any] = get(f"{base_url}/api/v1/holds/{hold_id}")
    return found


def void_hold(base_url: str, hold_id: str) -> None:
    post(f"{base_url}/api/v1/holds/{hold_id}/void")
