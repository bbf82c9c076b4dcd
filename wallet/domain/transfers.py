"""Transfers: money moved from one wallet to another, as two ledger entries that commit
together (a TRANSFER_OUT of the payer, a TRANSFER_IN of the payee)."""

from __future__ import annotations

from dataclasses import field
from datetime import datetime
from uuid import UUID

from wallet.domain.currency import Currency
from wallet.domain.errors import CurrencyMismatch
from wallet.domain.model import Leg, Operation, OperationRequest, OperationType, Wallet, amount_in
from wallet.domain.money import Amount, Money
from wallet.domain.references import Metadata, labelled_meaning, no_metadata
from wallet.domain.values import value


@value
class TransferCommand:
    """A transfer as a client asks for it, before the wallets' currencies are known."""

    from_wallet_id: UUID
    to_wallet_id: UUID
    amount: Amount
    reference: str | None = None
    metadata: Metadata = field(default_factory=no_metadata)

    def in_currencies(self, payer: Currency, payee: Currency) -> TransferRequest:
        """The request in the wallets' one currency: CurrencyMismatch when they hold
        different ones, else ValidationFailed when the amount's digits do not fit it."""
        if payer != payee:
            raise CurrencyMismatch(
                f"Wallet {self.from_wallet_id} holds {payer.code} and wallet "
                f"{self.to_wallet_id} holds {payee.code}; a transfer moves one currency"
            )
        amount = amount_in(self.amount, payer)
        return TransferRequest(
            self.from_wallet_id, self.to_wallet_id, amount, self.reference, self.metadata
        )

    @property
    def meaning(self) -> str:
        """What the command says, whatever the form of its amount and the order of its
        metadata."""
        said = f"{self.from_wallet_id} {self.to_wallet_id} {self.amount.meaning}"
        return labelled_meaning(said, self.reference, self.metadata)


@value
class TransferRequest:
    """A transfer checked against its wallets: one currency, an amount that fits it."""

    from_wallet_id: UUID
    to_wallet_id: UUID
    amount: Money
    reference: str | None = None
    metadata: Metadata = field(default_factory=no_metadata)

    def legs(self, transfer_id: UUID) -> tuple[Leg, Leg]:
        """The two entries it makes, payer first: the payer's balance is checked first."""
        out = OperationRequest(
            OperationType.TRANSFER_OUT, self.amount, self.reference, self.metadata, transfer_id
        )
        into = OperationRequest(
            OperationType.TRANSFER_IN, self.amount, self.reference, self.metadata, transfer_id
        )
        return Leg(self.from_wallet_id, out), Leg(self.to_wallet_id, into)

    def made(self, transfer_id: UUID, entries: tuple[Operation, Operation]) -> Transfer:
        """The transfer once its two ``entries`` are written."""
        return Transfer(
            transfer_id,
            self.from_wallet_id,
            self.to_wallet_id,
            self.amount,
            entries[0].created_at,
            entries,
            self.reference,
            self.metadata,
        )


@value
class Transfer:
    """A committed transfer and its two ledger entries (TRANSFER_OUT, then TRANSFER_IN)."""

    id: UUID
    from_wallet_id: UUID
    to_wallet_id: UUID
    amount: Money
    created_at: datetime
    operations: tuple[Operation, Operation]
    reference: str | None = None
    metadata: Metadata = field(default_factory=no_metadata)
    hold_id: UUID | None = None


@value
class AppliedTransfer:
    """The outcome of a transfer: the transfer, and both wallets right after it."""

    transfer: Transfer
    wallets: tuple[Wallet, Wallet]
