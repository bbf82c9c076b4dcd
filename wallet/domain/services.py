"""The use cases: what the service does, told only through the ports."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID, uuid4

from wallet.domain.currency import USD, Currency
from wallet.domain.errors import HoldNotFound, TransferNotFound, ValidationFailed
from wallet.domain.events import Event
from wallet.domain.holds import CaptureCommand, Captured, Hold, HoldCommand, HoldStatus
from wallet.domain.idempotency import Idempotency, Recorded
from wallet.domain.idempotent import Answer, IdempotentCommands
from wallet.domain.model import (
    BalanceAt,
    Operation,
    OperationCommand,
    OperationRequest,
    Page,
    Wallet,
)
from wallet.domain.pagination import CursorCodec, InvalidCursor, Position
from wallet.domain.ports import (
    BalanceCache,
    CacheState,
    EventFeed,
    Health,
    History,
    HoldBook,
    HoldExpiry,
    Holds,
    IdempotencyRecords,
    Ledger,
    Wallets,
)
from wallet.domain.references import NO_METADATA, Metadata
from wallet.domain.transfers import Transfer, TransferCommand, TransferRequest

WALLETS_SCOPE = "wallets"
CURRENCIES_KEPT = 100_000  # wallets whose currency a process remembers
HOLDS_EXPIRED_PER_RUN = 100  # wallets whose due holds one statement of the job marks
T = TypeVar("T", Wallet, Operation, Hold)


def utc_now() -> datetime:
    """The server's time now, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ExpiryRun:
    """What a run of the hold expiry job did: the holds it marked, and those still open."""

    expired: int
    still_open: int


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
        holds: Holds,
        hold_book: HoldBook,
        hold_expiry: HoldExpiry,
        events: EventFeed,
        new_id: Callable[[], UUID] = uuid4,
        default_currency: Currency = USD,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._wallets = wallets
        self._ledger = ledger
        self._history = history
        self._records = records
        self._health = health
        self._cache = cache
        self._cursors = cursors
        self._holds = holds
        self._hold_book = hold_book
        self._hold_expiry = hold_expiry
        self._events = events
        self._new_id = new_id
        self._clock = clock  # the server's time now, aware, for balances at a moment
        self.default_currency = default_currency  # of a wallet created without one
        self._commands = IdempotentCommands(records)
        self._currencies: dict[UUID, Currency] = {}

    async def create_wallet(
        self,
        idempotency: Idempotency | None = None,
        *,
        currency: Currency | None = None,
        metadata: Metadata = NO_METADATA,
    ) -> Answer[Wallet]:
        """A new wallet (of the default currency unless told); a repeat under the key gets
        the wallet the first request created."""
        currency = currency or self.default_currency

        async def create(idempotency: Idempotency | None) -> Wallet:
            wallet = await self._wallets.create(
                self._new_id(), idempotency, currency=currency, metadata=metadata
            )
            self._remember_currency(wallet.id, currency)
            await self._cache.put(wallet)
            return wallet

        return await self._commands.run(idempotency, create, _created_wallet)

    async def apply_operation(
        self, wallet_id: UUID, command: OperationCommand, idempotency: Idempotency | None = None
    ) -> Answer[Operation]:
        """Apply the operation, then refresh the cache so the writer reads its own write.

        The amount is checked against the wallet's currency once the wallet is found
        (WalletNotFound first, then ValidationFailed), before any balance rule.

        A repeat under the key of an applied operation refreshes the cache before it
        answers too: the first attempt may have failed after its commit, before
        readers were sure to see it.
        """

        currency = self._currencies.get(wallet_id) or await self._currency_of(wallet_id)
        request = command.in_currency(currency)
        if idempotency is None:  # no key to claim or record: the effect alone, inline
            applied = await self._ledger.apply(wallet_id, request)
            await self._cache.put(applied.wallet)
            return Answer(applied.operation)
        return await self._commands.run(
            idempotency,
            functools.partial(self._apply, wallet_id, request),
            functools.partial(self._replay_operation, wallet_id),
        )

    async def _apply(
        self, wallet_id: UUID, request: OperationRequest, idempotency: Idempotency | None
    ) -> Operation:
        applied = await self._ledger.apply(wallet_id, request, idempotency)
        await self._cache.put(applied.wallet)
        return applied.operation

    async def _replay_operation(self, wallet_id: UUID, recorded: Recorded) -> Operation:
        assert recorded.operation is not None
        await self._cache.put(await self._wallets.get(wallet_id))
        return recorded.operation

    async def transfer(
        self, command: TransferCommand, idempotency: Idempotency | None = None
    ) -> Answer[Transfer]:
        """Move money between two wallets, then refresh both in the cache.

        The contract's order: either wallet unknown (the payer looked up first), then
        their currencies, then the amount's digits, then the balances.
        """
        payer = await self._currency_of(command.from_wallet_id)
        payee = await self._currency_of(command.to_wallet_id)
        request = command.in_currencies(payer, payee)
        if idempotency is None:  # no key to claim or record: the effect alone
            return Answer(await self._transfer(request, None))
        return await self._commands.run(
            idempotency,
            functools.partial(self._transfer, request),
            functools.partial(self._replay_transfer, command),
        )

    async def _transfer(
        self, request: TransferRequest, idempotency: Idempotency | None
    ) -> Transfer:
        applied = await self._ledger.transfer(self._new_id(), request, idempotency)
        for wallet in applied.wallets:
            await self._cache.put(wallet)
        return applied.transfer

    async def _replay_transfer(self, command: TransferCommand, recorded: Recorded) -> Transfer:
        assert recorded.transfer is not None
        for wallet_id in (command.from_wallet_id, command.to_wallet_id):
            await self._cache.put(await self._wallets.get(wallet_id))
        return recorded.transfer

    async def get_transfer(self, transfer_id: UUID) -> Transfer:
        transfer = await self._history.find_transfer(transfer_id)
        if transfer is None:
            raise TransferNotFound(transfer_id)
        return transfer

    async def get_wallet(self, wallet_id: UUID) -> Wallet:
        """The wallet from the cache, unless one of its holds has expired since it was
        cached: then from the system of record, where that hold reserves nothing now."""
        wallet = await self._cache.read_through(wallet_id, self._wallets.get)
        if wallet.held_at(self._clock()):
            return wallet
        return await self._wallets.get(wallet_id)

    async def place_hold(
        self, command: HoldCommand, idempotency: Idempotency | None = None
    ) -> Answer[Hold]:
        """Reserve money on a wallet, then refresh it in the cache.

        The contract's order, as for transfers: either wallet unknown (the hold's first),
        their currencies, the amount's digits, then the available balance.
        """
        payer = await self._currency_of(command.wallet_id)
        payee = None
        if command.to_wallet_id is not None:
            payee = await self._currency_of(command.to_wallet_id)
        request = command.in_currencies(payer, payee)

        async def place(idempotency: Idempotency | None) -> Hold:
            changed = await self._holds.place(self._new_id(), request, idempotency)
            for wallet in changed.wallets:
                await self._cache.put(wallet)
            return changed.hold

        async def replay(recorded: Recorded) -> Hold:
            assert recorded.hold is not None
            await self._cache.put(await self._wallets.get(command.wallet_id))
            return recorded.hold.as_placed()

        return await self._commands.run(idempotency, place, replay)

    async def capture_hold(
        self, command: CaptureCommand, idempotency: Idempotency | None = None
    ) -> Answer[Captured]:
        """Take the hold's money, once; the contract's order: an unknown hold, one no longer
        held, then the amount (more than the hold, or digits wrong), then the payee's
        maximum. Checked under the key, so a repeat of a capture gets its answer again."""

        async def capture(idempotency: Idempotency | None) -> Captured:
            hold = await self.get_hold(command.hold_id)
            hold.check_active()
            amount = hold.capture_amount(command.amount)
            changed = await self._holds.capture(hold, amount, idempotency)
            for wallet in changed.wallets:
                await self._cache.put(wallet)
            assert changed.captured is not None
            return changed.captured

        async def replay(recorded: Recorded) -> Captured:
            assert recorded.captured is not None
            await self._refresh(recorded.captured.hold)
            return recorded.captured

        return await self._commands.run(idempotency, capture, replay)

    async def void_hold(
        self, hold_id: UUID, idempotency: Idempotency | None = None
    ) -> Answer[Hold]:
        """Release the whole hold; HoldNotFound, or HoldNotActive once it is not held."""

        async def void(idempotency: Idempotency | None) -> Hold:
            hold = await self.get_hold(hold_id)
            hold.check_active()
            changed = await self._holds.void(hold, idempotency)
            for wallet in changed.wallets:
                await self._cache.put(wallet)
            return changed.hold

        async def replay(recorded: Recorded) -> Hold:
            assert recorded.hold is not None
            await self._refresh(recorded.hold)
            return recorded.hold

        return await self._commands.run(idempotency, void, replay)

    async def _refresh(self, hold: Hold) -> None:
        """Put the hold's wallets in the cache as they are now (a repeat's first attempt may
        have failed after its commit, before readers were sure to see it)."""
        for wallet_id in (hold.wallet_id, hold.to_wallet_id):
            if wallet_id is not None:
                await self._cache.put(await self._wallets.get(wallet_id))

    async def get_hold(self, hold_id: UUID) -> Hold:
        hold = await self._hold_book.find_hold(hold_id)
        if hold is None:
            raise HoldNotFound(hold_id)
        return hold

    async def list_holds(
        self, wallet_id: UUID, limit: int, cursor: str | None, status: HoldStatus | None = None
    ) -> Page[Hold]:
        """A page of the wallet's holds, newest first; with ``status``, only the holds that
        have it now (a cursor of one filter is refused by another)."""
        scope = holds_scope(wallet_id, status)
        before = self._decode(scope, cursor)
        holds = await self._hold_book.list_holds(wallet_id, limit + 1, before, status)
        return self._page(scope, holds, limit)

    async def expire_holds(self) -> ExpiryRun:
        """Mark the holds past their expiry EXPIRED, a bounded number of wallets at a time
        until none is left, and refresh those wallets in the cache; then count the holds
        still open."""
        expired = 0
        while True:
            count, wallets = await self._hold_expiry.expire_due(HOLDS_EXPIRED_PER_RUN)
            for wallet in wallets:
                await self._cache.put(wallet)
            expired += count
            if len(wallets) < HOLDS_EXPIRED_PER_RUN:
                return ExpiryRun(expired, await self._hold_expiry.count_open())

    async def balance_at(self, wallet_id: UUID, at: datetime | None = None) -> BalanceAt:
        """The wallet's balance at ``at``, from its ledger; without ``at``, its balance now.

        A moment later than now is refused (ValidationFailed on ``at``) before the wallet
        is looked up: the ledger cannot tell a balance it has not reached yet.
        """
        now = self._clock()
        if at is None:
            return BalanceAt(wallet_id, (await self.get_wallet(wallet_id)).balance, now)
        if at > now:
            raise ValidationFailed.single("at", "must not be later than the server's time now")
        return BalanceAt(wallet_id, await self._history.balance_at(wallet_id, at), at)

    async def _currency_of(self, wallet_id: UUID) -> Currency:
        """The wallet's currency: fixed at creation, so once read it is kept for good (up
        to a bound). Read from the system of record, not through the cache: a write never
        stores a wallet it only looked up. Raises WalletNotFound."""
        currency = self._currencies.get(wallet_id)
        if currency is None:
            currency = (await self._wallets.get(wallet_id)).currency
            self._remember_currency(wallet_id, currency)
        return currency

    def _remember_currency(self, wallet_id: UUID, currency: Currency) -> None:
        if len(self._currencies) >= CURRENCIES_KEPT:
            self._currencies.clear()
        self._currencies[wallet_id] = currency

    async def list_wallets(self, limit: int, cursor: str | None) -> Page[Wallet]:
        after = self._decode(WALLETS_SCOPE, cursor)
        wallets = await self._wallets.list_wallets(limit + 1, after)
        return self._page(WALLETS_SCOPE, wallets, limit)

    async def list_operations(
        self, wallet_id: UUID, limit: int, cursor: str | None, reference: str | None = None
    ) -> Page[Operation]:
        """A page of the wallet's history, newest first; with ``reference``, only its
        entries of that reference (a cursor of one filter is refused by another)."""
        scope = operations_scope(wallet_id, reference)
        before = self._decode(scope, cursor)
        operations = await self._history.list_operations(wallet_id, limit + 1, before, reference)
        return self._page(scope, operations, limit)

    async def read_events(
        self, after: int | None, limit: int, wallet_id: UUID | None = None
    ) -> list[Event]:
        """Up to ``limit`` committed changes after the event ``after``, in commit order;
        with ``wallet_id``, that wallet's and those paying it. EventsExpired when the
        retention dropped events after ``after``.

        An unknown ``wallet_id`` is WalletNotFound, as for every read of one wallet: its
        currency is looked up once and kept, since wallets are never deleted, so a
        reader polling a wallet's feed costs no more than the feed's own query."""
        if wallet_id is not None:
            await self._currency_of(wallet_id)
        return await self._events.read_events(after, limit, wallet_id)

    async def forget_expired_events(self, age: timedelta) -> int:
        """Drop events older than ``age`` (WALLET_EVENTS_RETENTION_DAYS)."""
        return await self._events.forget_events_older_than(age)

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


def operations_scope(wallet_id: UUID, reference: str | None = None) -> str:
    """The list a history cursor belongs to: the wallet's, filtered by ``reference`` or not."""
    if reference is None:
        return f"operations:{wallet_id}"
    return f"operations:{wallet_id}?reference={reference}"


def holds_scope(wallet_id: UUID, status: HoldStatus | None = None) -> str:
    """The list a holds cursor belongs to: the wallet's, filtered by ``status`` or not."""
    if status is None:
        return f"holds:{wallet_id}"
    return f"holds:{wallet_id}?status={status.value}"
