"""The request budget: every database wait of a request is cut to what is left of it."""

from __future__ import annotations

import asyncio

import pytest

from wallet.deadlines import deadline_within, request_budget, request_deadline, seconds_within


async def test_without_a_budget_a_wait_keeps_its_own_bound() -> None:
    assert seconds_within(2.0) == 2.0
    assert request_deadline() is None
    now = asyncio.get_running_loop().time()
    assert deadline_within(2.0) == pytest.approx(now + 2.0, abs=0.05)


async def test_a_wait_is_cut_to_what_is_left_of_the_budget() -> None:
    with request_budget(0.2):
        assert seconds_within(5.0) == pytest.approx(0.2, abs=0.05)
        await asyncio.sleep(0.1)
        assert seconds_within(5.0) == pytest.approx(0.1, abs=0.05)
        assert seconds_within(0.01) == 0.01  # a shorter bound of its own stays


async def test_the_budget_starts_with_the_first_wait_and_ends_with_the_block() -> None:
    with request_budget(0.2):
        await asyncio.sleep(0.1)  # reading the body, say: no database wait yet
        deadline = request_deadline()
        assert deadline == pytest.approx(asyncio.get_running_loop().time() + 0.2, abs=0.05)
        assert request_deadline() == deadline
    assert request_deadline() is None
