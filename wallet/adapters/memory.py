"""In-memory implementations of every port: the fakes that unit tests run against."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
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
    IdempotencyKeyTaken,
    InsufficientFunds,
    StorageUnavailable,
    WalletNotFound,
)
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
    History, IdempotencyRecords and Health; ``available = False`` plays an outage."""

    def __init__(self) -> None:
        self._wallets: dict[UUID, Wallet] = {}
        self._ledger: dict[UUID, list[Operation]] = {}
        self._last_time = datetime(2000, 1, 1, tzinfo=UTC)
        self._recorded: dict[str, tuple[Recorded, datetime]] = {}
        self._transfers: dict[UUID, Transfer] = {}
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
        return wallet

    async def get(self, wallet_id: UUID) -> Wallet:
        self._check_available()
        return self._find(wallet_id)

    async def list_wallets(self, limit: int, after: Position | None) -> list[Wallet]:
        self._check_available()
        ordered = sorted(self._wallets.values(), key=_position)
        return [w for w in ordered if after is None or _position(w) > after][:limit]

    async def apply(
        self, wallet_id: UUID, request: OperationRequest, idempotency: Idempotency | None = None
    ) -> AppliedOperation:
        self._check_available()
        self._check_key_free(idempotency)
        wallet = self._find(wallet_id)
        try:
            balance = next_balance(wallet.balance, request)
        except (InsufficientFunds, BalanceLimitExceeded) as refusal:
            outcome = refusal_outcome(refusal)
            self._record(idempotency, outcome, before=wallet.balance, amount=request.amount)
            raise
        now = self._now()
        wallet = replace(wallet, balance=balance, version=wallet.version + 1, updated_at=now)
        operation = request.entry(uuid4(), wallet_id, balance, now)
        self._wallets[wallet_id] = wallet
        self._ledger[wallet_id].append(operation)
        self._record(idempotency, Outcome.APPLIED, operation=operation)
        return AppliedOperation(wallet, operation)

    async def transfer(
        self, transfer_id: UUID, request: TransferRequest, idempotency: Idempotency | None = None
    ) -> AppliedTransfer:
        self._check_available()
        self._check_key_free(idempotency)
        legs = request.legs(transfer_id)
        wallets = [self._find(leg.wallet_id) for leg in legs]
        balances = []
        for wallet, (_, leg_request) in zip(wallets, legs, strict=True):
            try:
                balances.append(next_balance(wallet.balance, leg_request))
            except (InsufficientFunds, BalanceLimitExceeded) as refusal:
                outcome = refusal_outcome(refusal)
                self._record(idempotency, outcome, before=wallet.balance, amount=request.amount)
                raise
        now = self._now()
        entries = []
        for wallet, balance, (wallet_id, leg_request) in zip(wallets, balances, legs, strict=True):
            changed = replace(wallet, balance=balance, version=wallet.version + 1, updated_at=now)
            self._wallets[wallet_id] = changed
            entry = leg_request.entry(uuid4(), wallet_id, balance, now)
            self._ledger[wallet_id].append(entry)
            entries.append(AppliedOperation(changed, entry))
        out, into = entries
        made = request.made(transfer_id, (out.operation, into.operation))
        self._transfers[transfer_id] = made
        self._record(idempotency, Outcome.APPLIED, operation=out.operation, transfer=made)
        return AppliedTransfer(made, (out.wallet, into.wallet))

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
        wallets = self._repository._wallets
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
        }
        settled = [run.wallet_id for run in runs if run.component not in unsettled]
        if taken := self._taken_keys(batch, settled):
            return BatchOutcome([], {}, taken)
        balances = {
            run.wallet_id: wallets[run.wallet_id].balance.minor
            for run in runs
            if run.wallet_id in wallets and run.component in unsettled and run.wallet_id not in busy
        }
        return BatchOutcome(self._apply(batch, settled), balances, busy=busy)

    async def apply_batch_locked(self, wallet_ids: Sequence[UUID], plan: Planner) -> BatchOutcome:
        await self._round_trip()
        while self.held.intersection(wallet_ids):
            await self._released.wait()
        wallets = self._repository._wallets
        batch = plan({i: wallets[i].balance.minor for i in wallet_ids if i in wallets})
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
        starts = {wallet_id: repository._wallets[wallet_id] for wallet_id in settled}
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
                repository._record(key, decision.outcome, before=before, amount=request.amount)
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
            repository._wallets[wallet.id] = wallet
        return RunApplied(
            wallet_id=wallet.id,
            start_balance=start,
            balance=wallet.balance.minor,
            version=wallet.version,
            created_at=wallet.created_at,
            updated_at=wallet.updated_at,
            entries=entries,
            metadata=wallet.metadata,
        )


def _transfer_of(
    transfer_id: UUID, legs: Sequence[Leg], entries: tuple[Operation, Operation]
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


def _position(item: Wallet | Operation) -> Position:
    return Position(item.created_at, item.id)
