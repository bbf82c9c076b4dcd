"""In-memory implementations of every port: the fakes that unit tests run against."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from wallet.adapters.group_commit import BatchOutcome, Run, RunApplied
from wallet.domain.errors import StorageUnavailable, WalletNotFound
from wallet.domain.model import AppliedOperation, Operation, OperationRequest, Wallet, next_balance
from wallet.domain.money import Money
from wallet.domain.pagination import Position
from wallet.domain.ports import CacheState, WalletLoader

_TICK = timedelta(microseconds=1)


class InMemoryWalletRepository:
    """WalletRepository in dictionaries; ``available = False`` plays a database outage."""

    def __init__(self) -> None:
        self._wallets: dict[UUID, Wallet] = {}
        self._ledger: dict[UUID, list[Operation]] = {}
        self._last_time = datetime(2000, 1, 1, tzinfo=UTC)
        self.available = True

    async def create(self, wallet_id: UUID) -> Wallet:
        self._check_available()
        now = self._now()
        wallet = Wallet(wallet_id, Money.zero(), 0, now, now)
        self._wallets[wallet_id] = wallet
        self._ledger[wallet_id] = []
        return wallet

    async def get(self, wallet_id: UUID) -> Wallet:
        self._check_available()
        return self._find(wallet_id)

    async def list_wallets(self, limit: int, after: Position | None) -> list[Wallet]:
        self._check_available()
        ordered = sorted(self._wallets.values(), key=_position)
        return [w for w in ordered if after is None or _position(w) > after][:limit]

    async def apply(self, wallet_id: UUID, request: OperationRequest) -> AppliedOperation:
        self._check_available()
        wallet = self._find(wallet_id)
        balance = next_balance(wallet.balance, request)
        now = self._now()
        wallet = Wallet(wallet_id, balance, wallet.version + 1, wallet.created_at, now)
        operation = Operation(uuid4(), wallet_id, request.type, request.amount, balance, now)
        self._wallets[wallet_id] = wallet
        self._ledger[wallet_id].append(operation)
        return AppliedOperation(wallet, operation)

    async def list_operations(
        self, wallet_id: UUID, limit: int, before: Position | None
    ) -> list[Operation]:
        self._check_available()
        self._find(wallet_id)
        newest_first = sorted(self._ledger[wallet_id], key=_position, reverse=True)
        return [op for op in newest_first if before is None or _position(op) < before][:limit]

    async def ping(self) -> bool:
        return self.available

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
    """BatchStore over an in-memory repository; ``available = False`` plays an outage."""

    def __init__(self, repository: InMemoryWalletRepository) -> None:
        self._repository = repository
        self.available = True
        self.batches: list[list[Run]] = []

    async def apply_runs(self, runs: Sequence[Run]) -> BatchOutcome:
        await asyncio.sleep(0)  # a round trip, during which more operations queue
        if not self.available:
            raise StorageUnavailable("the in-memory store is switched off")
        self.batches.append(list(runs))
        applied, balances = [], {}
        for run in runs:
            wallet = self._repository._wallets.get(run.wallet_id)
            if wallet is None:
                continue
            if not run.plan.holds_for(wallet.balance.minor):
                balances[run.wallet_id] = wallet.balance.minor
                continue
            applied.append(self._apply(wallet, run))
        return BatchOutcome(applied, balances)

    def _apply(self, wallet: Wallet, run: Run) -> RunApplied:
        """Append the run's accepted entries a microsecond apart, as the SQL store does."""
        repository = self._repository
        start = wallet.balance.minor
        first = repository._now()
        position = 0
        for decision, operation_id in zip(run.plan.decisions, run.operation_ids, strict=True):
            if decision.accepted:
                at = first + position * _TICK
                balance = Money(start + decision.offset_after)
                request = decision.request
                entry = Operation(
                    operation_id, wallet.id, request.type, request.amount, balance, at
                )
                repository._ledger[wallet.id].append(entry)
                position += 1
        last = first + max(position - 1, 0) * _TICK
        repository._last_time = max(repository._last_time, last)
        version = wallet.version + run.plan.accepted
        updated = last if position else wallet.updated_at
        balance = Money(start + run.plan.net)
        repository._wallets[wallet.id] = Wallet(
            wallet.id, balance, version, wallet.created_at, updated
        )
        return RunApplied(wallet.id, start, version, wallet.created_at, updated)


class InMemoryBalanceCache:
    """BalanceCache in a dictionary; ``available = False`` plays an outage."""

    def __init__(self) -> None:
        self.entries: dict[UUID, Wallet] = {}
        self.available = True
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
