"""The service wired as in production (group commit in front of the ledger), over fakes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from dependency_injector import providers

from wallet.adapters.group_commit import GroupCommitLedger
from wallet.adapters.memory import InMemoryBalanceCache, InMemoryBatchStore, InMemoryDatabase
from wallet.container import Container
from wallet.domain.pagination import CursorCodec
from wallet.domain.ports import BalanceCache, Ledger
from wallet.domain.services import WalletService

TEST_SECRET = b"unit-test-cursor-secret-32-bytes"


def batched_ledger(database: InMemoryDatabase) -> GroupCommitLedger:
    """The production default: operations group-committed, over the in-memory batch store."""
    return GroupCommitLedger(InMemoryBatchStore(database), timeout=5.0, max_batch=256)


def in_memory_service(
    database: InMemoryDatabase,
    cache: BalanceCache | None = None,
    cursors: CursorCodec | None = None,
    ledger: Ledger | None = None,
    new_id: Callable[[], UUID] = uuid4,
) -> WalletService:
    """A WalletService whose every port is ``database`` (the ledger group-committed over
    it unless another is given)."""
    return WalletService(
        wallets=database,
        ledger=ledger if ledger is not None else batched_ledger(database),
        history=database,
        records=database,
        health=database,
        cache=cache if cache is not None else InMemoryBalanceCache(),
        cursors=cursors if cursors is not None else CursorCodec(TEST_SECRET),
        holds=database,
        hold_book=database,
        hold_expiry=database,
        events=database,
        new_id=new_id,
    )


def serve_from(container: Container, database: object, batched: bool = True) -> None:
    """Override every storage port of ``container`` with ``database``; the ledger stays
    group-committed over it (the production default) unless ``batched`` is False."""
    for port in (
        container.wallets,
        container.history,
        container.idempotency_records,
        container.health,
        container.single_ledger,
        container.holds,
        container.event_feed,
    ):
        port.override(providers.Object(database))
    if batched:
        assert isinstance(database, InMemoryDatabase)
        container.batch_store.override(providers.Object(InMemoryBatchStore(database)))
    else:
        container.ledger.override(providers.Object(database))


class Clock:
    """The time now, moved on by tests: for the store and the service alike."""

    def __init__(self) -> None:
        self.offset = timedelta()
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed if self.fixed is not None else datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)
