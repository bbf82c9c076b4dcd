"""Events: every committed change, in the order it committed, for readers and the stream."""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from wallet.domain.holds import Captured, Hold
from wallet.domain.model import Operation, Wallet
from wallet.domain.transfers import Transfer
from wallet.domain.values import value


class EventType(enum.StrEnum):
    WALLET_CREATED = "wallet.created"
    OPERATION_APPLIED = "operation.applied"
    TRANSFER_COMPLETED = "transfer.completed"
    HOLD_CREATED = "hold.created"
    HOLD_CAPTURED = "hold.captured"
    HOLD_VOIDED = "hold.voided"
    HOLD_EXPIRED = "hold.expired"


EventSubject = Wallet | Operation | Transfer | Hold | Captured


@value
class Event:
    """One committed change: ``subject`` is the changed thing as the change left it (the
    wallet created, the DEPOSIT or WITHDRAW entry, the transfer, the hold, the capture's
    answer). ``wallet_id`` is whose change it is: a transfer's payer, a hold's wallet."""

    id: int
    type: EventType
    wallet_id: UUID
    created_at: datetime
    subject: EventSubject

    @property
    def subject_name(self) -> str:
        """Where a stream files it: ``wallet.events.<type>``."""
        return f"wallet.events.{self.type.value}"
