"""Idempotency-Key, once for every command: a repeat gets the first outcome again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from wallet.domain.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotencyKeyTaken,
    Replayed,
)
from wallet.domain.idempotency import Idempotency, Recorded
from wallet.domain.ports import IdempotencyRecords
from wallet.domain.values import value

V = TypeVar("V")

Command = Callable[[Idempotency | None], Awaitable[V]]
"""A command's effect; under a key it records its outcome in the same transaction."""
Replay = Callable[[Recorded], Awaitable[V]]
"""The first outcome of a command, answered again from its record."""

_REUSED = "This Idempotency-Key was used before for a different request"


@value
class Answer(Generic[V]):
    """A result, and whether it is the recorded answer to an earlier request with the same key."""

    value: V
    replayed: bool = False


class IdempotentCommands:
    """Runs commands under their keys: each key's effect happens at most once.

    The command records its outcome in the transaction of its effect, so a request
    whose answer was lost is answered again from the record, never applied twice.
    A repeat of a refusal gets the same refusal (raised as Replayed); a repeat of a
    success gets what ``replay`` rebuilds from the record.
    """

    def __init__(self, records: IdempotencyRecords) -> None:
        self._records = records
        self._running: dict[str, bytes] = {}  # keys of requests running in this process

    async def run(
        self, idempotency: Idempotency | None, command: Command[V], replay: Replay[V]
    ) -> Answer[V]:
        if idempotency is None:
            return Answer(await command(None))
        async with self._claim(idempotency):
            recorded = await self._records.find_recorded(idempotency.key)
            if recorded is None:
                try:
                    return Answer(await command(idempotency))
                except IdempotencyKeyTaken:  # recorded meanwhile by another process
                    recorded = await self._records.find_recorded(idempotency.key)
        recorded = _answering(recorded, idempotency)
        if recorded.refused:
            raise Replayed(recorded.refusal(), recorded.request_id)
        return Answer(await replay(recorded), replayed=True)

    @asynccontextmanager
    async def _claim(self, idempotency: Idempotency) -> AsyncIterator[None]:
        """Hold the key while its request runs here; a second one meanwhile is refused."""
        running = self._running.get(idempotency.key)
        if running is not None:
            if running != idempotency.fingerprint:
                raise IdempotencyKeyReused(_REUSED)
            raise IdempotencyKeyInUse("A request with this Idempotency-Key is still running")
        self._running[idempotency.key] = idempotency.fingerprint
        try:
            yield
        finally:
            del self._running[idempotency.key]


def _answering(recorded: Recorded | None, idempotency: Idempotency) -> Recorded:
    """The recorded answer, if it answers this very request."""
    if recorded is None:  # recorded by another process, then expired: vanishingly rare
        raise IdempotencyKeyInUse("A request with this Idempotency-Key is still settling")
    if recorded.fingerprint != idempotency.fingerprint:
        raise IdempotencyKeyReused(_REUSED)
    return recorded
