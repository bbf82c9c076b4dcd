"""Group commit: this process's concurrent money movements applied in batches, one commit
each.

Movements (an operation on one wallet, a transfer between two) queue in arrival order
while the previous batch commits; the next batch takes up to ``max_batch`` of them,
across wallets. They are decided with the domain's rules (``plan_batch``) from the
balances this process last saw, and the store applies each group of linked wallets only
where every one's balance still lies in the range where those decisions hold. A group
found outside it (another process moved a wallet, or its balance was not known yet) is
re-planned from the real balances and goes first into the next batch, ahead of later
movements.

Two kinds of wallet leave the batches for a while and are decided under their row
lock instead, each by a task of its own, so that the batches keep flowing: one whose
runs keep going stale (processes taking turns moving it), and one that a batch found
locked by another transaction for longer than a batch waits (a moment: as long as a
concurrent batch holds one). Such a wallet's movements, the ones queued after them
included, wait for the locks there (every wallet they touch, in one global order), each
no longer than its caller does; after that one run the wallet returns to the batches,
with what queued for it meanwhile first.
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
from typing import NamedTuple, Protocol, TypeVar
from uuid import UUID

from wallet.adapters.ids import time_ordered_uuids
from wallet.deadlines import deadline_within
from wallet.domain.batch import BatchPlan, Decision, plan_batch
from wallet.domain.errors import (
    BalanceLimitExceeded,
    IdempotencyKeyTaken,
    InsufficientFunds,
    StorageUnavailable,
    WalletNotFound,
)
from wallet.domain.idempotency import Idempotency
from wallet.domain.model import AppliedOperation, Leg, OperationRequest, Wallet
from wallet.domain.money import Money
from wallet.domain.references import Metadata
from wallet.domain.transfers import AppliedTransfer, TransferRequest
from wallet.metrics import BATCH_SIZE

log = logging.getLogger(__name__)

T = TypeVar("T")

KNOWN_BALANCES = 100_000
LOCK_AFTER_REPLANS = 2  # optimistic tries before a run is decided under its row lock
HELD_FOR = 1.0  # seconds a wallet found held elsewhere skips the batches (each would wait)


@dataclass(slots=True)
class PlannedBatch:
    """Movements decided together, with the ids their entries will get (one per leg) and
    the idempotency keys (if any) their outcomes are to be recorded under."""

    plan: BatchPlan
    entry_ids: list[tuple[UUID, ...]]  # per movement, per leg
    idempotencies: list[Idempotency | None]  # per movement


class EntryWritten(NamedTuple):
    """An accepted operation's ledger entry as the store wrote it, with the version it
    gave its wallet. (A tuple: one is made for every entry of every batch.)"""

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
    held: int = 0  # what its holds reserve (a batch leaves it as it found it)
    held_until: datetime | None = None  # when the next of those holds expires


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    applied: list[RunApplied]
    balances: dict[UUID, int]  # the real balance of each other run's wallet that exists
    taken: frozenset[str] = frozenset()  # keys recorded already: then nothing was applied
    busy: frozenset[UUID] = frozenset()  # wallets another transaction holds: left untouched
    held: dict[UUID, int] = field(default_factory=dict)  # of ``balances``' wallets, when not 0


Planner = Callable[[Mapping[UUID, int], Mapping[UUID, int]], PlannedBatch | None]
"""Plans a batch from the balances read under their locks, and what holds reserve of them
(None: nothing left to do)."""


class BatchStore(Protocol):
    async def apply_batch_locked(self, wallet_ids: Sequence[UUID], plan: Planner) -> BatchOutcome:
        """Lock the wallets, plan a batch from the balances read, apply it; one transaction.

        As ``apply_batch``, except that every wallet planned is applied: its balance
        cannot move between the read and the write. It waits for locks held elsewhere.
        """

    async def apply_batch(self, batch: PlannedBatch) -> BatchOutcome:
        """Apply every component of the batch whose wallets' balances all lie in their
        ranges, atomically.

        One transaction: all of it commits, or none (and StorageUnavailable is
        raised). An accepted leg's ledger entry has balance_after = start +
        offset_after and a time one microsecond after its wallet's previous one; the
        wallet's version grows by its accepted count; an accepted transfer is recorded
        with its two entries. Each movement under a key has its outcome recorded in the
        same transaction; if any key is found recorded already, nothing at all is
        applied and ``taken`` names those keys. It waits for a row lock only a moment (as
        long as a concurrent batch holds one): a wallet to change that another
        transaction holds locked longer is left untouched, with its whole component,
        and named in ``busy``. Each wallet settled comes back as written: its entries,
        its balance and the balance it started from.
        """


@dataclass(eq=False, slots=True)
class _Queued:
    legs: Sequence[Leg]
    idempotency: Idempotency | None
    outcome: asyncio.Future[list[AppliedOperation]]
    replans: int = 0
    deadline: float = math.inf  # on the loop's clock: when its caller gives up


@dataclass(slots=True)
class _Batch:
    queued: list[_Queued] = field(default_factory=list)
    planned: PlannedBatch | None = None


class GroupCommitLedger:
    """Ledger whose movements join a batch: this process's operations and transfers, one
    commit each."""

    def __init__(self, store: BatchStore, timeout: float, max_batch: int) -> None:
        self._store = store
        self._timeout = timeout
        self._max_batch = max_batch
        self._queue: deque[_Queued] = deque()
        self._known: OrderedDict[UUID, int] = OrderedDict()
        self._known_held: dict[UUID, int] = {}  # of the known wallets whose holds reserve any
        self._flusher: asyncio.Task[None] | None = None
        # Wallets decided under their row lock, off the batches: their movements in order.
        self._under_lock: dict[UUID, deque[_Queued]] = {}
        self._lock_waiters: set[asyncio.Task[None]] = set()
        self._held_until: dict[UUID, float] = {}  # wallets found held elsewhere, on the loop clock
        # Movements whose callers wait, and the one timer that expires them at their
        # deadlines: a timer for each would cost about as much as parsing its request.
        self._waiting: set[_Queued] = set()
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at = math.inf

    async def apply(
        self, wallet_id: UUID, request: OperationRequest, idempotency: Idempotency | None = None
    ) -> AppliedOperation:
        """Queue the operation for the next batch and wait for that batch's outcome.

        Past the timeout the caller gets StorageUnavailable: an operation still
        queued is then dropped unapplied; one already in a committing batch may
        have been applied (its outcome is unknown, as with any lost answer).
        """
        queued = self._queued((Leg(wallet_id, request),), idempotency)
        try:
            (applied,) = await queued.outcome
        finally:
            self._waiting.discard(queued)
        return applied

    async def transfer(
        self, transfer_id: UUID, request: TransferRequest, idempotency: Idempotency | None = None
    ) -> AppliedTransfer:
        """As ``apply``, for the transfer's two legs: they commit in one batch, together."""
        queued = self._queued(request.legs(transfer_id), idempotency)
        try:
            out, into = await queued.outcome
        finally:
            self._waiting.discard(queued)
        transfer = request.made(transfer_id, (out.operation, into.operation))
        return AppliedTransfer(transfer, (out.wallet, into.wallet))

    def _queued(self, legs: Sequence[Leg], idempotency: Idempotency | None) -> _Queued:
        """The movement queued for the next batch, its outcome (each leg's entry and
        wallet, in leg order) expired at the caller's deadline unless settled before; the
        caller stops waiting for it with ``self._waiting.discard``."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[list[AppliedOperation]] = loop.create_future()
        deadline = deadline_within(self._timeout)
        queued = _Queued(legs, idempotency, outcome, deadline=deadline)
        self._waiting.add(queued)
        self._queue.append(queued)
        self._flush_soon()
        if deadline < self._expiry_at:
            self._expire_at(deadline)
        return queued

    def _expire_at(self, deadline: float) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_at(deadline, self._expire_overdue)
        self._expiry_at = deadline

    def _expire_overdue(self) -> None:
        """Fail the waiting movements whose deadline passed (one settled meanwhile is left
        alone: the flusher skips an expired one); then wait for the next deadline."""
        self._expiry, self._expiry_at = None, math.inf
        now = asyncio.get_running_loop().time()
        next_deadline = math.inf
        for queued in self._waiting:
            if queued.deadline <= now:
                _expire(queued.outcome)
            elif not queued.outcome.done():
                next_deadline = min(next_deadline, queued.deadline)
        if next_deadline < math.inf:
            self._expire_at(next_deadline)

    def _flush_soon(self) -> None:
        if self._flusher is None or self._flusher.done():
            # A context of its own: it serves every request, bound by no one's budget.
            self._flusher = asyncio.create_task(self._flush_while_queued(), context=Context())

    async def _flush_while_queued(self) -> None:
        while self._queue:
            batch = self._next_batch()
            if batch.planned is not None:
                await self._commit(batch)

    def _next_batch(self) -> _Batch:
        """Take up to max_batch waiting movements, in order, and plan them; a movement on a
        wallet decided under its lock goes there, behind that wallet's others."""
        batch = _Batch()
        while self._queue and len(batch.queued) < self._max_batch:
            queued = self._queue.popleft()
            if queued.outcome.done():
                continue
            locked = self._locked_wallet(queued)
            if locked is not None:
                self._under_lock[locked].append(queued)
                continue
            batch.queued.append(queued)
        to_lock = self._wallets_to_lock(batch.queued)
        if to_lock:
            kept = []
            for queued in batch.queued:
                wallet_id = next(
                    (leg.wallet_id for leg in queued.legs if leg.wallet_id in to_lock), None
                )
                if wallet_id is None:
                    kept.append(queued)
                else:
                    self._decide_under_lock(wallet_id, [queued])
            batch.queued = kept
        if batch.queued:
            known = self._known
            starts = {w: known.get(w, 0) for q in batch.queued for w, _ in q.legs}
            batch.planned = _planned(batch.queued, starts, self._known_held)
        return batch

    def _locked_wallet(self, queued: _Queued) -> UUID | None:
        for leg in queued.legs:
            if leg.wallet_id in self._under_lock:
                return leg.wallet_id
        return None

    def _wallets_to_lock(self, queued: list[_Queued]) -> set[UUID]:
        """The wallets of this batch to decide under their lock: those found held elsewhere
        a moment ago, and those whose runs kept going stale."""
        to_lock: set[UUID] = set()
        now = asyncio.get_running_loop().time()
        if self._held_until:
            for wallet_id, until in list(self._held_until.items()):
                if until <= now:
                    del self._held_until[wallet_id]
            to_lock.update(
                leg.wallet_id for q in queued for leg in q.legs if leg.wallet_id in self._held_until
            )
        for q in queued:
            if q.replans >= LOCK_AFTER_REPLANS:
                to_lock.update(leg.wallet_id for leg in q.legs)
        return to_lock

    async def _commit(self, batch: _Batch) -> None:
        assert batch.planned is not None
        applying = self._store.apply_batch(batch.planned)
        await self._settle_batch(batch, applying, self._queue)

    def _decide_under_lock(self, wallet_id: UUID, queued: list[_Queued]) -> None:
        """Take the wallet off the batches, its ``queued`` movements (its earliest) first."""
        waiting = self._under_lock.get(wallet_id)
        if waiting is not None:
            waiting.extendleft(reversed(queued))
            return
        self._under_lock[wallet_id] = deque(queued)
        task = asyncio.create_task(self._commit_under_lock(wallet_id))
        self._lock_waiters.add(task)
        task.add_done_callback(self._lock_waiters.discard)

    async def _commit_under_lock(self, wallet_id: UUID) -> None:
        """Apply the wallet's waiting movements under its lock, once; then it returns to
        the batches, the movements that queued for it meanwhile first. (Under steady load
        its queue never empties, and a wallet kept here pays a transaction per run.)"""
        waiting = self._under_lock[wallet_id]
        try:
            queued = [w for w in waiting if not w.outcome.done()]
            waiting.clear()
            if queued and not await self._commit_locked(queued, waiting):
                # Still held: its next movements would only make a batch wait, then come here.
                self._held_until[wallet_id] = asyncio.get_running_loop().time() + HELD_FOR
            else:
                self._held_until.pop(wallet_id, None)
        finally:
            del self._under_lock[wallet_id]
            if waiting:
                self._queue.extendleft(reversed(waiting))
                self._flush_soon()

    async def _commit_locked(self, queued: list[_Queued], requeue: deque[_Queued]) -> bool:
        """Decide and apply the movements under their wallets' row locks, waiting for those
        locks no longer than the last of their callers does; whether the locks were had in
        that time."""
        batch = _Batch(queued=queued)
        wallet_ids = sorted({leg.wallet_id for q in queued for leg in q.legs})

        def plan(balances: Mapping[UUID, int], held: Mapping[UUID, int]) -> PlannedBatch | None:
            # Decided now, under the locks: callers who gave up meanwhile are left out, and
            # a movement on a wallet that is gone is refused.
            batch.queued = []
            for q in queued:
                if q.outcome.done():
                    continue
                missing = [leg.wallet_id for leg in q.legs if leg.wallet_id not in balances]
                if missing:
                    _refuse(q, WalletNotFound(missing[0]))
                else:
                    batch.queued.append(q)
            batch.planned = _planned(batch.queued, balances, held) if batch.queued else None
            return batch.planned

        applying = self._store.apply_batch_locked(wallet_ids, plan)
        deadline = max(w.deadline for w in queued)
        failure = await self._settle_batch(batch, _by(deadline, applying), requeue)
        return not isinstance(failure, _StillLocked)

    async def _settle_batch(
        self, batch: _Batch, applying: Awaitable[BatchOutcome], requeue: deque[_Queued]
    ) -> Exception | None:
        """Await the store; give each movement its outcome, or queue it again (first in
        ``requeue``). What failed the whole batch, if anything did."""
        BATCH_SIZE.observe(len(batch.queued))
        try:
            outcome = await applying
        except Exception as error:  # an outage, or a bug: every caller in the batch gets it
            self._fail(batch, error)
            return error
        if batch.planned is None:
            return None
        if outcome.taken:
            self._retry_without(batch, outcome.taken, requeue)
            return None
        try:
            self._hand_out(batch, outcome, requeue)
        except Exception as error:  # a bug: its callers learn of it now, not at their timeout
            log.error("handing out a batch's outcomes failed", exc_info=error)
            self._fail(batch, error)
            return error
        return None

    def _hand_out(self, batch: _Batch, outcome: BatchOutcome, requeue: deque[_Queued]) -> None:
        """Give each movement of the applied batch its outcome, or queue it again."""
        assert batch.planned is not None
        applied = {run.wallet_id: run for run in outcome.applied}
        for run in outcome.applied:
            self._remember(run.wallet_id, run.balance, run.held)
        for wallet_id, balance in outcome.balances.items():
            self._remember(wallet_id, balance, outcome.held.get(wallet_id, 0))
        stale: list[_Queued] = []
        busy: dict[UUID, list[_Queued]] = {}
        planned = batch.planned
        for queued, decision in zip(batch.queued, planned.plan.decisions, strict=True):
            wallets = [leg.wallet_id for leg in queued.legs]
            if all(wallet_id in applied for wallet_id in wallets):
                _settle(queued, decision, applied)
                continue
            held = next((w for w in wallets if w in outcome.busy), None)
            if held is not None:
                busy.setdefault(held, []).append(queued)
                continue
            missing = [w for w in wallets if w not in applied and w not in outcome.balances]
            if missing:
                self._known.pop(missing[0], None)
                _refuse(queued, WalletNotFound(missing[0]))
                continue
            queued.replans += 1
            stale.append(queued)
        requeue.extendleft(reversed(stale))
        held_until = asyncio.get_running_loop().time() + HELD_FOR
        for wallet_id, queued_there in busy.items():
            self._held_until[wallet_id] = held_until
            self._decide_under_lock(wallet_id, queued_there)

    def _retry_without(self, batch: _Batch, taken: frozenset[str], requeue: deque[_Queued]) -> None:
        """Nothing was applied: refuse the movements whose key is taken, requeue the rest."""
        for queued in reversed(batch.queued):
            key = queued.idempotency.key if queued.idempotency else None
            if key in taken:
                _refuse(queued, IdempotencyKeyTaken(f"the key {key!r} was recorded meanwhile"))
            else:
                requeue.appendleft(queued)

    def _fail(self, batch: _Batch, error: Exception) -> None:
        """Fail every movement of the batch; the flusher goes on with the next one."""
        log.warning("a batch of %d movements failed: %r", len(batch.queued), error)
        for queued in batch.queued:
            for leg in queued.legs:
                self._known.pop(leg.wallet_id, None)
            _refuse(queued, error)

    def _remember(self, wallet_id: UUID, balance: int, held: int = 0) -> None:
        self._known[wallet_id] = balance
        self._known.move_to_end(wallet_id)
        if held:
            self._known_held[wallet_id] = held
        elif self._known_held:
            self._known_held.pop(wallet_id, None)
        if len(self._known) > KNOWN_BALANCES:
            forgotten, _ = self._known.popitem(last=False)
            self._known_held.pop(forgotten, None)


def _planned(
    queued: Sequence[_Queued], starts: Mapping[UUID, int], held: Mapping[UUID, int]
) -> PlannedBatch:
    movements = [q.legs for q in queued]
    return planned_batch(movements, starts, [q.idempotency for q in queued], held)


def _settle(queued: _Queued, decision: Decision, applied: Mapping[UUID, RunApplied]) -> None:
    try:
        _succeed(queued, movement_outcome(queued.legs, decision, applied))
    except (InsufficientFunds, BalanceLimitExceeded) as refusal:
        _refuse(queued, refusal)


def movement_outcome(
    legs: Sequence[Leg], decision: Decision, applied: Mapping[UUID, RunApplied]
) -> list[AppliedOperation]:
    """A settled movement's outcome: each leg's entry as written, with its wallet right
    after it; or its refusal raised, worded with the balance its wallet started from."""
    if not decision.accepted:
        runs = [applied[leg.wallet_id] for leg in legs]
        raise decision.refusal(
            {run.wallet_id: run.start_balance for run in runs},
            {run.wallet_id: run.held for run in runs},
        )
    results = []
    for (wallet_id, request), position in zip(legs, decision.positions, strict=True):
        run = applied[wallet_id]
        entry = run.entries[position]
        balance = Money(entry.balance_after, request.amount.currency)
        at = entry.created_at
        wallet = Wallet(
            wallet_id,
            balance,
            entry.version,
            run.created_at,
            at,
            run.metadata,
            run.held,
            run.held_until,
        )
        operation = request.entry(entry.operation_id, wallet_id, balance, at)
        results.append(AppliedOperation(wallet, operation))
    return results


def planned_batch(
    movements: Sequence[Sequence[Leg]],
    starts: Mapping[UUID, int],
    idempotencies: list[Idempotency | None],
    held: Mapping[UUID, int] | None = None,
) -> PlannedBatch:
    """The movements decided from ``starts`` (with ``held`` of them reserved by holds),
    with fresh entry ids, all drawn at once."""
    moneys: dict[UUID, Money] = {}
    for legs in movements:
        for wallet_id, request in legs:
            if wallet_id not in moneys:
                moneys[wallet_id] = Money(starts[wallet_id], request.amount.currency)
    plan = plan_batch(moneys, movements, held)
    ids = time_ordered_uuids(sum(map(len, movements)))
    if len(ids) == len(movements):  # one leg each: deposits and withdrawals, the usual batch
        return PlannedBatch(plan, [(entry_id,) for entry_id in ids], idempotencies)
    drawn = iter(ids)
    entry_ids = [tuple(islice(drawn, len(legs))) for legs in movements]
    return PlannedBatch(plan, entry_ids, idempotencies)


class _StillLocked(StorageUnavailable):
    """The wallet stayed locked elsewhere until its callers gave up."""


async def _by(deadline: float, applying: Awaitable[T]) -> T:
    """What ``applying`` gives, or _StillLocked once ``deadline`` passes."""
    try:
        async with asyncio.timeout_at(deadline):
            return await applying
    except TimeoutError:
        raise _StillLocked("the wallet stayed locked until its callers gave up") from None


def _succeed(waiting: _Queued, result: list[AppliedOperation]) -> None:
    if not waiting.outcome.done():  # else its caller gave up on it
        waiting.outcome.set_result(result)


def _expire(outcome: asyncio.Future[list[AppliedOperation]]) -> None:
    if not outcome.done():
        outcome.set_exception(StorageUnavailable("the database did not answer in time"))


def _refuse(waiting: _Queued, error: Exception) -> None:
    if not waiting.outcome.done():
        waiting.outcome.set_exception(error)
