"""Changes to a wallet's holds made together: those that arrive while a call for the
wallet is in flight wait for it, then go in the next call, all of them by one statement
(``change_holds``), under one row lock and one commit. A hot wallet's placements,
captures and voids so cost a statement per batch, not one each, and one call per wallet
is in flight from this process at a time (the others would only wait for its row lock).
"""

from __future__ import annotations

import asyncio
import logging
from contextvars import Context
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from wallet.adapters.postgres.connections import bounded_connection
from wallet.deadlines import seconds_within
from wallet.domain.errors import StorageUnavailable, WalletNotFound

log = logging.getLogger(__name__)

CHANGE_HOLDS = "SELECT * FROM change_holds($1, $2, $3, $4, $5, $6, $7, $8, $9)"
MAX_CHANGES = 128  # per call: a batch's statement holds the wallet's row lock throughout


@dataclass(slots=True)
class HoldChange:
    """One change as ``change_holds`` takes it: PLACE (amount, payee, expiry, labels),
    CAPTURE (the amount and its WITHDRAW entry's id) or VOID."""

    kind: str
    hold_id: UUID
    amount: int | None = None
    payee: UUID | None = None
    expires_in: int | None = None
    reference: str | None = None
    metadata: str | None = None  # JSON text
    entry_id: UUID | None = None
    answer: asyncio.Future[asyncpg.Record] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class HoldChanges:
    """Makes each wallet's hold changes in batches on an asyncpg pool: a call waits at most
    ``timeout`` seconds (the request's budget, if less), queueing included."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._waiting: dict[UUID, list[HoldChange]] = {}
        self._calls: set[asyncio.Task[None]] = set()

    async def make(self, wallet_id: UUID, change: HoldChange) -> asyncpg.Record:
        """The change's row of its batch. Raises WalletNotFound, or StorageUnavailable when
        the database cannot answer in time (the change may then have been made)."""
        waiting = self._waiting.get(wallet_id)
        if waiting is not None:
            waiting.append(change)
        else:
            self._waiting[wallet_id] = [change]
            # A context of its own: the call serves every change queued, bound by no one's budget.
            call = asyncio.create_task(self._call_while_waiting(wallet_id), context=Context())
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)
        try:
            async with asyncio.timeout(seconds_within(self._timeout)):
                return await asyncio.shield(change.answer)
        except TimeoutError:
            change.answer.cancel()  # if still queued, it is left out
            raise StorageUnavailable("the database did not answer in time") from None

    async def _call_while_waiting(self, wallet_id: UUID) -> None:
        waiting = self._waiting[wallet_id]
        try:
            while waiting:
                batch = [change for change in waiting[:MAX_CHANGES] if not change.answer.done()]
                del waiting[:MAX_CHANGES]
                if batch:
                    await self._call(wallet_id, batch)
        finally:
            del self._waiting[wallet_id]
            for change in waiting:  # only when cancelled, as the service stops
                _fail(change, StorageUnavailable("the service is stopping"))

    async def _call(self, wallet_id: UUID, batch: list[HoldChange]) -> None:
        try:
            async with bounded_connection(self._pool, self._timeout) as connection:
                rows = await connection.fetch(
                    CHANGE_HOLDS,
                    wallet_id,
                    [change.kind for change in batch],
                    [change.hold_id for change in batch],
                    [change.amount for change in batch],
                    [change.payee for change in batch],
                    [change.expires_in for change in batch],
                    [change.reference for change in batch],
                    [change.metadata for change in batch],
                    [change.entry_id for change in batch],
                )
        except Exception as error:  # an outage, or a bug: every change of the batch gets it
            if not isinstance(error, StorageUnavailable):
                log.error("a batch of %d hold changes failed", len(batch), exc_info=error)
            for change in batch:
                _fail(change, error)
            return
        if not rows:
            for change in batch:
                _fail(change, WalletNotFound(wallet_id))
            return
        if len(rows) != len(batch):
            log.error("%d hold changes answered by %d rows", len(batch), len(rows))
            for change in batch:
                _fail(change, RuntimeError("the hold changes were answered wrongly"))
            return
        for change, row in zip(batch, rows, strict=True):
            if not change.answer.done():  # else its caller gave up on it
                change.answer.set_result(row)


def _fail(change: HoldChange, error: Exception) -> None:
    if not change.answer.done():  # else its caller gave up on it
        change.answer.set_exception(error)
