"""Sharing one round trip among the callers that queue up while the previous one runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
A = TypeVar("A")
R = TypeVar("R")


class Coalescer(Generic[K, A, R]):
    """Per key, at most one call runs; callers arriving meanwhile share the next one.

    A caller never receives the result of a call that started before it arrived,
    so coalescing cannot hand out an answer older than the caller's request.
    ``call(key, args)`` receives the arguments of every caller it serves.
    """

    def __init__(self, call: Callable[[K, list[A]], Awaitable[R]]) -> None:
        self._call = call
        self._waiting: dict[K, list[tuple[A, asyncio.Future[R]]]] = {}
        self._draining: dict[K, asyncio.Task[None]] = {}

    async def submit(self, key: K, arg: A) -> R:
        result: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((arg, result))
        if key not in self._draining:
            self._draining[key] = asyncio.create_task(self._drain(key))
        return await result

    async def _drain(self, key: K) -> None:
        try:
            while waiting := self._waiting.pop(key, None):
                try:
                    value = await self._call(key, [arg for arg, _ in waiting])
                except Exception as error:
                    for _, result in waiting:
                        if not result.done():
                            result.set_exception(error)
                    continue
                for _, result in waiting:
                    if not result.done():
                        result.set_result(value)
        finally:
            del self._draining[key]
