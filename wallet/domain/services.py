"""The use cases: what the service does, told only through the ports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID, uuid4

from wallet.domain.errors import InvalidCursor, ValidationFailed
from wallet.domain.model import AppliedOperation, Operation, OperationRequest, Page, Wallet
from wallet.domain.pagination import CursorCodec, Position
from wallet.domain.ports import BalanceCache, CacheState, WalletRepository

WALLETS_SCOPE = "wallets"
T = TypeVar("T", Wallet, Operation)


@dataclass(frozen=True, slots=True)
class Readiness:
    database_ok: bool
    cache: CacheState


class WalletService:
    """Creates wallets, moves money and reads the ledger; the cache only speeds reads."""

    def __init__(
        self,
        repository: WalletRepository,
        cache: BalanceCache,
        cursors: CursorCodec,
        new_id: Callable[[], UUID] = uuid4,
    ) -> None:
        self._repository = repository
        self._cache = cache
        self._cursors = cursors
        self._new_id = new_id

    async def create_wallet(self) -> Wallet:
        wallet = await self._repository.create(self._new_id())
        await self._cache.put(wallet)
        return wallet

    async def get_wallet(self, wallet_id: UUID) -> Wallet:
        return await self._cache.read_through(wallet_id, self._repository.get)

    async def list_wallets(self, limit: int, cursor: str | None) -> Page[Wallet]:
        after = self._decode(WALLETS_SCOPE, cursor)
        wallets = await self._repository.list_wallets(limit + 1, after)
        return self._page(WALLETS_SCOPE, wallets, limit)

    async def apply_operation(self, wallet_id: UUID, request: OperationRequest) -> AppliedOperation:
        """Apply the operation, then refresh the cache so the writer reads its own write."""
        applied = await self._repository.apply(wallet_id, request)
        await self._cache.put(applied.wallet)
        return applied

    async def list_operations(
        self, wallet_id: UUID, limit: int, cursor: str | None
    ) -> Page[Operation]:
        scope = _operations_scope(wallet_id)
        before = self._decode(scope, cursor)
        operations = await self._repository.list_operations(wallet_id, limit + 1, before)
        return self._page(scope, operations, limit)

    async def readiness(self) -> Readiness:
        return Readiness(database_ok=await self._repository.ping(), cache=await self._cache.state())

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


def _operations_scope(wallet_id: UUID) -> str:
    return f"operations:{wallet_id}"
