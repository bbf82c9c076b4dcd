"""Sharing one round trip among the callers that queue up while the previous one runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import Context
from typing import Generic, TypeVar

A = TypeVar("A")
R = TypeVar("R")


class Coalescer(Generic[A, R]):
    """At most one call runs at a time; callers arriving meanwhile share the next one.

    A caller never receives the result of a call that started before it arrived,
    so coalescing cannot hand out an answer older than the caller's request.
    ``call(args)`` receives the argument of every caller it serves.
    """

    def __init__(self, call: Callable[[list[A]], Awaitable[R]]) -> None:
        self._call = call
        self._waiting: list[tuple[A, asyncio.Future[R]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def submit(self, arg: A) -> R:
        result: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((arg, result))
        if self._draining is None:
            # A context of its own: it serves every caller, bound by no one's budget.
            self._draining = asyncio.create_task(self._drain(), context=Context())
        return await result

    async def _drain(self) -> None:
        try:
            while self._waiting:
                waiting, self._waiting = self._waiting, []
                try:
                    value = await self._call([arg for arg, _ in waiting])
                except Exception as error:
                    for _, result in waiting:
                        if not result.done():
                            result.set_exception(error)
                    continue
                for _, result in waiting:
                    if not result.done():
                        result.set_result(value)
        finally:
            self._draining = None
