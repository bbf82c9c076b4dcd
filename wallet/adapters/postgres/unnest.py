"""Rows sent to a statement as one typed array per column, and read back with ``unnest``.

asyncpg sends a typed array as one binary value, so a batch of rows costs one parameter
per column however many rows it has. A row is a NamedTuple whose fields carry their SQL
types (``Uuid``, ``Bigint``, ...): cheap to make, one per operation of a batch, and its
columns are its own transpose. A statement's inputs are a dataclass of lists of rows (or
of plain values). ``placeholders`` gives each input's SQL under the input's name,
its parameters numbered in field order, and ``parameters`` the values in that same
order: no ``$n`` is ever numbered or mapped by hand.
"""

from __future__ import annotations

import functools
import itertools
import types
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin, get_type_hints
from uuid import UUID

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Uuid = Annotated[UUID, "uuid"]
Bigint = Annotated[int, "bigint"]
Integer = Annotated[int, "integer"]
Text = Annotated[str, "text"]
Bytea = Annotated[bytes, "bytea"]
# JSON sent as its text (asyncpg's own jsonb codec is not set up): the statement casts it.
JsonText = Annotated[str, "text"]


@dataclass(frozen=True, slots=True)
class _Input:
    """One field of a statement's inputs: its rows' columns (none for plain values), and
    the SQL type of each array it is sent as."""

    name: str
    columns: tuple[str, ...]
    sql_types: tuple[str, ...]


def placeholders(
    inputs: type[DataclassInstance], read: Collection[str] | None = None
) -> dict[str, str]:
    """Each input's SQL by its name: ``unnest($1::uuid[], ...) AS name(column, ...)``
    for a list of rows, ``$n::type[]`` for a list of values. With ``read``, only the
    inputs of those names, for a statement that reads no other: the others are neither
    numbered nor sent (PostgreSQL cannot type a parameter a statement never reads)."""
    numbers = itertools.count(1)
    sql = {}
    for given in _inputs(inputs, read):
        arrays = [f"${next(numbers)}::{sql_type}[]" for sql_type in given.sql_types]
        if given.columns:
            sql[given.name] = (
                f"unnest({', '.join(arrays)}) AS {given.name}({', '.join(given.columns)})"
            )
        else:
            (sql[given.name],) = arrays
    return sql


def parameters(inputs: DataclassInstance, read: Collection[str] | None = None) -> list[object]:
    """The statement's parameters, in the order ``placeholders`` numbers them (given the
    same ``read``): each list of rows as one array per column, each list of values as it is."""
    values: list[object] = []
    for given in _inputs(type(inputs), read):
        value = getattr(inputs, given.name)
        if given.columns:
            values.extend(_columns(given.columns, value))
        else:
            values.append(value)
    return values


def _columns(names: tuple[str, ...], rows: Sequence[tuple[object, ...]]) -> list[Sequence[object]]:
    """The rows transposed: one sequence per column, in ``names`` (their fields') order."""
    if not rows:
        return [() for _ in names]
    return list(zip(*rows, strict=True))


def _inputs(inputs: type[DataclassInstance], read: Collection[str] | None) -> tuple[_Input, ...]:
    every = _every_input(inputs)
    return every if read is None else tuple(given for given in every if given.name in read)


@functools.cache
def _every_input(inputs: type[DataclassInstance]) -> tuple[_Input, ...]:
    hints = get_type_hints(inputs, include_extras=True)
    found = []
    for field in fields(inputs):
        if get_origin(hints[field.name]) is not list:
            raise TypeError(f"{inputs.__name__}.{field.name} is not a list")
        (item,) = get_args(hints[field.name])
        if _is_row(item):
            row_hints = get_type_hints(item, include_extras=True)
            columns: tuple[str, ...] = item._fields
            sql_types = tuple(_sql_type(row_hints[column]) for column in columns)
            found.append(_Input(field.name, columns, sql_types))
        else:
            found.append(_Input(field.name, (), (_sql_type(item),)))
    return tuple(found)


def _is_row(item: Any) -> bool:
    """Whether ``item`` is a NamedTuple class (a row), not a plain value's type."""
    return isinstance(item, type) and issubclass(item, tuple) and hasattr(item, "_fields")


def _sql_type(hint: Any) -> str:
    """The SQL type a field's annotation names (``Uuid | None`` names uuid)."""
    if get_origin(hint) in (Union, types.UnionType):
        (hint,) = (arg for arg in get_args(hint) if arg is not type(None))
    if get_origin(hint) is not Annotated:
        raise TypeError(f"{hint!r} names no SQL type")
    sql_type: str = hint.__metadata__[0]
    return sql_type
