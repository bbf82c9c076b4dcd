"""Turns per key: one holder at a time, the others in order, none past its deadline."""

from __future__ import annotations

import asyncio

import pytest

from wallet.adapters.turns import Turns
from wallet.domain.errors import StorageUnavailable


async def test_holders_of_one_key_take_turns_in_order_and_other_keys_do_not_wait() -> None:
    turns: Turns[str] = Turns()
    order: list[str] = []
    first_holds = asyncio.Event()
    let_go = asyncio.Event()

    async def hold(key: str, name: str) -> None:
        async with turns.turn(key, deadline=asyncio.get_running_loop().time() + 5):
            order.append(name)
            if name == "first":
                first_holds.set()
                await let_go.wait()

    first = asyncio.create_task(hold("a", "first"))
    await first_holds.wait()
    second = asyncio.create_task(hold("a", "second"))
    third = asyncio.create_task(hold("a", "third"))
    await hold("b", "other key")
    assert order == ["first", "other key"]
    let_go.set()
    await asyncio.gather(first, second, third)

    assert order == ["first", "other key", "second", "third"]
    assert turns._lines == {}


async def test_a_turn_that_does_not_come_by_the_deadline_is_unavailable() -> None:
    turns: Turns[str] = Turns()
    loop = asyncio.get_running_loop()
    async with turns.turn("a", deadline=loop.time() + 5):
        with pytest.raises(StorageUnavailable):
            async with turns.turn("a", deadline=loop.time() + 0.01):
                pytest.fail("the turn was taken while held")
    async with turns.turn("a", deadline=loop.time()):  # free again: taken at once
        pass
    assert turns._lines == {}
