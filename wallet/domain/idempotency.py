"""Idempotency keys: one key names one request; its first outcome is kept and answered again."""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum

from wallet.domain.errors import (
    BalanceLimitExceeded,
    FieldError,
    InsufficientFunds,
    ValidationFailed,
    WalletError,
)
from wallet.domain.holds import Captured, Hold
from wallet.domain.model import Operation, Wallet, max_balance
from wallet.domain.money import Money
from wallet.domain.transfers import Transfer
from wallet.domain.values import value

HEADER = "Idempotency-Key"
_KEY = re.compile(r"[!-~]{1,255}", re.ASCII)


def parse_key(raw: str) -> str:
    """A key as the contract allows it: 1 to 255 visible ASCII characters."""
    if not _KEY.fullmatch(raw):
        message = "must be 1 to 255 visible ASCII characters (no spaces)"
        raise ValidationFailed([FieldError(HEADER, message)], f"{HEADER}: {message}")
    return raw


@value
class Idempotency:
    """A request made under a key: what it means (its fingerprint) and which request it was."""

    key: str
    fingerprint: bytes
    request_id: str

    @classmethod
    def of(cls, key: str, method: str, path: str, meaning: str, request_id: str) -> Idempotency:
        """``meaning`` is the body reduced to what it says, so ``5`` and ``"5.00"`` agree."""
        digest = hashlib.sha256(f"{method} {path}\n{meaning}".encode()).digest()
        return cls(key, digest, request_id)


class Outcome(StrEnum):
    CREATED = "CREATED"
    APPLIED = "APPLIED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    BALANCE_LIMIT_EXCEEDED = "BALANCE_LIMIT_EXCEEDED"
    HELD = "HELD"  # a hold placed
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"


@value
class Recorded:
    """What the first request under a key answered: enough to give the same answer again."""

    fingerprint: bytes
    request_id: str
    outcome: Outcome
    wallet: Wallet | None = None  # CREATED: the wallet as it was created
    operation: Operation | None = None  # APPLIED
    balance_before: Money | None = None  # refused: the balance the refusal saw
    amount: Money | None = None  # refused: the amount asked for
    transfer: Transfer | None = None  # APPLIED, by a transfer (``operation`` is its first entry)
    held_before: int = 0  # refused: what holds reserved of ``balance_before``
    hold: Hold | None = None  # HELD (as placed), VOIDED
    captured: Captured | None = None  # CAPTURED

    @property
    def refused(self) -> bool:
        """The first request was refused (the balance would not allow it)."""
        return self.outcome in (Outcome.INSUFFICIENT_FUNDS, Outcome.BALANCE_LIMIT_EXCEEDED)

    def refusal(self) -> WalletError:
        assert self.balance_before is not None
        assert self.amount is not None
        if self.outcome is Outcome.INSUFFICIENT_FUNDS:
            before = self.balance_before
            available = Money(before.minor - self.held_before, before.currency)
            return InsufficientFunds(available, self.amount, self.held_before)
        maximum = max_balance(self.balance_before.currency)
        return BalanceLimitExceeded(self.balance_before, self.amount, maximum)


def refusal_outcome(error: WalletError) -> Outcome:
    return (
        Outcome.INSUFFICIENT_FUNDS
        if isinstance(error, InsufficientFunds)
        else (Outcome.BALANCE_LIMIT_EXCEEDED)
    )
