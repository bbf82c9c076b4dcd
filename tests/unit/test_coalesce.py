"""The coalescer: one call at a time, shared by the callers that queued behind it."""

from __future__ import annotations

import asyncio

import pytest

from wallet.adapters.coalesce import Coalescer


async def test_callers_that_arrive_during_a_call_share_the_next_one() -> None:
    calls: list[list[int]] = []
    release = asyncio.Event()

    async def call(args: list[int]) -> int:
        calls.append(args)
        await release.wait()
        return len(calls)

    coalescer: Coalescer[int, int] = Coalescer(call)
    first = asyncio.create_task(coalescer.submit(1))
    await asyncio.sleep(0)  # the first call is now running
    later = [asyncio.create_task(coalescer.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    release.set()

    assert await first == 1
    assert [await task for task in later] == [2, 2, 2]
    assert calls == [[1], [2, 3, 4]]


async def test_a_failing_call_fails_its_callers_and_the_next_call_still_runs() -> None:
    outcomes = iter([RuntimeError("down"), 7])

    async def call(args: list[str]) -> int:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    coalescer: Coalescer[str, int] = Coalescer(call)
    with pytest.raises(RuntimeError, match="down"):
        await coalescer.submit("a")
    assert await coalescer.submit("b") == 7
