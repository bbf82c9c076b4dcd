"""Taking turns per key within this process: one holder at a time, the others in line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from wallet.domain.errors import StorageUnavailable

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class _Line:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    people: int = 0  # the holder and those waiting: the line goes when nobody is left


class Turns(Generic[K]):
    """One turn at a time per key; a key nobody holds or waits for costs nothing kept."""

    def __init__(self) -> None:
        self._lines: dict[K, _Line] = {}

    @asynccontextmanager
    async def turn(self, key: K, deadline: float) -> AsyncIterator[None]:
        """Hold the key's turn; StorageUnavailable if it does not come by ``deadline``
        (on the loop's clock)."""
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _Line()
        line.people += 1
        try:
            if line.lock.locked():
                try:
                    async with asyncio.timeout_at(deadline):
                        await line.lock.acquire()
                except TimeoutError:
                    raise StorageUnavailable("the turn did not come in time") from None
            else:
                await line.lock.acquire()  # free: taken at once
            try:
                yield
            finally:
                line.lock.release()
        finally:
            line.people -= 1
            if not line.people:
                del self._lines[key]
