"""Holds: money reserved on a wallet now, and captured or voided later.

A hold reserves its amount out of the wallet's available balance. A capture takes up to
that amount, once: as a withdrawal, or as a transfer to the wallet the hold names; the
rest is released. A void releases it all, and from its ``expires_at`` on, a hold still
held reads as EXPIRED and reserves nothing, whoever has noticed yet.
"""

from __future__ import annotations

from dataclasses import field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from wallet.domain.currency import Currency
from wallet.domain.errors import CurrencyMismatch, HoldNotActive, ValidationFailed
from wallet.domain.model import Leg, Operation, OperationRequest, OperationType, Wallet, amount_in
from wallet.domain.money import Amount, Money
from wallet.domain.references import Metadata, labelled_meaning, no_metadata
from wallet.domain.transfers import Transfer
from wallet.domain.values import value

MIN_EXPIRES_IN = 1  # seconds
MAX_EXPIRES_IN = 30 * 24 * 3600
DEFAULT_EXPIRES_IN = 7 * 24 * 3600


class HoldStatus(StrEnum):
    HELD = "HELD"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    EXPIRED = "EXPIRED"


@value
class HoldCommand:
    """A hold as a client asks for it, before the wallets' currencies are known."""

    wallet_id: UUID
    amount: Amount
    to_wallet_id: UUID | None = None
    expires_in: int = DEFAULT_EXPIRES_IN  # seconds
    reference: str | None = None
    metadata: Metadata = field(default_factory=no_metadata)

    def in_currencies(self, payer: Currency, payee: Currency | None) -> HoldRequest:
        """The request in the wallet's currency: CurrencyMismatch when the payee holds
        another one, else ValidationFailed when the amount's digits do not fit it."""
        if payee is not None and payee != payer:
            raise CurrencyMismatch(
                f"Wallet {self.wallet_id} holds {payer.code} and wallet "
                f"{self.to_wallet_id} holds {payee.code}; a capture moves one currency"
            )
        amount = amount_in(self.amount, payer)
        return HoldRequest(
            self.wallet_id,
            amount,
            self.to_wallet_id,
            self.expires_in,
            self.reference,
            self.metadata,
        )

    @property
    def meaning(self) -> str:
        """What the command says, whatever the form of its amount and the order of its
        metadata (the wallet is in the request's path)."""
        said = f"{self.amount.meaning} {self.to_wallet_id} {self.expires_in}"
        return labelled_meaning(said, self.reference, self.metadata)


@value
class HoldRequest:
    """A hold checked against its wallets: one currency, an amount that fits it."""

    wallet_id: UUID
    amount: Money
    to_wallet_id: UUID | None = None
    expires_in: int = DEFAULT_EXPIRES_IN
    reference: str | None = None
    metadata: Metadata = field(default_factory=no_metadata)


@value
class Hold:
    """A hold as stored, with the status it has now (EXPIRED from ``expires_at`` on)."""

    id: UUID
    wallet_id: UUID
    amount: Money
    status: HoldStatus
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    to_wallet_id: UUID | None = None
    captured_amount: Money | None = None
    reference: str | None = None
    metadata: Metadata = field(default_factory=no_metadata)

    @property
    def currency(self) -> Currency:
        return self.amount.currency

    def check_active(self) -> None:
        """HoldNotActive, naming the status, unless the hold is still held."""
        if self.status is not HoldStatus.HELD:
            raise HoldNotActive(self.id, self.status.value)

    def capture_amount(self, amount: Amount | None) -> Money:
        """What a capture of ``amount`` takes (the whole hold without one); ValidationFailed
        on ``amount`` when it is more than the hold or its digits do not fit."""
        if amount is None:
            return self.amount
        money = amount_in(amount, self.currency)
        if money.minor > self.amount.minor:
            raise ValidationFailed.single(
                "amount", f"must not be more than the hold's amount, {self.amount}"
            )
        return money

    def capture_legs(self, amount: Money, transfer_id: UUID | None) -> tuple[Leg, ...]:
        """The entries a capture of ``amount`` writes, each naming the hold: the payer's
        WITHDRAW, or with a payee a transfer's TRANSFER_OUT and TRANSFER_IN."""
        labels = (self.reference, self.metadata)
        if self.to_wallet_id is None:
            withdraw = OperationRequest(OperationType.WITHDRAW, amount, *labels, hold_id=self.id)
            return (Leg(self.wallet_id, withdraw),)
        out = OperationRequest(
            OperationType.TRANSFER_OUT, amount, *labels, transfer_id, hold_id=self.id
        )
        into = OperationRequest(
            OperationType.TRANSFER_IN, amount, *labels, transfer_id, hold_id=self.id
        )
        return Leg(self.wallet_id, out), Leg(self.to_wallet_id, into)

    def as_placed(self) -> Hold:
        """The hold as it was when placed: what its creation answered."""
        return Hold(
            self.id,
            self.wallet_id,
            self.amount,
            HoldStatus.HELD,
            self.expires_at,
            self.created_at,
            self.created_at,
            self.to_wallet_id,
            None,
            self.reference,
            self.metadata,
        )


@value
class CaptureCommand:
    """A capture as a client asks for it: the hold, and how much (None: all of it)."""

    hold_id: UUID
    amount: Amount | None = None

    @property
    def meaning(self) -> str:
        return "all" if self.amount is None else self.amount.meaning


@value
class Captured:
    """A capture's answer: the hold as captured and the entries it wrote (and the transfer
    they make, when it paid a wallet)."""

    hold: Hold
    operations: tuple[Operation, ...]
    transfer: Transfer | None = None


@value
class HoldChanged:
    """A hold placed, captured or voided, and the wallets it changed as they are now."""

    hold: Hold
    wallets: tuple[Wallet, ...]
    captured: Captured | None = None
