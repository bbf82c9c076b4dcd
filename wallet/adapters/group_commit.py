"""Group commit: this process's concurrent operations applied in batches, one commit each.

Operations queue in arrival order while the previous batch commits; the next batch
takes up to ``max_batch`` of them, across wallets. Each wallet's run is decided
with the domain's rules (``plan_batch``) from the balance this process last saw,
and the store applies it only where the wallet's balance still lies in the range
where those decisions hold. A wallet found outside it (another process moved it,
or its balance was not known yet) is re-planned from its real balance and goes
first into the next batch, ahead of that wallet's later operations.

Two kinds of wallet leave the batches for a while and are decided under their row
lock instead, each by a task of its own, so that the batches keep flowing: one whose
runs keep going stale (processes taking turns moving it), and one that a batch found
locked by another transaction for longer than a batch waits (a moment: as long as a
concurrent batch holds one). Such a wallet's operations, the ones queued after them
included, wait for its lock there, each no longer than its caller does; after that one
run the wallet returns to the batches, with what queued for it meanwhile first.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import Context
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Protocol, TypeVar
from uuid import UUID

from wallet.adapters.ids import time_ordered_uuids
from wallet.deadlines import deadline_within
from wallet.domain.batch import BatchPlan, plan_batch
from wallet.domain.errors import IdempotencyKeyTaken, StorageUnavailable, WalletNotFound
from wallet.domain.idempotency import Idempotency
from wallet.domain.model import AppliedOperation, OperationRequest, Wallet
from wallet.domain.money import Money
from wallet.domain.references import Metadata
from wallet.metrics import BATCH_SIZE

log = logging.getLogger(__name__)

T = TypeVar("T")

KNOWN_BALANCES = 100_000
LOCK_AFTER_REPLANS = 2  # optimistic tries before a run is decided under its row lock
HELD_FOR = 1.0  # seconds a wallet found held elsewhere skips the batches (each would wait)


@dataclass(slots=True)
class Run:
    """One wallet's operations in a batch, decided, with the ids their entries will get
    and the idempotency keys (if any) their outcomes are to be recorded under."""

    wallet_id: UUID
    plan: BatchPlan
    operation_ids: list[UUID]
    idempotencies: list[Idempotency | None]


@dataclass(frozen=True, slots=True)
class EntryWritten:
    """An accepted operation's ledger entry as the store wrote it, with the version it
    gave its wallet."""

    operation_id: UUID
    created_at: datetime
    balance_after: int
    version: int


@dataclass(frozen=True, slots=True)
class RunApplied:
    """A run the store applied (or, with nothing accepted, found still valid): the
    balance it started from, the wallet as it left it, and its entries in order."""

    wallet_id: UUID
    start_balance: int
    balance: int
    version: int
    created_at: datetime
    updated_at: datetime
    entries: list[EntryWritten]
    metadata: Metadata  # the wallet's


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    applied: list[RunApplied]
    balances: dict[UUID, int]  # the real balance of each other run's wallet that exists
    taken: frozenset[str] = frozenset()  # keys recorded already: then nothing was applied
    busy: frozenset[UUID] = frozenset()  # wallets another transaction holds: left untouched


Planner = Callable[[Mapping[UUID, int]], list[Run]]
"""Plans runs from the balances read under their locks (wallets not found are left out)."""


class BatchStore(Protocol):
    async def apply_runs_locked(self, wallet_ids: Sequence[UUID], plan: Planner) -> BatchOutcome:
        """Lock the wallets, plan their runs from the balances read, apply them; one transaction.

        As ``apply_runs``, except that every run planned is applied: its balance
        cannot move between the read and the write. It waits for locks held elsewhere.
        """

    async def apply_runs(self, runs: Sequence[Run]) -> BatchOutcome:
        """Apply every run whose wallet's balance lies in its plan's range, atomically.

        One transaction: all of it commits, or none (and StorageUnavailable is
        raised). An accepted operation's ledger entry has balance_after = start +
        offset_after and a time one microsecond after the previous one; the
        wallet's version grows by the run's accepted count. Each operation under a
        key has its outcome recorded in the same transaction; if any key is found
        recorded already, nothing at all is applied and ``taken`` names those keys.
        It waits for a row lock only a moment (as long as a concurrent batch holds one):
        a wallet with accepted operations that another transaction holds locked longer
        is left untouched and named in ``busy``. Each run applied comes back as written:
        its entries, its wallet, and the balance it started from.
        """


@dataclass(eq=False, slots=True)
class _Queued:
    wallet_id: UUID
    request: OperationRequest
    idempotency: Idempotency | None
    outcome: asyncio.Future[AppliedOperation]
    replans: int = 0
    deadline: float = math.inf  # on the loop's clock: when its caller gives up


@dataclass(slots=True)
class _Batch:
    runs: dict[UUID, Run] = field(default_factory=dict)
    queued: dict[UUID, list[_Queued]] = field(default_factory=dict)


class GroupCommitLedger:
    """Ledger whose ``apply`` joins a batch: this process's operations, one commit each."""

    def __init__(self, store: BatchStore, timeout: float, max_batch: int) -> None:
        self._store = store
        self._timeout = timeout
        self._max_batch = max_batch
        self._queue: deque[_Queued] = deque()
        self._known: OrderedDict[UUID, int] = OrderedDict()
        self._flusher: asyncio.Task[None] | None = None
        # Wallets decided under their row lock, off the batches: their operations in order.
        self._under_lock: dict[UUID, deque[_Queued]] = {}
        self._lock_waiters: set[asyncio.Task[None]] = set()
        self._held_until: dict[UUID, float] = {}  # wallets found held elsewhere, on the loop clock

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
        deadline = deadline_within(self._timeout)
        self._queue.append(_Queued(wallet_id, request, idempotency, outcome, deadline=deadline))
        self._flush_soon()
        # A bare timer, not asyncio.timeout(): this runs once per request, and a settled
        # outcome is one the flusher leaves alone.
        expiry = loop.call_at(deadline, _expire, outcome)
        try:
            return await outcome
        finally:
            expiry.cancel()

    def _flush_soon(self) -> None:
        if self._flusher is None or self._flusher.done():
            # A context of its own: it serves every request, bound by no one's budget.
            self._flusher = asyncio.create_task(self._flush_while_queued(), context=Context())

    async def _flush_while_queued(self) -> None:
        while self._queue:
            batch = self._next_batch()
            if batch.runs:
                await self._commit(batch)

    def _next_batch(self) -> _Batch:
        """Take up to max_batch waiting operations, in order, and plan each wallet's run;
        a wallet decided under its lock gets its operations there, behind its others."""
        batch = _Batch()
        taken = 0
        while self._queue and taken < self._max_batch:
            queued = self._queue.popleft()
            if queued.outcome.done():
                continue
            if queued.wallet_id in self._under_lock:
                self._under_lock[queued.wallet_id].append(queued)
                continue
            batch.queued.setdefault(queued.wallet_id, []).append(queued)
            taken += 1
        now = asyncio.get_running_loop().time()
        for wallet_id, waiting in list(batch.queued.items()):
            held = self._held_until.get(wallet_id, now) > now
            if not held:
                self._held_until.pop(wallet_id, None)
            if held or any(w.replans >= LOCK_AFTER_REPLANS for w in waiting):
                self._decide_under_lock(wallet_id, batch.queued.pop(wallet_id))
        starts = {wallet_id: self._known.get(wallet_id, 0) for wallet_id in batch.queued}
        batch.runs = _runs(batch.queued, starts)
        return batch

    async def _commit(self, batch: _Batch) -> None:
        applying = self._store.apply_runs(list(batch.runs.values()))
        await self._settle_batch(batch, applying, self._queue)

    def _decide_under_lock(self, wallet_id: UUID, queued: list[_Queued]) -> None:
        """Take the wallet off the batches, its ``queued`` operations (its earliest) first."""
        waiting = self._under_lock.get(wallet_id)
        if waiting is not None:
            waiting.extendleft(reversed(queued))
            return
        self._under_lock[wallet_id] = deque(queued)
        task = asyncio.create_task(self._commit_under_lock(wallet_id))
        self._lock_waiters.add(task)
        task.add_done_callback(self._lock_waiters.discard)

    async def _commit_under_lock(self, wallet_id: UUID) -> None:
        """Apply the wallet's waiting operations under its lock, once; then it returns to
        the batches, the operations that queued for it meanwhile first. (Under steady load
        its queue never empties, and a wallet kept here pays a transaction per run.)"""
        waiting = self._under_lock[wallet_id]
        try:
            queued = [w for w in waiting if not w.outcome.done()]
            waiting.clear()
            if queued and not await self._commit_locked(wallet_id, queued, waiting):
                # Still held: its next operations would only make a batch wait, then come here.
                self._held_until[wallet_id] = asyncio.get_running_loop().time() + HELD_FOR
            else:
                self._held_until.pop(wallet_id, None)
        finally:
            del self._under_lock[wallet_id]
            if waiting:
                self._queue.extendleft(reversed(waiting))
                self._flush_soon()

    async def _commit_locked(
        self, wallet_id: UUID, queued: list[_Queued], requeue: deque[_Queued]
    ) -> bool:
        """Decide and apply the wallet's run under its row lock, waiting for that lock no
        longer than the last of its callers does; whether the lock was had in that time."""
        batch = _Batch(queued={wallet_id: queued})

        def plan(balances: Mapping[UUID, int]) -> list[Run]:
            # Decided now, under the lock: callers who gave up meanwhile are left out.
            still = [w for w in queued if not w.outcome.done()]
            batch.queued = {wallet_id: still} if still else {}
            batch.runs = _runs(batch.queued, balances)
            return list(batch.runs.values())

        applying = self._store.apply_runs_locked([wallet_id], plan)
        deadline = max(w.deadline for w in queued)
        failure = await self._settle_batch(batch, _by(deadline, applying), requeue)
        return not isinstance(failure, _StillLocked)

    async def _settle_batch(
        self, batch: _Batch, applying: Awaitable[BatchOutcome], requeue: deque[_Queued]
    ) -> Exception | None:
        """Await the store; give each operation its outcome, or queue it again (first in
        ``requeue``). What failed the whole batch, if anything did."""
        BATCH_SIZE.observe(sum(len(waiting) for waiting in batch.queued.values()))
        try:
            outcome = await applying
        except Exception as error:  # an outage, or a bug: every caller in the batch gets it
            self._fail(batch, error)
            return error
        if outcome.taken:
            self._retry_without(batch, outcome.taken, requeue)
            return None
        for applied in outcome.applied:
            self._settle(batch.runs[applied.wallet_id], batch.queued[applied.wallet_id], applied)
        held_until = asyncio.get_running_loop().time() + HELD_FOR
        for wallet_id in outcome.busy:
            self._held_until[wallet_id] = held_until
            self._decide_under_lock(wallet_id, batch.queued[wallet_id])
        settled = {applied.wallet_id for applied in outcome.applied} | outcome.busy
        stale = [wallet_id for wallet_id in reversed(batch.queued) if wallet_id not in settled]
        for wallet_id in stale:
            balance = outcome.balances.get(wallet_id)
            self._replan_later(wallet_id, batch.queued[wallet_id], balance, requeue)
        return None

    def _settle(self, run: Run, queued: list[_Queued], applied: RunApplied) -> None:
        """Hand each operation of a committed run its own outcome: its entry as written,
        or its refusal worded with the balance the run started from."""
        currency = queued[0].request.amount.currency  # one wallet's: one currency
        start = Money(applied.start_balance, currency)
        self._remember(run.wallet_id, applied.balance)
        written = iter(applied.entries)
        for waiting, decision in zip(queued, run.plan.decisions, strict=True):
            if not decision.accepted:
                _refuse(waiting, decision.refusal(start))
                continue
            entry = next(written)
            balance = Money(entry.balance_after, currency)
            at = entry.created_at
            wallet = Wallet(
                run.wallet_id, balance, entry.version, applied.created_at, at, applied.metadata
            )
            operation = waiting.request.entry(entry.operation_id, run.wallet_id, balance, at)
            _succeed(waiting, AppliedOperation(wallet, operation))

    def _replan_later(
        self, wallet_id: UUID, queued: list[_Queued], balance: int | None, requeue: deque[_Queued]
    ) -> None:
        """Queue a run whose balance moved again, first; refuse it if the wallet is gone."""
        if balance is None:
            self._known.pop(wallet_id, None)
            for waiting in queued:
                _refuse(waiting, WalletNotFound(wallet_id))
            return
        self._remember(wallet_id, balance)
        for waiting in reversed(queued):
            waiting.replans += 1
            requeue.appendleft(waiting)

    def _retry_without(self, batch: _Batch, taken: frozenset[str], requeue: deque[_Queued]) -> None:
        """Nothing was applied: refuse the operations whose key is taken, requeue the rest."""
        for queued in reversed([q for waiting in batch.queued.values() for q in waiting]):
            key = queued.idempotency.key if queued.idempotency else None
            if key in taken:
                _refuse(queued, IdempotencyKeyTaken(f"the key {key!r} was recorded meanwhile"))
            else:
                requeue.appendleft(queued)

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
        currency = waiting[0].request.amount.currency
        plan = plan_batch(Money(starts[wallet_id], currency), [w.request for w in waiting])
        keys = [w.idempotency for w in waiting]
        runs[wallet_id] = Run(wallet_id, plan, list(islice(ids, len(waiting))), keys)
    return runs


class _StillLocked(StorageUnavailable):
    """The wallet stayed locked elsewhere until its callers gave up."""


async def _by(deadline: float, applying: Awaitable[T]) -> T:
    """What ``applying`` gives, or _StillLocked once ``deadline`` passes."""
    try:
        async with asyncio.timeout_at(deadline):
            return await applying
    except TimeoutError:
        raise _StillLocked("the wallet stayed locked until its callers gave up") from None


def _succeed(waiting: _Queued, result: AppliedOperation) -> None:
    if not waiting.outcome.done():  # else its caller gave up on it
        waiting.outcome.set_result(result)


def _expire(outcome: asyncio.Future[AppliedOperation]) -> None:
    if not outcome.done():
        outcome.set_exception(StorageUnavailable("the database did not answer in time"))


def _refuse(waiting: _Queued, error: Exception) -> None:
    if not waiting.outcome.done():
        waiting.outcome.set_exception(error)
