"""Money: an exact amount in integer minor units (cents), strictly parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

MINOR_UNITS_PER_MAJOR = 100
MAX_AMOUNT_MINOR = 1_000_000_000_000 * MINOR_UNITS_PER_MAJOR
MAX_BALANCE_MINOR = 9_000_000_000_000_000 * MINOR_UNITS_PER_MAJOR
MAX_LITERAL_LENGTH = 100

_DECIMAL_STRING = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?", re.ASCII)
_MAX_AMOUNT = Decimal(MAX_AMOUNT_MINOR) / MINOR_UNITS_PER_MAJOR


class InvalidAmount(ValueError):
    """An amount the contract does not accept; the message says why."""


@dataclass(frozen=True, order=True, slots=True)
class Money:
    """A non-negative amount of money; arithmetic stays in integers."""

    minor: int

    def __post_init__(self) -> None:
        if not 0 <= self.minor <= MAX_BALANCE_MINOR:
            raise ValueError(f"minor units out of range: {self.minor}")

    @classmethod
    def zero(cls) -> Money:
        return cls(0)

    @classmethod
    def parse_amount(cls, value: object) -> Money:
        """Parse a request amount: a JSON number (as Decimal) or a decimal string.

        The value is taken exactly as written: never rounded, never through a float.
        Raises InvalidAmount for anything the contract rejects.
        """
        if isinstance(value, str):
            return cls._from_decimal(_parse_decimal_string(value))
        if isinstance(value, Decimal):
            return cls._from_decimal(value)
        if isinstance(value, bool) or value is None:
            raise InvalidAmount("must be a number or a decimal string, not " + _json_kind(value))
        if isinstance(value, int):
            return cls._from_decimal(Decimal(value))
        raise InvalidAmount("must be a number or a decimal string, not " + _json_kind(value))

    @classmethod
    def _from_decimal(cls, value: Decimal) -> Money:
        if not value.is_finite():
            raise InvalidAmount("must be a finite number")
        if value <= 0:
            raise InvalidAmount("must be greater than 0")
        if value > _MAX_AMOUNT:
            raise InvalidAmount(f"must be at most {_MAX_AMOUNT:.2f}")
        return cls(_exact_minor_units(value))

    def __str__(self) -> str:
        major, cents = divmod(self.minor, MINOR_UNITS_PER_MAJOR)
        return f"{major}.{cents:02d}"

    def __repr__(self) -> str:
        return f"Money('{self}')"


def _parse_decimal_string(text: str) -> Decimal:
    if len(text) > MAX_LITERAL_LENGTH or not _DECIMAL_STRING.fullmatch(text):
        raise InvalidAmount('must be a decimal string like "50" or "50.00" (at most 2 decimals)')
    return Decimal(text)


def _exact_minor_units(value: Decimal) -> int:
    """Scale a positive, bounded Decimal to cents, refusing any sub-cent remainder.

    Works on the digit tuple so that no context precision or rounding is involved,
    and trailing zeros (``0.100``) are dropped before counting decimals.
    """
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    coefficient = int("".join(map(str, digits)))
    while coefficient and coefficient % 10 == 0:
        coefficient //= 10
        exponent += 1
    if exponent < -2:
        raise InvalidAmount("must have at most 2 decimal places")
    minor: int = coefficient * 10 ** (exponent + 2)
    return minor


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
