"""Domain errors: each names one way a request can fail, with a stable code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from wallet.domain.money import Money


class WalletError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "WALLET_ERROR"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field of a request, for the problem's ``errors`` list."""

    field: str
    message: str


class ValidationFailed(WalletError):
    """The request is malformed; nothing ran."""

    code = "VALIDATION_ERROR"

    def __init__(self, errors: list[FieldError], detail: str = "The request is invalid") -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        return cls([FieldError(field, message)], f"{field}: {message}")


class WalletNotFound(WalletError):
    code = "WALLET_NOT_FOUND"

    def __init__(self, wallet_id: UUID) -> None:
        super().__init__(f"Wallet {wallet_id} does not exist")
        self.wallet_id = wallet_id


class InsufficientFunds(WalletError):
    """A withdrawal larger than the balance; nothing changed."""

    code = "INSUFFICIENT_FUNDS"

    def __init__(self, balance: Money, amount: Money) -> None:
        super().__init__(f"Balance {balance} is less than {amount}")


class BalanceLimitExceeded(WalletError):
    """A deposit that would pass the maximum balance; nothing changed."""

    code = "BALANCE_LIMIT_EXCEEDED"

    def __init__(self, balance: Money, amount: Money, maximum: Money) -> None:
        super().__init__(f"Balance {balance} plus {amount} would exceed the maximum {maximum}")


class StorageUnavailable(WalletError):
    """The system of record cannot be reached in time; the outcome is unknown."""

    code = "SERVICE_UNAVAILABLE"


class IdempotencyKeyInUse(WalletError):
    """Another request with the same key is still running."""

    code = "IDEMPOTENCY_KEY_IN_USE"


class IdempotencyKeyReused(WalletError):
    """The key was used before for a different request."""

    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyKeyTaken(WalletError):
    """Storage found the key recorded by a concurrent request; nothing was applied."""

    code = "IDEMPOTENCY_KEY_IN_USE"


class Replayed(WalletError):
    """A refusal recorded under an idempotency key, answered again."""

    def __init__(self, original: WalletError, request_id: str) -> None:
        super().__init__(str(original))
        self.original = original
        self.request_id = request_id
        self.code = original.code
