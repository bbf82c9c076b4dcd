"""The Redis cache's entry format: a wallet written by ``_encode`` reads back whole from
``_decode``, what its holds reserve included, and entries written before holds (or before
currencies) still read. No Redis needed: these are the two pure functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest

from wallet.adapters.redis_cache import _decode, _encode
from wallet.domain.currency import CURRENCIES
from wallet.domain.model import Wallet
from wallet.domain.money import MAX_BALANCE_MINOR, Money

WALLET_ID = UUID("3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f")
CREATED = datetime(2026, 12, 5, 10, 0, 0, 123456, tzinfo=UTC)
UPDATED = CREATED + timedelta(minutes=3, microseconds=7)
UNTIL = CREATED + timedelta(days=7, microseconds=1)


def a_wallet(**changes: Any) -> Wallet:
    return replace(Wallet(WALLET_ID, Money(10000), 4, CREATED, UPDATED), **changes)


@pytest.mark.parametrize(
    "wallet",
    [
        a_wallet(),
        a_wallet(held_minor=3000, held_until=UNTIL),
        a_wallet(held_minor=10000, held_until=UNTIL),
        a_wallet(held_minor=3000, held_until=UNTIL, metadata={"a:b": "c,d", "e": '{"x":1}'}),
        a_wallet(balance=Money(1500, CURRENCIES["BHD"]), held_minor=1, held_until=UNTIL),
        a_wallet(balance=Money(7, CURRENCIES["JPY"]), held_minor=7, held_until=UNTIL),
        a_wallet(balance=Money(MAX_BALANCE_MINOR), held_minor=MAX_BALANCE_MINOR, held_until=UNTIL),
        a_wallet(held_minor=0, held_until=UNTIL),  # a hold of its own expiry, nothing reserved
        a_wallet(held_minor=5, held_until=None),
    ],
    ids=[
        "no-holds",
        "held",
        "all-held",
        "held-with-metadata",
        "BHD",
        "JPY",
        "at-the-maximum",
        "until-only",
        "held-only",
    ],
)
def test_a_wallet_reads_back_as_it_was_written(wallet: Wallet) -> None:
    decoded = _decode(wallet.id, _encode(wallet))
    assert decoded == wallet
    assert (decoded.held, decoded.available, decoded.held_until) == (
        wallet.held,
        wallet.available,
        wallet.held_until,
    )
    assert decoded.held_at(CREATED) is wallet.held_at(CREATED)


def test_what_holds_reserve_and_until_when_are_written_beside_the_currency() -> None:
    entry = _encode(a_wallet(held_minor=3000, held_until=UNTIL))
    version, balance, _, _, currency = entry.split(":")
    micros = (UNTIL - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert (version, balance, currency) == ("4", "10000", f"USD,3000,{micros}")


def test_a_wallet_without_holds_is_written_as_before_holds() -> None:
    entry = _encode(a_wallet())
    assert entry.split(":")[-1] == "USD"
    assert "," not in entry


def test_an_expiry_in_another_time_zone_reads_back_as_the_same_instant() -> None:
    elsewhere = UNTIL.astimezone(timezone(timedelta(hours=-5)))
    decoded = _decode(WALLET_ID, _encode(a_wallet(held_minor=1, held_until=elsewhere)))
    assert decoded.held_until == UNTIL
    assert decoded.held_until is not None
    assert decoded.held_until.utcoffset() == timedelta()


@pytest.mark.parametrize(
    ("entry", "currency", "metadata"),
    [
        ("4:10000:1733392800123456:1733392980123463:EUR", "EUR", {}),  # before holds
        ('4:10000:1733392800123456:1733392980123463:EUR:{"k":"v"}', "EUR", {"k": "v"}),
        ("4:10000:1733392800123456:1733392980123463", "USD", {}),  # before currencies
    ],
)
def test_an_entry_written_before_holds_reads_as_a_wallet_with_nothing_held(
    entry: str, currency: str, metadata: dict[str, str]
) -> None:
    decoded = _decode(WALLET_ID, entry)
    assert (decoded.version, decoded.balance) == (4, Money(10000, CURRENCIES[currency]))
    assert decoded.metadata == metadata
    assert (decoded.held_minor, decoded.held_until) == (0, None)
    assert decoded.available == decoded.balance
    assert decoded.held_at(datetime.now(UTC))
    assert _decode(WALLET_ID, _encode(decoded)) == decoded  # and writes back the same


def test_an_entry_before_holds_is_written_back_unchanged() -> None:
    entry = '4:10000:1733392800123456:1733392980123463:EUR:{"k":"v"}'
    assert _encode(_decode(WALLET_ID, entry)) == entry
