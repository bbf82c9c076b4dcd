"""Group commit: this process's concurrent operations applied in batches, one commit each.

Operations queue in arrival order while the previous batch commits; the next batch
takes up to ``max_batch`` of them, across wallets. Each wallet's run is decided
with the domain's rules (``plan_batch``) from the balance this process last saw,
and the store applies it only where the wallet's balance still lies in the range
where those decisions hold. A wallet found outside it (another process moved it,
or its balance was not known yet) is re-planned from its real balance and goes
first into the next batch, ahead of that wallet's later operations. A wallet whose
runs keep going stale (processes taking turns moving it) is decided under its row
lock instead: slower, but it cannot go stale, so every operation gets an answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Protocol
from uuid import UUID

from wallet.adapters.ids import time_ordered_uuids
from wallet.domain.batch import BatchPlan, plan_batch
from wallet.domain.errors import IdempotencyKeyTaken, StorageUnavailable, WalletNotFound
from wallet.domain.idempotency import Idempotency, Recorded
from wallet.domain.model import AppliedOperation, Operation, OperationRequest, Wallet
from wallet.domain.money import Money
from wallet.domain.pagination import Position
from wallet.domain.ports import WalletRepository
from wallet.metrics import BATCH_SIZE

log = logging.getLogger(__name__)

_MICROSECOND = timedelta(microseconds=1)
KNOWN_BALANCES = 100_000
LOCK_AFTER_REPLANS = 2  # optimistic tries before a run is decided under its row lock


@dataclass(slots=True)
class Run:
    """One wallet's operations in a batch, decided, with the ids their entries will get
    and the idempotency keys (if any) their outcomes are to be recorded under."""

    wallet_id: UUID
    plan: BatchPlan
    operation_ids: list[UUID]
    idempotencies: list[Idempotency | None]


@dataclass(frozen=True, slots=True)
class RunApplied:
    """A run the store applied (or, with nothing accepted, found still valid)."""

    wallet_id: UUID
    start_balance: int
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    applied: list[RunApplied]
    balances: dict[UUID, int]  # the real balance of each other run's wallet that exists
    taken: frozenset[str] = frozenset()  # keys recorded already: then nothing was applied


Planner = Callable[[Mapping[UUID, int]], list[Run]]
"""Plans runs from the balances read under their locks (wallets not found are left out)."""


class BatchStore(Protocol):
    async def apply_runs_locked(self, wallet_ids: Sequence[UUID], plan: Planner) -> BatchOutcome:
        """Lock the wallets, plan their runs from the balances read, apply them; one transaction.

        As ``apply_runs``, except that every run planned is applied: its balance
        cannot move between the read and the write.
        """

    async def apply_runs(self, runs: Sequence[Run]) -> BatchOutcome:
        """Apply every run whose wallet's balance lies in its plan's range, atomically.

        One transaction: all of it commits, or none (and StorageUnavailable is
        raised). An accepted operation's ledger entry has balance_after = start +
        offset_after and a time one microsecond after the previous one; the
        wallet's version grows by the run's accepted count. Each operation under a
        key has its outcome recorded in the same transaction; if any key is found
        recorded already, nothing at all is applied and ``taken`` names those keys.
        """


@dataclass(eq=False, slots=True)
class _Queued:
    wallet_id: UUID
    request: OperationRequest
    idempotency: Idempotency | None
    outcome: asyncio.Future[AppliedOperation]
    replans: int = 0


@dataclass(slots=True)
class _Batch:
    runs: dict[UUID, Run] = field(default_factory=dict)
    queued: dict[UUID, list[_Queued]] = field(default_factory=dict)
    contended: dict[UUID, list[_Queued]] = field(default_factory=dict)  # to decide under lock


class GroupCommitRepository:
    """WalletRepository whose ``apply`` joins a batch; everything else is the inner one's."""

    def __init__(
        self, inner: WalletRepository, store: BatchStore, timeout: float, max_batch: int
    ) -> None:
        self._inner = inner
        self._store = store
        self._timeout = timeout
        self._max_batch = max_batch
        self._queue: deque[_Queued] = deque()
        self._known: OrderedDict[UUID, int] = OrderedDict()
        self._flusher: asyncio.Task[None] | None = None

    async def create(self, wallet_id: UUID, idempotency: Idempotency | None = None) -> Wallet:
        return await self._inner.create(wallet_id, idempotency)

    async def get(self, wallet_id: UUID) -> Wallet:
        return await self._inner.get(wallet_id)

    async def list_wallets(self, limit: int, after: Position | None) -> list[Wallet]:
        return await self._inner.list_wallets(limit, after)

    async def list_operations(
        self, wallet_id: UUID, limit: int, before: Position | None
    ) -> list[Operation]:
        return await self._inner.list_operations(wallet_id, limit, before)

    async def ping(self) -> bool:
        return await self._inner.ping()

    async def find_recorded(self, key: str) -> Recorded | None:
        return await self._inner.find_recorded(key)

    async def forget_keys_older_than(self, age: timedelta) -> int:
        return await self._inner.forget_keys_older_than(age)

    async def apply(
        self, wallet_id: UUID, request: OperationRequest, idempotency: Idempotency | None = None
    ) -> AppliedOperation:
        """Queue the operation for the next batch and wait for that batch's outcome.

        Past the timeout the caller gets StorageUnavailable: an operation still
        queued is then dropped unapplied; one already in a committing batch may
        have been applied (its outcome is unknown, as with any lost answer).
        """
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[AppliedOperation] = loop.create_future()
        self._queue.append(_Queued(wallet_id, request, idempotency, outcome))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_while_queued())
        # A bare timer, not asyncio.timeout(): this runs once per request, and a settled
        # outcome is one the flusher leaves alone.
        expiry = loop.call_later(self._timeout, _expire, outcome)
        try:
            return await outcome
        finally:
            expiry.cancel()

    async def _flush_while_queued(self) -> None:
        while self._queue:
            batch = self._next_batch()
            if batch.contended:
                await self._commit_locked(batch.contended)
            if batch.runs:
                await self._commit(batch)

    def _next_batch(self) -> _Batch:
        """Take up to max_batch waiting operations, in order, and plan each wallet's run."""
        batch = _Batch()
        taken = 0
        while self._queue and taken < self._max_batch:
            queued = self._queue.popleft()
            if not queued.outcome.done():
                batch.queued.setdefault(queued.wallet_id, []).append(queued)
                taken += 1
        for wallet_id, waiting in list(batch.queued.items()):
            if any(w.replans >= LOCK_AFTER_REPLANS for w in waiting):
                batch.contended[wallet_id] = batch.queued.pop(wallet_id)
        starts = {wallet_id: self._known.get(wallet_id, 0) for wallet_id in batch.queued}
        batch.runs = _runs(batch.queued, starts)
        return batch

    async def _commit_locked(self, contended: dict[UUID, list[_Queued]]) -> None:
        """Decide and apply these wallets' runs under their row locks, in one transaction."""
        batch = _Batch(queued=contended)

        def plan(balances: Mapping[UUID, int]) -> list[Run]:
            batch.runs = _runs(contended, balances)
            return list(batch.runs.values())

        await self._settle_batch(batch, self._store.apply_runs_locked(list(contended), plan))

    async def _commit(self, batch: _Batch) -> None:
        await self._settle_batch(batch, self._store.apply_runs(list(batch.runs.values())))

    async def _settle_batch(self, batch: _Batch, applying: Awaitable[BatchOutcome]) -> None:
        """Await the store; give each operation its outcome, or queue it again."""
        BATCH_SIZE.observe(sum(len(waiting) for waiting in batch.queued.values()))
        try:
            outcome = await applying
        except Exception as error:  # an outage, or a bug: every caller in the batch gets it
            self._fail(batch, error)
            return
        if outcome.taken:
            self._retry_without(batch, outcome.taken)
            return
        for applied in outcome.applied:
            self._settle(batch.runs[applied.wallet_id], batch.queued[applied.wallet_id], applied)
        settled = {applied.wallet_id for applied in outcome.applied}
        stale = [wallet_id for wallet_id in reversed(batch.queued) if wallet_id not in settled]
        for wallet_id in stale:
            self._replan_later(wallet_id, batch.queued[wallet_id], outcome.balances.get(wallet_id))

    def _settle(self, run: Run, queued: list[_Queued], applied: RunApplied) -> None:
        """Hand each operation of a committed run its own outcome."""
        start = Money(applied.start_balance)
        accepted = run.plan.accepted
        self._remember(run.wallet_id, start.minor + run.plan.net)
        first_version = applied.version - accepted
        first_time = applied.updated_at - (accepted - 1) * _MICROSECOND
        position = 0
        for waiting, decision, operation_id in zip(
            queued, run.plan.decisions, run.operation_ids, strict=True
        ):
            if not decision.accepted:
                _refuse(waiting, decision.refusal(start))
                continue
            at = first_time + position * _MICROSECOND
            position += 1
            balance = Money(start.minor + decision.offset_after)
            wallet = Wallet(
                run.wallet_id, balance, first_version + position, applied.created_at, at
            )
            request = waiting.request
            operation = Operation(
                operation_id, run.wallet_id, request.type, request.amount, balance, at
            )
            _succeed(waiting, AppliedOperation(wallet, operation))

    def _replan_later(self, wallet_id: UUID, queued: list[_Queued], balance: int | None) -> None:
        """Queue a run whose balance moved again, first; refuse it if the wallet is gone."""
        if balance is None:
            self._known.pop(wallet_id, None)
            for waiting in queued:
                _refuse(waiting, WalletNotFound(wallet_id))
            return
        self._remember(wallet_id, balance)
        for waiting in reversed(queued):
            waiting.replans += 1
            self._queue.appendleft(waiting)

    def _retry_without(self, batch: _Batch, taken: frozenset[str]) -> None:
        """Nothing was applied: refuse the operations whose key is taken, requeue the rest."""
        for queued in reversed([q for waiting in batch.queued.values() for q in waiting]):
            key = queued.idempotency.key if queued.idempotency else None
            if key in taken:
                _refuse(queued, IdempotencyKeyTaken(f"the key {key!r} was recorded meanwhile"))
            else:
                self._queue.appendleft(queued)

    def _fail(self, batch: _Batch, error: Exception) -> None:
        """Fail every operation of the batch; the flusher goes on with the next one."""
        log.warning("a batch for %d wallets failed: %r", len(batch.runs), error)
        for wallet_id, queued in batch.queued.items():
            self._known.pop(wallet_id, None)
            for waiting in queued:
                _refuse(waiting, error)

    def _remember(self, wallet_id: UUID, balance: int) -> None:
        self._known[wallet_id] = balance
        self._known.move_to_end(wallet_id)
        if len(self._known) > KNOWN_BALANCES:
            self._known.popitem(last=False)


def _runs(queued: Mapping[UUID, list[_Queued]], starts: Mapping[UUID, int]) -> dict[UUID, Run]:
    """Each wallet's queued operations decided from its start (a wallet without one is
    left out), with fresh entry ids, all drawn at once."""
    planned = [wallet_id for wallet_id in queued if wallet_id in starts]
    ids = iter(time_ordered_uuids(sum(len(queued[wallet_id]) for wallet_id in planned)))
    runs = {}
    for wallet_id in planned:
        waiting = queued[wallet_id]
        plan = plan_batch(Money(starts[wallet_id]), [w.request for w in waiting])
        keys = [w.idempotency for w in waiting]
        runs[wallet_id] = Run(wallet_id, plan, list(islice(ids, len(waiting))), keys)
    return runs


def _succeed(waiting: _Queued, result: AppliedOperation) -> None:
    if not waiting.outcome.done():  # else its caller gave up on it
        waiting.outcome.set_result(result)


def _expire(outcome: asyncio.Future[AppliedOperation]) -> None:
    if not outcome.done():
        outcome.set_exception(StorageUnavailable("the database did not answer in time"))


def _refuse(waiting: _Queued, error: Exception) -> None:
    if not waiting.outcome.done():
        waiting.outcome.set_exception(error)
