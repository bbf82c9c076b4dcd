"""The use cases: what the service does, told only through the ports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar
from uuid import UUID, uuid4

from wallet.domain.errors import ValidationFailed
from wallet.domain.idempotency import Idempotency, Recorded
from wallet.domain.idempotent import Answer, IdempotentCommands
from wallet.domain.model import Operation, OperationRequest, Page, Wallet
from wallet.domain.pagination import CursorCodec, InvalidCursor, Position
from wallet.domain.ports import (
    BalanceCache,
    CacheState,
    Health,
    History,
    IdempotencyRecords,
    Ledger,
    Wallets,
)

WALLETS_SCOPE = "wallets"
T = TypeVar("T", Wallet, Operation)


@dataclass(frozen=True, slots=True)
class Readiness:
    database_ok: bool
    cache: CacheState


class WalletService:
    """Creates wallets, moves money and reads the ledger; the cache only speeds reads.

    Every command goes through ``IdempotentCommands``: under an Idempotency-Key its
    effect happens once, and a repeat is answered from the record.
    """

    def __init__(
        self,
        wallets: Wallets,
        ledger: Ledger,
        history: History,
        records: IdempotencyRecords,
        health: Health,
        cache: BalanceCache,
        cursors: CursorCodec,
        new_id: Callable[[], UUID] = uuid4,
    ) -> None:
        self._wallets = wallets
        self._ledger = ledger
        self._history = history
        self._records = records
        self._health = health
        self._cache = cache
        self._cursors = cursors
        self._new_id = new_id
        self._commands = IdempotentCommands(records)

    async def create_wallet(self, idempotency: Idempotency | None = None) -> Answer[Wallet]:
        """A new wallet; a repeat under the key gets the wallet the first request created."""

        async def create(idempotency: Idempotency | None) -> Wallet:
            wallet = await self._wallets.create(self._new_id(), idempotency)
            await self._cache.put(wallet)
            return wallet

        return await self._commands.run(idempotency, create, _created_wallet)

    async def apply_operation(
        self, wallet_id: UUID, request: OperationRequest, idempotency: Idempotency | None = None
    ) -> Answer[Operation]:
        """Apply the operation, then refresh the cache so the writer reads its own write.

        A repeat under the key of an applied operation refreshes the cache before it
        answers too: the first attempt may have failed after its commit, before
        readers were sure to see it.
        """

        async def apply(idempotency: Idempotency | None) -> Operation:
            applied = await self._ledger.apply(wallet_id, request, idempotency)
            await self._cache.put(applied.wallet)
            return applied.operation

        async def replay(recorded: Recorded) -> Operation:
            assert recorded.operation is not None
            await self._cache.put(await self._wallets.get(wallet_id))
            return recorded.operation

        return await self._commands.run(idempotency, apply, replay)

    async def get_wallet(self, wallet_id: UUID) -> Wallet:
        return await self._cache.read_through(wallet_id, self._wallets.get)

    async def list_wallets(self, limit: int, cursor: str | None) -> Page[Wallet]:
        after = self._decode(WALLETS_SCOPE, cursor)
        wallets = await self._wallets.list_wallets(limit + 1, after)
        return self._page(WALLETS_SCOPE, wallets, limit)

    async def list_operations(
        self, wallet_id: UUID, limit: int, cursor: str | None
    ) -> Page[Operation]:
        scope = _operations_scope(wallet_id)
        before = self._decode(scope, cursor)
        operations = await self._history.list_operations(wallet_id, limit + 1, before)
        return self._page(scope, operations, limit)

    async def forget_expired_keys(self, age: timedelta) -> int:
        """Drop idempotency records older than ``age`` (the contract keeps them 24 h)."""
        return await self._records.forget_keys_older_than(age)

    async def readiness(self) -> Readiness:
        return Readiness(database_ok=await self._health.ping(), cache=await self._cache.state())

    def _decode(self, scope: str, cursor: str | None) -> Position | None:
        if cursor is None:
            return None
        try:
            return self._cursors.decode(scope, cursor)
        except InvalidCursor as error:
            raise ValidationFailed.single("cursor", str(error)) from None

    def _page(self, scope: str, rows: Sequence[T], limit: int) -> Page[T]:
        """Cut the one-extra-row lookahead off and point the cursor at the last item kept."""
        items = list(rows[:limit])
        if len(rows) <= limit:
            return Page(items, None)
        last = items[-1]
        return Page(items, self._cursors.encode(scope, Position(last.created_at, last.id)))


async def _created_wallet(recorded: Recorded) -> Wallet:
    assert recorded.wallet is not None
    return recorded.wallet


def _operations_scope(wallet_id: UUID) -> str:
    return f"operations:{wallet_id}"
