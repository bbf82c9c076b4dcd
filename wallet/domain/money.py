"""Money: an exact amount in integer minor units of its currency, strictly parsed.

A request's amount is parsed before its wallet is found (``Amount``: exact, positive, at
most 3 decimals and the largest amount); it becomes ``Money`` in the wallet's currency
once that is known, which checks its digits against the currency's.
"""

from __future__ import annotations

import re
from decimal import Decimal

from wallet.domain.currency import MAX_AMOUNT_MAJOR, USD, Currency
from wallet.domain.values import value

MINOR_UNITS_PER_MAJOR = USD.minor_per_major
MAX_AMOUNT_MINOR = USD.max_amount_minor
MAX_BALANCE_MINOR = USD.max_balance_minor
MAX_LITERAL_LENGTH = 100
MAX_DECIMALS = 3  # the most any accepted currency has

_DECIMAL_STRING = re.compile(rf"[0-9]+(?:\.([0-9]{{1,{MAX_DECIMALS}}}))?", re.ASCII)
_MAX_AMOUNT = Decimal(MAX_AMOUNT_MAJOR)


class InvalidAmount(ValueError):
    """An amount the contract does not accept; the message says why."""


@value(order=True)
class Money:
    """A non-negative amount of one currency's money; arithmetic stays in integers."""

    minor: int
    currency: Currency = USD

    def __post_init__(self) -> None:
        if not 0 <= self.minor <= self.currency.max_balance_minor:
            raise ValueError(f"minor units out of range: {self.minor}")

    @classmethod
    def zero(cls, currency: Currency = USD) -> Money:
        return cls(0, currency)

    @classmethod
    def parse_amount(cls, value: object, currency: Currency = USD) -> Money:
        """Parse a request amount of ``currency``: a JSON number (as Decimal) or a string.

        The value is taken exactly as written: never rounded, never through a float.
        Raises InvalidAmount for anything the contract rejects.
        """
        return parse_amount(value).of(currency)

    def __str__(self) -> str:
        digits = self.currency.digits
        if not digits:
            return str(self.minor)
        major, fraction = divmod(self.minor, self.currency.minor_per_major)
        return f"{major}.{fraction:0{digits}d}"

    def __repr__(self) -> str:
        return f"Money('{self}', {self.currency.code})"


@value
class Amount:
    """A request's amount before its currency is known: exact, above 0, at most the
    largest amount, and with at most 3 decimals."""

    value: Decimal
    decimals: int  # a string's fraction digits as written; a number's, trailing zeros dropped
    written_as_string: bool

    def of(self, currency: Currency) -> Money:
        """This amount as money of ``currency``. Raises InvalidAmount when its digits do
        not fit the currency's minor unit."""
        digits = currency.digits
        if self.decimals > digits:
            raise InvalidAmount(_too_many_decimals(currency, self.written_as_string))
        if not self.decimals:  # a whole amount, the usual kind: no scaling of the Decimal
            return Money(int(self.value) * currency.minor_per_major, currency)
        return Money(int(self.value.scaleb(digits)), currency)

    @property
    def meaning(self) -> str:
        """The amount's value in thousandths, whatever form it was written in."""
        return str(int(self.value.scaleb(MAX_DECIMALS)))


def parse_amount(value: object) -> Amount:
    """A request amount in any accepted currency. Raises InvalidAmount for anything the
    contract rejects whatever the currency."""
    if isinstance(value, str):
        match = _DECIMAL_STRING.fullmatch(value) if len(value) <= MAX_LITERAL_LENGTH else None
        if match is None:
            raise InvalidAmount(
                f'must be a decimal string like "50" or "50.00" (at most {MAX_DECIMALS} decimals)'
            )
        return Amount(_bounded(Decimal(value)), len(match.group(1) or ""), True)
    if isinstance(value, bool) or value is None:
        raise InvalidAmount("must be a number or a decimal string, not " + _json_kind(value))
    if isinstance(value, int):
        value = Decimal(value)
    if isinstance(value, Decimal):
        bounded = _bounded(value)
        decimals = 0 if bounded == bounded.to_integral_value() else _significant_decimals(bounded)
        if decimals > MAX_DECIMALS:
            raise InvalidAmount(f"must have at most {MAX_DECIMALS} decimal places")
        return Amount(value, decimals, False)
    raise InvalidAmount("must be a number or a decimal string, not " + _json_kind(value))


def _bounded(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise InvalidAmount("must be a finite number")
    if value <= 0:
        raise InvalidAmount("must be greater than 0")
    if value > _MAX_AMOUNT:
        raise InvalidAmount(f"must be at most {Money(USD.max_amount_minor)}")
    return value


def _significant_decimals(value: Decimal) -> int:
    """How many fraction digits ``value`` has once trailing zeros are dropped (``0.100``
    has 1). Works on the digit tuple: no context precision or rounding is involved."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent >= 0:  # a whole number as written (``50``, ``1e2``): no fraction digits
        return 0
    coefficient = int("".join(map(str, digits)))
    while coefficient and coefficient % 10 == 0:
        coefficient //= 10
        exponent += 1
    return max(0, -exponent)


def _too_many_decimals(currency: Currency, written_as_string: bool) -> str:
    digits = currency.digits
    if written_as_string and not digits:
        return f'must be a string of digits like "50" for {currency} (it has no decimals)'
    if written_as_string:
        example = f'"50" or "50.{"0" * digits}"'
        return f"must be a decimal string like {example} (at most {digits} decimals for {currency})"
    if not digits:
        return f"must be a whole number for {currency}"
    return f"must have at most {digits} decimal places for {currency}"


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
