"""Values made with ``@value``: dataclass equality, hash and order, and immutable to mypy."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

from wallet.domain.money import Money
from wallet.domain.values import value


@value
class Point:
    x: int
    y: int = 0


@value(order=True)
class Ranked:
    rank: int


def test_a_value_compares_and_hashes_by_its_fields() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(2, 1)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert len({Point(1, 2), Point(1, 2), Point(3)}) == 2


def test_a_value_declared_ordered_sorts_by_its_fields() -> None:
    assert sorted([Ranked(3), Ranked(1), Ranked(2)]) == [Ranked(1), Ranked(2), Ranked(3)]
    assert Money(1) < Money(2)


def test_a_value_has_slots_only() -> None:
    with pytest.raises(AttributeError):
        Point(1).z = 3  # type: ignore[attr-defined]


def test_the_type_checker_refuses_to_change_a_field(tmp_path: Path) -> None:
    """What keeps a value immutable: the lint's ``mypy --strict`` run fails on any assignment."""
    source = tmp_path / "changes_a_value.py"
    source.write_text(
        textwrap.dedent(
            """
            from wallet.domain.model import Operation
            from wallet.domain.money import Money
            from wallet.domain.values import value

            @value
            class Pair:
                left: int
                right: int

            def change(pair: Pair, money: Money, operation: Operation) -> None:
                pair.left = 1
                money.minor = 2
                operation.reference = "changed"
            """
        )
    )
    report, _, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
    )

    assert status == 1, report
    assert report.count("is read-only") == 3, report
