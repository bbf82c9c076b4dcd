"""In-memory implementations of every port: the fakes that unit tests run against."""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from wallet.adapters.group_commit import (
    BatchOutcome,
    EntryWritten,
    PlannedBatch,
    Planner,
    RunApplied,
)
from wallet.domain.currency import USD, Currency
from wallet.domain.errors import (
    BalanceLimitExceeded,
    EventsExpired,
    HoldNotFound,
    IdempotencyKeyTaken,
    InsufficientFunds,
    StorageUnavailable,
    WalletNotFound,
)
from wallet.domain.events import Event, EventSubject, EventType
from wallet.domain.holds import Captured, Hold, HoldChanged, HoldRequest, HoldStatus
from wallet.domain.idempotency import (
    Idempotency,
    Outcome,
    Recorded,
    refusal_outcome,
)
from wallet.domain.model import (
    AppliedOperation,
    Leg,
    Operation,
    OperationRequest,
    OperationType,
    Wallet,
    next_balance,
)
from wallet.domain.money import Money
from wallet.domain.pagination import Position
from wallet.domain.ports import CacheState, WalletLoader
from wallet.domain.references import NO_METADATA, Metadata
from wallet.domain.transfers import AppliedTransfer, Transfer, TransferRequest

_TICK = timedelta(microseconds=1)


class InMemoryDatabase:
    """The system of record in dictionaries: Wallets, Ledger (one operation at a time),
    History, Holds, HoldBook, HoldExpiry, IdempotencyRecords, EventFeed and Health;
    ``available = False`` plays an outage, and ``clock`` is the store's clock, which
    decides expiry and the events' age."""

    def __init__(self) -> None:
        self.clock: Callable[[], datetime] = functools.partial(datetime.now, UTC)
        self._holds: dict[UUID, Hold] = {}  # as stored: HELD until marked otherwise
        self._wallets: dict[UUID, Wallet] = {}  # as stored: what holds reserve is worked out
        self._ledger: dict[UUID, list[Operation]] = {}
        self._last_time = datetime(2000, 1, 1, tzinfo=UTC)
        self._recorded: dict[str, tuple[Recorded, datetime]] = {}
        self._transfers: dict[UUID, Transfer] = {}
        self._events: list[Event] = []  # ascending ids; the retention drops a prefix
        self._event_ids = itertools.count(1)
        self._forgotten_through = 0  # the id of the last event the retention dropped
        self.available = True

    async def create(
        self,
        wallet_id: UUID,
        idempotency: Idempotency | None = None,
        *,
        currency: Currency = USD,
        metadata: Metadata = NO_METADATA,
    ) -> Wallet:
        self._check_available()
        self._check_key_free(idempotency)
        now = self._now()
        wallet = Wallet(wallet_id, Money.zero(currency), 0, now, now, metadata)
        self._wallets[wallet_id] = wallet
        self._ledger[wallet_id] = []
        self._record(idempotency, Outcome.CREATED, wallet=wallet)
        self._emit(EventType.WALLET_CREATED, wallet_id, now, wallet)
        return wallet

    async def get(self, wallet_id: UUID) -> Wallet:
        self._check_available()
        return self.wallet_now(wallet_id)

    async def list_wallets(self, limit: int, after: Position | None) -> list[Wallet]:
        self._check_available()
        ordered = sorted(self._wallets.values(), key=_position)
        found = [w for w in ordered if after is None or _position(w) > after][:limit]
        return [self.wallet_now(wallet.id) for wallet in found]

    def wallet_now(self, wallet_id: UUID) -> Wallet:
        """The wallet with what its holds reserve now. Raises WalletNotFound."""
        wallet = self._find(wallet_id)
        now = self.clock()
        open_holds = [
            hold
            for hold in self._holds.values()
            if hold.wallet_id == wallet_id and _status(hold, now) is HoldStatus.HELD
        ]
        if not open_holds:
            return wallet
        held = sum(hold.amount.minor for hold in open_holds)
        until = min(hold.expires_at for hold in open_holds)
        return replace(wallet, held_minor=held, held_until=until)

    async def apply(
        self, wallet_id: UUID, request: OperationRequest, idempotency: Idempotency | None = None
    ) -> AppliedOperation:
        self._check_available()
        self._check_key_free(idempotency)
        wallet = self.wallet_now(wallet_id)
        try:
            next_balance(wallet.balance, request, wallet.held_minor)
        except (InsufficientFunds, BalanceLimitExceeded) as refusal:
            self._record_refusal(idempotency, refusal, wallet, request.amount)
            raise
        operation = self._write(wallet_id, request)
        self._record(idempotency, Outcome.APPLIED, operation=operation)
        self._emit(EventType.OPERATION_APPLIED, wallet_id, operation.created_at, operation)
        return AppliedOperation(self.wallet_now(wallet_id), operation)

    def _write(self, wallet_id: UUID, request: OperationRequest) -> Operation:
        """Append the request's entry to the wallet's ledger, a change of its version."""
        wallet = self._wallets[wallet_id]
        now = self._now()
        balance = Money(wallet.balance.minor + request.delta_minor, wallet.currency)
        changed = replace(wallet, balance=balance, version=wallet.version + 1, updated_at=now)
        self._wallets[wallet_id] = changed
        operation = request.entry(uuid4(), wallet_id, balance, now)
        self._ledger[wallet_id].append(operation)
        return operation

    def _record_refusal(
        self,
        idempotency: Idempotency | None,
        refusal: InsufficientFunds | BalanceLimitExceeded,
        wallet: Wallet,
        amount: Money,
    ) -> None:
        outcome = refusal_outcome(refusal)
        self._record(
            idempotency, outcome, before=wallet.balance, amount=amount, held=wallet.held_minor
        )

    async def place(
        self, hold_id: UUID, request: HoldRequest, idempotency: Idempotency | None = None
    ) -> HoldChanged:
        self._check_available()
        self._check_key_free(idempotency)
        wallet = self.wallet_now(request.wallet_id)
        try:
            withdrawal = OperationRequest(OperationType.WITHDRAW, request.amount)
            next_balance(wallet.balance, withdrawal, wallet.held_minor)
        except InsufficientFunds as refusal:
            self._record_refusal(idempotency, refusal, wallet, request.amount)
            raise
        now = self._now()
        hold = Hold(
            hold_id,
            request.wallet_id,
            request.amount,
            HoldStatus.HELD,
            now + timedelta(seconds=request.expires_in),
            now,
            now,
            request.to_wallet_id,
            None,
            request.reference,
            request.metadata,
        )
        self._holds[hold_id] = hold
        self._changed(request.wallet_id, now)
        self._record(idempotency, Outcome.HELD, hold=hold)
        self._emit(EventType.HOLD_CREATED, request.wallet_id, now, hold)
        return HoldChanged(hold, (self.wallet_now(request.wallet_id),))

    async def capture(
        self, hold: Hold, amount: Money, idempotency: Idempotency | None = None
    ) -> HoldChanged:
        self._check_available()
        self._check_key_free(idempotency)
        hold_id = hold.id
        hold = self._hold_now(hold_id)
        hold.check_active()
        transfer_id = uuid4() if hold.to_wallet_id is not None else None
        legs = hold.capture_legs(amount, transfer_id)
        if hold.to_wallet_id is not None:
            payee = self.wallet_now(hold.to_wallet_id)
            try:
                next_balance(payee.balance, legs[1].request, payee.held_minor)
            except BalanceLimitExceeded as refusal:
                self._record_refusal(idempotency, refusal, payee, amount)
                raise
        entries = tuple(self._write(wallet_id, request) for wallet_id, request in legs)
        captured_hold = replace(
            hold,
            status=HoldStatus.CAPTURED,
            captured_amount=amount,
            updated_at=entries[0].created_at,
        )
        self._holds[hold_id] = captured_hold
        transfer = None
        if transfer_id is not None:
            out, into = entries
            transfer = _transfer_of(transfer_id, legs, (out, into), hold_id)
            self._transfers[transfer_id] = transfer
        captured = Captured(captured_hold, entries, transfer)
        self._record(idempotency, Outcome.CAPTURED, operation=entries[0], captured=captured)
        self._emit(EventType.HOLD_CAPTURED, hold.wallet_id, captured_hold.updated_at, captured)
        wallets = tuple(self.wallet_now(wallet_id) for wallet_id, _ in legs)
        return HoldChanged(captured_hold, wallets, captured)

    async def void(self, hold: Hold, idempotency: Idempotency | None = None) -> HoldChanged:
        self._check_available()
        self._check_key_free(idempotency)
        hold_id = hold.id
        hold = self._hold_now(hold_id)
        hold.check_active()
        now = self._now()
        voided = replace(hold, status=HoldStatus.VOIDED, updated_at=now)
        self._holds[hold_id] = voided
        self._changed(hold.wallet_id, now)
        self._record(idempotency, Outcome.VOIDED, hold=voided)
        self._emit(EventType.HOLD_VOIDED, hold.wallet_id, now, voided)
        return HoldChanged(voided, (self.wallet_now(hold.wallet_id),))

    async def find_hold(self, hold_id: UUID) -> Hold | None:
        self._check_available()
        hold = self._holds.get(hold_id)
        return None if hold is None else _as_now(hold, self.clock())

    async def list_holds(
        self, wallet_id: UUID, limit: int, before: Position | None, status: HoldStatus | None
    ) -> list[Hold]:
        self._check_available()
        self._find(wallet_id)
        now = self.clock()
        newest_first = sorted(
            (_as_now(hold, now) for hold in self._holds.values() if hold.wallet_id == wallet_id),
            key=_position,
            reverse=True,
        )
        return [
            hold
            for hold in newest_first
            if (before is None or _position(hold) < before)
            and (status is None or hold.status is status)
        ][:limit]

    async def expire_due(self, wallets: int) -> tuple[int, list[Wallet]]:
        self._check_available()
        now = self.clock()
        due = [
            hold
            for hold in self._holds.values()
            if hold.status is HoldStatus.HELD and hold.expires_at <= now
        ]
        changed: list[UUID] = []
        for hold in due:
            if hold.wallet_id not in changed and len(changed) == wallets:
                continue
            if hold.wallet_id not in changed:
                changed.append(hold.wallet_id)
            marked = self._holds[hold.id] = _as_now(hold, now)
            at = self._now()
            self._changed(hold.wallet_id, at)
            # Stamped, as in PostgreSQL, with the moment the hold expired: its updatedAt.
            self._emit(EventType.HOLD_EXPIRED, hold.wallet_id, marked.updated_at, marked)
        expired = sum(1 for hold in due if hold.wallet_id in changed)
        return expired, [self.wallet_now(wallet_id) for wallet_id in changed]

    async def count_open(self) -> int:
        now = self.clock()
        return sum(1 for hold in self._holds.values() if _status(hold, now) is HoldStatus.HELD)

    def _hold_now(self, hold_id: UUID) -> Hold:
        hold = self._holds.get(hold_id)
        if hold is None:
            raise HoldNotFound(hold_id)
        return _as_now(hold, self.clock())

    def _changed(self, wallet_id: UUID, at: datetime) -> None:
        """A change to the wallet that writes no entry (a hold placed, voided or expired)."""
        wallet = self._wallets[wallet_id]
        self._wallets[wallet_id] = replace(wallet, version=wallet.version + 1, updated_at=at)

    async def transfer(
        self, transfer_id: UUID, request: TransferRequest, idempotency: Idempotency | None = None
    ) -> AppliedTransfer:
        self._check_available()
        self._check_key_free(idempotency)
        legs = request.legs(transfer_id)
        wallets = [self.wallet_now(leg.wallet_id) for leg in legs]
        for wallet, (_, leg_request) in zip(wallets, legs, strict=True):
            try:
                next_balance(wallet.balance, leg_request, wallet.held_minor)
            except (InsufficientFunds, BalanceLimitExceeded) as refusal:
                self._record_refusal(idempotency, refusal, wallet, request.amount)
                raise
        out, into = (self._write(wallet_id, leg_request) for wallet_id, leg_request in legs)
        made = request.made(transfer_id, (out, into))
        self._transfers[transfer_id] = made
        self._record(idempotency, Outcome.APPLIED, operation=out, transfer=made)
        self._emit(EventType.TRANSFER_COMPLETED, made.from_wallet_id, made.created_at, made)
        payer, payee = (self.wallet_now(leg.wallet_id) for leg in legs)
        return AppliedTransfer(made, (payer, payee))

    async def read_events(
        self, after: int | None, limit: int, wallet_id: UUID | None
    ) -> list[Event]:
        self._check_available()
        if after is not None and after < self._forgotten_through:
            raise EventsExpired(after, self._forgotten_through)
        newer = (event for event in self._events if event.id > (after or 0))
        found = (e for e in newer if wallet_id is None or _concerns(e, wallet_id))
        return list(itertools.islice(found, limit))

    async def forget_events_older_than(self, age: timedelta) -> int:
        """Drop the oldest events up to the first one younger than ``age`` by the store's
        clock: what is kept is always every event after some id."""
        self._check_available()
        cutoff = self.clock() - age
        dropped = 0
        while dropped < len(self._events) and self._events[dropped].created_at < cutoff:
            dropped += 1
        if dropped:
            self._forgotten_through = self._events[dropped - 1].id
            del self._events[:dropped]
        return dropped

    def _emit(self, kind: EventType, wallet_id: UUID, at: datetime, subject: EventSubject) -> None:
        """The event of a change just committed, in the same step: ids 1, 2, 3 … in commit
        order, so per wallet in ledger order too."""
        self._events.append(Event(next(self._event_ids), kind, wallet_id, at, subject))

    async def find_recorded(self, key: str) -> Recorded | None:
        self._check_available()
        found = self._recorded.get(key)
        return found[0] if found else None

    async def forget_keys_older_than(self, age: timedelta) -> int:
        cutoff = datetime.now(UTC) - age
        expired = [key for key, (_, at) in self._recorded.items() if at < cutoff]
        for key in expired:
            del self._recorded[key]
        return len(expired)

    def _check_key_free(self, idempotency: Idempotency | None) -> None:
        if idempotency is not None and idempotency.key in self._recorded:
            raise IdempotencyKeyTaken(f"the key {idempotency.key!r} is recorded already")

    def _record(
        self,
        idempotency: Idempotency | None,
        outcome: Outcome,
        wallet: Wallet | None = None,
        operation: Operation | None = None,
        before: Money | None = None,
        amount: Money | None = None,
        transfer: Transfer | None = None,
        held: int = 0,
        hold: Hold | None = None,
        captured: Captured | None = None,
    ) -> None:
        if idempotency is None:
            return
        recorded = Recorded(
            idempotency.fingerprint,
            idempotency.request_id,
            outcome,
            wallet,
            operation,
            before,
            amount,
            transfer,
            held,
            hold,
            captured,
        )
        self._recorded[idempotency.key] = (recorded, datetime.now(UTC))

    async def list_operations(
        self, wallet_id: UUID, limit: int, before: Position | None, reference: str | None = None
    ) -> list[Operation]:
        self._check_available()
        self._find(wallet_id)
        newest_first = sorted(self._ledger[wallet_id], key=_position, reverse=True)
        return [
            op
            for op in newest_first
            if (before is None or _position(op) < before)
            and (reference is None or op.reference == reference)
        ][:limit]

    async def ping(self) -> bool:
        return self.available

    async def find_transfer(self, transfer_id: UUID) -> Transfer | None:
        self._check_available()
        return self._transfers.get(transfer_id)

    async def balance_at(self, wallet_id: UUID, at: datetime) -> Money:
        self._check_available()
        wallet = self._find(wallet_id)
        made_by_then = [op for op in self._ledger[wallet_id] if op.created_at <= at]
        if not made_by_then:
            return Money(0, wallet.currency)
        return max(made_by_then, key=_position).balance_after

    def ledger(self, wallet_id: UUID) -> list[Operation]:
        """The wallet's ledger in the order it was applied."""
        return list(self._ledger[wallet_id])

    def _find(self, wallet_id: UUID) -> Wallet:
        try:
            return self._wallets[wallet_id]
        except KeyError:
            raise WalletNotFound(wallet_id) from None

    def _now(self) -> datetime:
        """Wall-clock time, strictly increasing so that ledger order is time order."""
        self._last_time = max(datetime.now(UTC), self._last_time + _TICK)
        return self._last_time

    def _check_available(self) -> None:
        if not self.available:
            raise StorageUnavailable("the in-memory store is switched off")


class InMemoryBatchStore:
    """BatchStore over an in-memory repository; ``available = False`` plays an outage,
    ``hold`` another transaction keeping a wallet locked until ``release``."""

    def __init__(self, repository: InMemoryDatabase) -> None:
        self._repository = repository
        self.available = True
        self.batches: list[PlannedBatch] = []
        self.locked_batches: list[PlannedBatch] = []
        self.held: set[UUID] = set()
        self._released = asyncio.Event()

    def hold(self, wallet_id: UUID) -> None:
        self.held.add(wallet_id)

    def release(self, wallet_id: UUID) -> None:
        self.held.discard(wallet_id)
        self._released.set()  # wakes those waiting; later ones wait on a new event
        self._released = asyncio.Event()

    async def apply_batch(self, batch: PlannedBatch) -> BatchOutcome:
        await self._round_trip()
        self.batches.append(batch)
        repository = self._repository
        wallets = {w: repository.wallet_now(w) for w in batch.plan.runs if w in repository._wallets}
        runs = batch.plan.runs.values()
        linked = Counter(run.component for run in runs)
        busy = frozenset(
            run.wallet_id
            for run in runs
            if run.wallet_id in wallets
            and run.wallet_id in self.held
            and (run.accepted or linked[run.component] > 1)
        )
        unsettled = {
            run.component
            for run in runs
            if run.wallet_id not in wallets
            or run.wallet_id in busy
            or not run.holds_for(wallets[run.wallet_id].balance.minor)
            or run.held != wallets[run.wallet_id].held_minor
        }
        settled = [run.wallet_id for run in runs if run.component not in unsettled]
        if taken := self._taken_keys(batch, settled):
            return BatchOutcome([], {}, taken)
        read = [
            wallets[run.wallet_id]
            for run in runs
            if run.wallet_id in wallets and run.component in unsettled and run.wallet_id not in busy
        ]
        balances = {wallet.id: wallet.balance.minor for wallet in read}
        held = {wallet.id: wallet.held_minor for wallet in read if wallet.held_minor}
        return BatchOutcome(self._apply(batch, settled), balances, busy=busy, held=held)

    async def apply_batch_locked(self, wallet_ids: Sequence[UUID], plan: Planner) -> BatchOutcome:
        await self._round_trip()
        while self.held.intersection(wallet_ids):
            await self._released.wait()
        repository = self._repository
        wallets = [repository.wallet_now(i) for i in wallet_ids if i in repository._wallets]
        batch = plan(
            {wallet.id: wallet.balance.minor for wallet in wallets},
            {wallet.id: wallet.held_minor for wallet in wallets if wallet.held_minor},
        )
        if batch is None:
            return BatchOutcome([], {})
        self.locked_batches.append(batch)
        settled = list(batch.plan.runs)
        if taken := self._taken_keys(batch, settled):
            return BatchOutcome([], {}, taken)
        return BatchOutcome(self._apply(batch, settled), {})

    async def _round_trip(self) -> None:
        """A round trip, during which more operations queue; or an outage."""
        await asyncio.sleep(0)
        if not (self.available and self._repository.available):
            raise StorageUnavailable("the in-memory store is switched off")

    def _taken_keys(self, batch: PlannedBatch, settled: Sequence[UUID]) -> frozenset[str]:
        """The settled movements' keys recorded already (the SQL store then applies nothing)."""
        recorded = self._repository._recorded
        return frozenset(
            key.key
            for decision, key in zip(batch.plan.decisions, batch.idempotencies, strict=True)
            if key and key.key in recorded and decision.legs[0].wallet_id in settled
        )

    def _apply(self, batch: PlannedBatch, settled: Sequence[UUID]) -> list[RunApplied]:
        """Append the settled wallets' accepted entries a microsecond apart, record the
        transfers and keys, and answer with what was written, as the SQL store does."""
        repository = self._repository
        starts = {wallet_id: repository.wallet_now(wallet_id) for wallet_id in settled}
        first = repository._now()
        entries: dict[UUID, list[EntryWritten]] = {wallet_id: [] for wallet_id in settled}
        for decision, entry_ids, key in zip(
            batch.plan.decisions, batch.entry_ids, batch.idempotencies, strict=True
        ):
            legs = decision.legs
            if legs[0].wallet_id not in starts:
                continue
            if not decision.accepted:
                wallet_id, request = legs[decision.refused_by]
                wallet = starts[wallet_id]
                offset = decision.offsets_before[decision.refused_by]
                before = Money(wallet.balance.minor + offset, wallet.currency)
                repository._record(
                    key,
                    decision.outcome,
                    before=before,
                    amount=request.amount,
                    held=wallet.held_minor,
                )
                continue
            written = []
            for index, (wallet_id, request) in enumerate(legs):
                wallet = starts[wallet_id]
                at = first + decision.positions[index] * _TICK
                balance = Money(
                    wallet.balance.minor + decision.offset_after(index), wallet.currency
                )
                entry = request.entry(entry_ids[index], wallet_id, balance, at)
                repository._ledger[wallet_id].append(entry)
                version = wallet.version + decision.positions[index] + 1
                entries[wallet_id].append(EntryWritten(entry.id, at, balance.minor, version))
                written.append(entry)
            transfer = None
            transfer_id = legs[0].request.transfer_id
            if transfer_id is not None:
                out, into = written
                transfer = _transfer_of(transfer_id, legs, (out, into))
                repository._transfers[transfer_id] = transfer
            repository._record(key, Outcome.APPLIED, operation=written[0], transfer=transfer)
            payer, applied = legs[0].wallet_id, written[0]
            if transfer is None:
                repository._emit(EventType.OPERATION_APPLIED, payer, applied.created_at, applied)
            else:
                repository._emit(EventType.TRANSFER_COMPLETED, payer, transfer.created_at, transfer)
        return [self._settled(starts[w], entries[w]) for w in settled]

    def _settled(self, wallet: Wallet, entries: list[EntryWritten]) -> RunApplied:
        repository = self._repository
        start = wallet.balance.minor
        if entries:
            last = entries[-1]
            repository._last_time = max(repository._last_time, last.created_at)
            wallet = replace(
                wallet,
                balance=Money(last.balance_after, wallet.currency),
                version=last.version,
                updated_at=last.created_at,
            )
            repository._wallets[wallet.id] = replace(wallet, held_minor=0, held_until=None)
        return RunApplied(
            wallet_id=wallet.id,
            start_balance=start,
            balance=wallet.balance.minor,
            version=wallet.version,
            created_at=wallet.created_at,
            updated_at=wallet.updated_at,
            entries=entries,
            metadata=wallet.metadata,
            held=wallet.held_minor,
            held_until=wallet.held_until,
        )


def _transfer_of(
    transfer_id: UUID,
    legs: Sequence[Leg],
    entries: tuple[Operation, Operation],
    hold_id: UUID | None = None,
) -> Transfer:
    out = legs[0]
    return Transfer(
        transfer_id,
        out.wallet_id,
        legs[1].wallet_id,
        out.request.amount,
        entries[0].created_at,
        entries,
        out.request.reference,
        out.request.metadata,
        hold_id,
    )


class InMemoryBalanceCache:
    """BalanceCache in a dictionary; ``available = False`` plays an outage, and
    ``unfenced = True`` a write that could neither update the cache nor fence it."""

    def __init__(self) -> None:
        self.entries: dict[UUID, Wallet] = {}
        self.available = True
        self.unfenced = False
        self.hits = 0
        self.misses = 0

    async def read_through(self, wallet_id: UUID, load: WalletLoader) -> Wallet:
        if not self.available:
            return await load(wallet_id)
        cached = self.entries.get(wallet_id)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        wallet = await load(wallet_id)
        await self.put(wallet)
        return wallet

    async def put(self, wallet: Wallet) -> None:
        if self.unfenced:
            raise StorageUnavailable("the cache and the database both failed")
        if not self.available:
            self.entries.clear()  # what a failed write could leave behind is never served
            return
        cached = self.entries.get(wallet.id)
        if cached is None or cached.version < wallet.version:
            self.entries[wallet.id] = wallet

    async def state(self) -> CacheState:
        return "ok" if self.available else "down"


def _concerns(event: Event, wallet_id: UUID) -> bool:
    """Whether a reader of ``wallet_id``'s events gets this one: the wallet's own, and the
    transfers and captures that pay it."""
    if event.wallet_id == wallet_id:
        return True
    subject = event.subject
    if isinstance(subject, Captured):
        return subject.hold.to_wallet_id == wallet_id
    return isinstance(subject, Transfer) and subject.to_wallet_id == wallet_id


def _position(item: Wallet | Operation | Hold) -> Position:
    return Position(item.created_at, item.id)


def _status(hold: Hold, now: datetime) -> HoldStatus:
    """The hold's status at ``now``: a hold still held reads EXPIRED from its expiry on."""
    if hold.status is HoldStatus.HELD and hold.expires_at <= now:
        return HoldStatus.EXPIRED
    return hold.status


def _as_now(hold: Hold, now: datetime) -> Hold:
    """The hold as it reads at ``now`` (expired then, as of its expiry)."""
    if _status(hold, now) is hold.status:
        return hold
    return replace(hold, status=HoldStatus.EXPIRED, updated_at=hold.expires_at)
