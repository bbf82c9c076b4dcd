"""Wallets and the operations of their ledger, as immutable values."""

from __future__ import annotations

from dataclasses import field
from datetime import datetime
from enum import StrEnum
from typing import Generic, NamedTuple, TypeVar
from uuid import UUID

from wallet.domain.currency import USD, Currency
from wallet.domain.errors import BalanceLimitExceeded, InsufficientFunds, ValidationFailed
from wallet.domain.money import MAX_BALANCE_MINOR, Amount, InvalidAmount, Money
from wallet.domain.references import Metadata, labelled_meaning, no_metadata
from wallet.domain.values import value

T = TypeVar("T")
MAX_BALANCE = Money(MAX_BALANCE_MINOR)


class OperationType(StrEnum):
    """A kind of ledger entry; its sign says which way it moves the balance."""

    DEPOSIT = "DEPOSIT"
    WITHDRAW = "WITHDRAW"
    TRANSFER_OUT = "TRANSFER_OUT"
    TRANSFER_IN = "TRANSFER_IN"

    @property
    def sign(self) -> int:
        """+1 for an entry that adds to the balance, -1 for one that takes from it."""
        return _SIGNS[self]

    def effect(self, amount: Money) -> int:
        """The signed change ``amount`` of this kind makes to a balance, in minor units."""
        return _SIGNS[self] * amount.minor


_SIGNS = {
    OperationType.DEPOSIT: 1,
    OperationType.WITHDRAW: -1,
    OperationType.TRANSFER_OUT: -1,
    OperationType.TRANSFER_IN: 1,
}
REQUESTABLE = (OperationType.DEPOSIT, OperationType.WITHDRAW)  # what /operation takes


@value
class OperationRequest:
    """What a client asks for: validated, not yet applied."""

    type: OperationType
    amount: Money
    reference: str | None = None
    metadata: Metadata = field(default_factory=no_metadata)
    transfer_id: UUID | None = None  # the transfer this entry is one side of
    hold_id: UUID | None = None  # the hold this entry captures
    delta_minor: int = field(init=False, compare=False)  # the signed change, in minor units

    def __post_init__(self) -> None:
        object.__setattr__(self, "delta_minor", self.type.effect(self.amount))

    def entry(
        self, operation_id: UUID, wallet_id: UUID, balance_after: Money, at: datetime
    ) -> Operation:
        """The ledger entry this request makes once applied, leaving ``balance_after``."""
        return Operation(
            operation_id,
            wallet_id,
            self.type,
            self.amount,
            balance_after,
            at,
            self.reference,
            self.metadata,
            self.transfer_id,
            self.hold_id,
        )


class Leg(NamedTuple):
    """One wallet's part of a money movement: the entry it asks that wallet's ledger for.
    A deposit or a withdrawal is one leg; a transfer two, which commit together."""

    wallet_id: UUID
    request: OperationRequest


@value
class OperationCommand:
    """An operation as a client asks for it, before its wallet's currency is known."""

    type: OperationType
    amount: Amount
    reference: str | None = None
    metadata: Metadata = field(default_factory=no_metadata)

    def in_currency(self, currency: Currency) -> OperationRequest:
        """The request in the wallet's currency; ValidationFailed on ``amount`` when its
        digits do not fit the currency."""
        amount = amount_in(self.amount, currency)
        return OperationRequest(self.type, amount, self.reference, self.metadata)

    @property
    def meaning(self) -> str:
        """What the command says, whatever the form its amount was written in and
        whatever the order of its metadata."""
        said = f"{self.type.value} {self.amount.meaning}"
        return labelled_meaning(said, self.reference, self.metadata)


def amount_in(amount: Amount, currency: Currency) -> Money:
    """A request's amount as money of ``currency``; ValidationFailed on ``amount`` when
    its digits do not fit the currency."""
    try:
        return amount.of(currency)
    except InvalidAmount as error:
        raise ValidationFailed.single("amount", str(error)) from None


def new_wallet_meaning(currency: Currency, metadata: Metadata) -> str:
    """What a request to create a wallet says, whatever the order of its metadata."""
    return labelled_meaning(currency.code, None, metadata)


@value
class Wallet:
    """A wallet as stored; ``version`` counts its changes (its ledger entries, and holds
    placed, voided or marked expired)."""

    id: UUID
    balance: Money
    version: int
    created_at: datetime
    updated_at: datetime
    metadata: Metadata = field(default_factory=no_metadata)
    held_minor: int = 0  # what its holds reserve, as of ``held_until``
    held_until: datetime | None = None  # when the next of those holds expires

    @property
    def currency(self) -> Currency:
        """The wallet's currency, fixed at creation: its balance's."""
        return self.balance.currency

    @property
    def held(self) -> Money:
        """The part of the balance reserved by holds (true until ``held_until``)."""
        return Money(self.held_minor, self.balance.currency)

    def held_at(self, now: datetime) -> bool:
        """Whether what the holds reserve is still as read at ``now``: no hold has expired."""
        return self.held_until is None or now < self.held_until

    @property
    def available(self) -> Money:
        """What can be withdrawn or sent now: the balance less what holds reserve."""
        return Money(self.balance.minor - self.held.minor, self.balance.currency)


@value
class Operation:
    """One ledger entry; entries are never changed or deleted."""

    id: UUID
    wallet_id: UUID
    type: OperationType
    amount: Money
    balance_after: Money
    created_at: datetime
    reference: str | None = None
    metadata: Metadata = field(default_factory=no_metadata)
    transfer_id: UUID | None = None
    hold_id: UUID | None = None

    @property
    def delta_minor(self) -> int:
        """The signed change this entry made to the balance, in minor units."""
        return self.type.effect(self.amount)


@value
class BalanceAt:
    """A wallet's balance as its ledger stood at ``at``: the balance after its last entry
    made at or before then, zero before its first."""

    wallet_id: UUID
    balance: Money
    at: datetime


@value
class AppliedOperation:
    """The outcome of a successful operation: the ledger entry and the wallet after it."""

    wallet: Wallet
    operation: Operation


@value
class Page(Generic[T]):
    """One page of a list, with the cursor of the next page (None on the last)."""

    items: list[T]
    next_cursor: str | None


def next_balance(balance: Money, request: OperationRequest, held: int = 0) -> Money:
    """The balance after ``request``, or the error that refuses it; ``held`` minor units of
    the balance are reserved by holds, which a debit may not take.

    The one statement of the balance rules; storage adapters that cannot run them
    in SQL (the in-memory fakes, a batch deciding each operation in turn) use it.
    """
    minor = balance.minor + request.delta_minor
    currency = request.amount.currency
    refusal = balance_refusal(minor, currency, held)
    if refusal is InsufficientFunds:
        raise InsufficientFunds(Money(balance.minor - held, currency), request.amount, held)
    if refusal is BalanceLimitExceeded:
        raise BalanceLimitExceeded(balance, request.amount, max_balance(currency))
    return Money(minor, currency)


def balance_refusal(
    minor_after: int, currency: Currency, held: int = 0
) -> type[InsufficientFunds] | type[BalanceLimitExceeded] | None:
    """Which rule a balance of ``minor_after`` would break, if any: below what holds
    reserve, or above the maximum. In integers, for the callers that decide many
    operations at once (a batch's run) and raise nothing."""
    if minor_after < held:
        return InsufficientFunds
    if minor_after > currency.max_balance_minor:
        return BalanceLimitExceeded
    return None


def max_balance(currency: Currency = USD) -> Money:
    """The most a wallet of ``currency`` may hold."""
    return Money(currency.max_balance_minor, currency)
