"""Domain errors: each names one way a request can fail, with a stable code.

Each kind declares, once, its ``code``, the HTTP ``status`` it is answered with and its
``title``: the HTTP layer builds its problem catalogue from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from wallet.domain.money import Money


class WalletError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "WALLET_ERROR"
    status: int
    title: str


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field of a request, for the problem's ``errors`` list."""

    field: str
    message: str


class ValidationFailed(WalletError):
    """The request is malformed; nothing ran."""

    code = "VALIDATION_ERROR"
    status = 400
    title = "Invalid request"

    def __init__(self, errors: list[FieldError], detail: str = "The request is invalid") -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        return cls([FieldError(field, message)], f"{field}: {message}")


class WalletNotFound(WalletError):
    code = "WALLET_NOT_FOUND"
    status = 404
    title = "Wallet not found"

    def __init__(self, wallet_id: UUID) -> None:
        super().__init__(f"Wallet {wallet_id} does not exist")
        self.wallet_id = wallet_id


class TransferNotFound(WalletError):
    code = "TRANSFER_NOT_FOUND"
    status = 404
    title = "Transfer not found"

    def __init__(self, transfer_id: UUID) -> None:
        super().__init__(f"Transfer {transfer_id} does not exist")
        self.transfer_id = transfer_id


class HoldNotFound(WalletError):
    code = "HOLD_NOT_FOUND"
    status = 404
    title = "Hold not found"

    def __init__(self, hold_id: UUID) -> None:
        super().__init__(f"Hold {hold_id} does not exist")
        self.hold_id = hold_id


class HoldNotActive(WalletError):
    """A capture or void of a hold that is no longer held; nothing changed."""

    code = "HOLD_NOT_ACTIVE"
    status = 409
    title = "Hold not active"

    def __init__(self, hold_id: UUID, status: str) -> None:
        super().__init__(f"Hold {hold_id} is {status}; only a HELD hold can be captured or voided")
        self.hold_id = hold_id
        self.hold_status = status


class EventsExpired(WalletError):
    """A feed read after an event older than the retention: events after it are gone."""

    code = "EVENTS_EXPIRED"
    status = 410
    title = "Events expired"

    def __init__(self, after: int, oldest_kept_after: int) -> None:
        super().__init__(
            f"Events after {after} are no longer kept; read from after={oldest_kept_after} "
            "(or without after) to go on from the oldest kept"
        )
        self.after = after
        self.oldest_kept_after = oldest_kept_after


class CurrencyMismatch(WalletError):
    """Money moved between wallets of different currencies; nothing changed."""

    code = "CURRENCY_MISMATCH"
    status = 400
    title = "Currency mismatch"


class InsufficientFunds(WalletError):
    """A withdrawal (or transfer out, or hold) larger than the available balance; nothing
    changed."""

    code = "INSUFFICIENT_FUNDS"
    status = 400
    title = "Insufficient funds"

    def __init__(self, available: Money, amount: Money, held: int = 0) -> None:
        if held:
            reserved = type(available)(held, available.currency)  # Money, without its import
            super().__init__(
                f"Available balance {available} ({reserved} held) is less than {amount}"
            )
        else:
            super().__init__(f"Balance {available} is less than {amount}")


class BalanceLimitExceeded(WalletError):
    """A deposit that would pass the maximum balance; nothing changed."""

    code = "BALANCE_LIMIT_EXCEEDED"
    status = 400
    title = "Balance limit exceeded"

    def __init__(self, balance: Money, amount: Money, maximum: Money) -> None:
        super().__init__(f"Balance {balance} plus {amount} would exceed the maximum {maximum}")


class StorageUnavailable(WalletError):
    """The system of record cannot be reached in time; the outcome is unknown."""

    code = "SERVICE_UNAVAILABLE"
    status = 503
    title = "Service unavailable"


class IdempotencyKeyInUse(WalletError):
    """Another request with the same key is still running."""

    code = "IDEMPOTENCY_KEY_IN_USE"
    status = 409
    title = "Idempotency key in use"


class IdempotencyKeyReused(WalletError):
    """The key was used before for a different request."""

    code = "IDEMPOTENCY_KEY_REUSED"
    status = 422
    title = "Idempotency key reused"


class IdempotencyKeyTaken(WalletError):
    """Storage found the key recorded by a concurrent request; nothing was applied."""

    code = IdempotencyKeyInUse.code  # to the client, the same as a request still running
    status = IdempotencyKeyInUse.status
    title = IdempotencyKeyInUse.title


class Replayed(WalletError):
    """A refusal recorded under an idempotency key, answered again."""

    def __init__(self, original: WalletError, request_id: str) -> None:
        super().__init__(str(original))
        self.original = original
        self.request_id = request_id
        self.code = original.code
        self.status = original.status
        self.title = original.title
