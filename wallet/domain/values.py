"""Immutable values that are cheap to make.

A frozen dataclass checks immutability at run time by setting each field through
``object.__setattr__``, which makes building one several times slower than building a
plain slotted one: about 5 % of a deposit, whose path makes a dozen of them. The values
made on every request are declared with ``@value`` instead: the same slotted dataclass,
equality and hash, declared frozen to the type checker (PEP 681's ``frozen_default``),
so ``mypy --strict``, which the lint runs on every change, refuses any assignment to a
field; at run time nothing is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, dataclass_transform, overload

T = TypeVar("T")


@overload
def value(cls: type[T], /) -> type[T]: ...


@overload
def value(*, order: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, eq_default=True)
def value(
    cls: type[T] | None = None, /, *, order: bool = False
) -> type[T] | Callable[[type[T]], type[T]]:
    """A slotted dataclass with equality and a hash of its fields, frozen to the type checker."""

    def make(cls: type[T]) -> type[T]:
        return dataclass(slots=True, unsafe_hash=True, order=order)(cls)

    return make if cls is None else make(cls)
