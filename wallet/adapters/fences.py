"""Cache fences: how a write that could not reach the cache warns every process.

A fence names a wallet and a version: "every cached copy older than this is
stale". Whoever carries fences (PostgreSQL NOTIFY here) implements the announcer
on the writing side and feeds a sink on the listening side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

Fence = tuple[UUID, int]  # a wallet, and the version older copies of which are stale


class FenceAnnouncer(Protocol):
    async def announce(self, fences: Sequence[Fence]) -> None:
        """Returns once every listening process will hear the fences; raises
        StorageUnavailable when that cannot be made sure of."""


class FenceSink(Protocol):
    """What a listener tells the cache of its process."""

    def fenced(self, fences: list[Fence]) -> None:
        """Fences were heard: copies older than them must not be served from now on."""

    async def listening(self) -> None:
        """The listener hears fences (again); any sent while it did not were missed."""

    def deaf(self) -> None:
        """The listener lost its connection: fences may go unheard from now on."""
