"""The use cases: what the service does, told only through the ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar
from uuid import UUID, uuid4

from wallet.domain.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotencyKeyTaken,
    Replayed,
    ValidationFailed,
)
from wallet.domain.idempotency import Idempotency, Recorded
from wallet.domain.model import AppliedOperation, Operation, OperationRequest, Page, Wallet
from wallet.domain.pagination import CursorCodec, InvalidCursor, Position
from wallet.domain.ports import BalanceCache, CacheState, WalletRepository

WALLETS_SCOPE = "wallets"
T = TypeVar("T", Wallet, Operation)
V = TypeVar("V")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Answer(Generic[V]):
    """A result, and whether it is the recorded answer to an earlier request with the same key."""

    value: V
    replayed: bool = False


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
        self._running: dict[str, bytes] = {}  # keys of requests running in this process

    async def create_wallet(self, idempotency: Idempotency | None = None) -> Wallet:
        wallet = await self._repository.create(self._new_id(), idempotency)
        await self._cache.put(wallet)
        return wallet

    async def create_wallet_once(self, idempotency: Idempotency) -> Answer[Wallet]:
        """Create a wallet under a key: a repeat gets the wallet the first request created."""
        result = await self._once(idempotency, lambda: self.create_wallet(idempotency))
        if isinstance(result, Recorded):
            assert result.wallet is not None
            return Answer(result.wallet, replayed=True)
        return Answer(result)

    async def get_wallet(self, wallet_id: UUID) -> Wallet:
        return await self._cache.read_through(wallet_id, self._repository.get)

    async def list_wallets(self, limit: int, cursor: str | None) -> Page[Wallet]:
        after = self._decode(WALLETS_SCOPE, cursor)
        wallets = await self._repository.list_wallets(limit + 1, after)
        return self._page(WALLETS_SCOPE, wallets, limit)

    async def apply_operation(
        self, wallet_id: UUID, request: OperationRequest, idempotency: Idempotency | None = None
    ) -> AppliedOperation:
        """Apply the operation, then refresh the cache so the writer reads its own write."""
        applied = await self._repository.apply(wallet_id, request, idempotency)
        await self._cache.put(applied.wallet)
        return applied

    async def apply_operation_once(
        self, wallet_id: UUID, request: OperationRequest, idempotency: Idempotency
    ) -> Answer[Operation]:
        """Apply under a key: a repeat gets the first outcome again and changes nothing.

        The outcome is recorded in the same transaction as the operation. A repeat
        of a refused operation gets the same refusal (raised as Replayed). A repeat
        of an applied one refreshes the cache before it answers: the first attempt
        may have failed after its commit, before readers were sure to see it.
        """
        result = await self._once(
            idempotency, lambda: self.apply_operation(wallet_id, request, idempotency)
        )
        if not isinstance(result, Recorded):
            return Answer(result.operation)
        if result.operation is None:
            raise Replayed(result.refusal(), result.request_id)
        await self._cache.put(await self._repository.get(wallet_id))
        return Answer(result.operation, replayed=True)

    async def list_operations(
        self, wallet_id: UUID, limit: int, cursor: str | None
    ) -> Page[Operation]:
        scope = _operations_scope(wallet_id)
        before = self._decode(scope, cursor)
        operations = await self._repository.list_operations(wallet_id, limit + 1, before)
        return self._page(scope, operations, limit)

    async def forget_expired_keys(self, age: timedelta) -> int:
        """Drop idempotency records older than ``age`` (the contract keeps them 24 h)."""
        return await self._repository.forget_keys_older_than(age)

    async def readiness(self) -> Readiness:
        return Readiness(database_ok=await self._repository.ping(), cache=await self._cache.state())

    async def _once(
        self, idempotency: Idempotency, run: Callable[[], Awaitable[R]]
    ) -> R | Recorded:
        """Run the request, unless its key is recorded: then the recorded answer, if it is
        this request's (a recording that lands while this one runs counts too)."""
        async with self._claim(idempotency):
            recorded = await self._repository.find_recorded(idempotency.key)
            if recorded is None:
                try:
                    return await run()
                except IdempotencyKeyTaken:
                    recorded = await self._repository.find_recorded(idempotency.key)
        return _replay(recorded, idempotency)

    @asynccontextmanager
    async def _claim(self, idempotency: Idempotency) -> AsyncIterator[None]:
        """Hold the key while its request runs here; a second one meanwhile is refused."""
        running = self._running.get(idempotency.key)
        if running is not None:
            if running != idempotency.fingerprint:
                raise IdempotencyKeyReused(_REUSED)
            raise IdempotencyKeyInUse("A request with this Idempotency-Key is still running")
        self._running[idempotency.key] = idempotency.fingerprint
        try:
            yield
        finally:
            del self._running[idempotency.key]

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


_REUSED = "This Idempotency-Key was used before for a different request"


def _replay(recorded: Recorded | None, idempotency: Idempotency) -> Recorded:
    """The recorded answer, if it answers this very request."""
    if recorded is None:  # recorded by another process, then expired: vanishingly rare
        raise IdempotencyKeyInUse("A request with this Idempotency-Key is still settling")
    if recorded.fingerprint != idempotency.fingerprint:
        raise IdempotencyKeyReused(_REUSED)
    return recorded


def _operations_scope(wallet_id: UUID) -> str:
    return f"operations:{wallet_id}"
