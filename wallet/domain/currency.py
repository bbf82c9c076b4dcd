"""Currencies: the ISO 4217 codes a wallet may hold, each with its minor digits.

The table is ISO's own list of active codes, as the ``iso4217`` package ships it: a new
edition of the standard arrives with the package, never by hand. Only codes whose minor
unit is 0, 2 or 3 digits are accepted; funds codes (``USN``, ``CLF``), metals and the
special codes (``XAU``, ``XXX``, ``XTS``), which ISO gives no minor unit, are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType

import iso4217

ACCEPTED_DIGITS = (0, 2, 3)
MAX_AMOUNT_MAJOR = 1_000_000_000_000
MAX_BALANCE_MAJOR = 9_000_000_000_000_000
_CODE = re.compile(r"[A-Z]{3}", re.ASCII)


class InvalidCurrency(ValueError):
    """A currency code the service does not accept; the message says why."""


@dataclass(frozen=True, order=True, slots=True)
class Currency:
    """An ISO 4217 currency: its code and how many digits its minor unit has.

    The bounds in minor units are worked out once: every Money made checks one.
    """

    code: str
    digits: int
    minor_per_major: int = field(init=False, compare=False)
    max_amount_minor: int = field(init=False, compare=False)  # one request's largest amount
    max_balance_minor: int = field(init=False, compare=False)  # a wallet's largest balance

    def __post_init__(self) -> None:
        per_major: int = 10**self.digits
        object.__setattr__(self, "minor_per_major", per_major)
        object.__setattr__(self, "max_amount_minor", MAX_AMOUNT_MAJOR * per_major)
        object.__setattr__(self, "max_balance_minor", MAX_BALANCE_MAJOR * per_major)

    def __str__(self) -> str:
        return self.code


def _funds_codes() -> frozenset[str]:
    """The codes ISO marks as funds (``IsFund="true"``): units of account, not money."""
    funds = set()
    for entry in iso4217.raw_xml.iterfind("CcyTbl/CcyNtry"):
        name, code = entry.find("CcyNm"), entry.findtext("Ccy")
        if name is not None and code and name.get("IsFund", "").lower() == "true":
            funds.add(code.strip())
    return frozenset(funds)


def _accepted() -> MappingProxyType[str, Currency]:
    funds = _funds_codes()
    table = {
        entry.code: Currency(entry.code, entry.exponent)
        for entry in iso4217.Currency
        if entry.exponent in ACCEPTED_DIGITS and entry.code not in funds
    }
    return MappingProxyType(dict(sorted(table.items())))


CURRENCIES = _accepted()
USD = CURRENCIES["USD"]


def parse_currency(code: object) -> Currency:
    """The currency a code names. Raises InvalidCurrency for anything else."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise InvalidCurrency("must be an ISO 4217 code of three upper-case letters, like USD")
    found = CURRENCIES.get(code)
    if found is None:
        raise InvalidCurrency(
            f"{code} is not an active ISO 4217 currency with 0, 2 or 3 minor digits"
        )
    return found
