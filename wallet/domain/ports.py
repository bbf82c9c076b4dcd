"""The ports: what the use cases need from the world, as narrow protocols."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Literal, Protocol
from uuid import UUID

from wallet.domain.currency import USD, Currency
from wallet.domain.events import Event
from wallet.domain.holds import Hold, HoldChanged, HoldRequest, HoldStatus
from wallet.domain.idempotency import Idempotency, Recorded
from wallet.domain.model import AppliedOperation, Operation, OperationRequest, Wallet
from wallet.domain.money import Money
from wallet.domain.pagination import Position
from wallet.domain.references import NO_METADATA, Metadata
from wallet.domain.relay import Backlog, RelayOutcome
from wallet.domain.transfers import AppliedTransfer, Transfer, TransferRequest

CacheState = Literal["ok", "down", "disabled"]
WalletLoader = Callable[[UUID], Awaitable[Wallet]]


class Wallets(Protocol):
    """The wallets themselves: created, looked up and listed.

    Every method raises StorageUnavailable when the store cannot answer in time.
    """

    async def create(
        self,
        wallet_id: UUID,
        idempotency: Idempotency | None = None,
        *,
        currency: Currency = USD,
        metadata: Metadata = NO_METADATA,
    ) -> Wallet:
        """Store a new wallet of ``currency`` with a zero balance and ``metadata``.

        Under a key, the creation is recorded in the same transaction; if the key
        turns out to be recorded already, raises IdempotencyKeyTaken and creates nothing.
        """

    async def get(self, wallet_id: UUID) -> Wallet:
        """The wallet as last committed. Raises WalletNotFound."""

    async def list_wallets(self, limit: int, after: Position | None) -> list[Wallet]:
        """Up to ``limit`` wallets strictly after ``after``, oldest first by (created_at, id)."""


class Ledger(Protocol):
    """Where money moves: the one write port every operation goes through."""

    async def apply(
        self, wallet_id: UUID, request: OperationRequest, idempotency: Idempotency | None = None
    ) -> AppliedOperation:
        """Apply one operation atomically and append it to the ledger.

        Atomic: the balance change and its ledger row are both committed, or
        neither. Raises WalletNotFound, InsufficientFunds or BalanceLimitExceeded
        and then changes nothing. A wallet's ledger entries get strictly increasing
        ``created_at`` in the order they were applied. Raises StorageUnavailable when
        the store cannot answer in time (the outcome is then unknown).

        Under a key, the outcome (the operation, or the refusal) is recorded in the
        same transaction; if the key turns out to be recorded already, raises
        IdempotencyKeyTaken and changes nothing.
        """

    async def transfer(
        self, transfer_id: UUID, request: TransferRequest, idempotency: Idempotency | None = None
    ) -> AppliedTransfer:
        """Move the money as ``transfer_id``: the payer's TRANSFER_OUT and the payee's
        TRANSFER_IN commit together, or neither does.

        Raises as ``apply`` does (WalletNotFound naming the wallet, InsufficientFunds for
        the payer, BalanceLimitExceeded for the payee), and then changes nothing. Never
        waits for another transfer in a cycle: concurrent transfers in any directions
        all complete.
        """


class History(Protocol):
    """A wallet's ledger as committed, for reading."""

    async def list_operations(
        self, wallet_id: UUID, limit: int, before: Position | None, reference: str | None = None
    ) -> list[Operation]:
        """Up to ``limit`` ledger entries strictly before ``before``, newest first; with a
        ``reference``, only the entries whose reference is exactly it.

        Raises WalletNotFound, or StorageUnavailable when the store cannot answer in time.
        """

    async def find_transfer(self, transfer_id: UUID) -> Transfer | None:
        """The transfer with its two entries, if there is one by that id."""

    async def balance_at(self, wallet_id: UUID, at: datetime) -> Money:
        """The ``balanceAfter`` of the wallet's last entry made at or before ``at`` (an
        entry made at ``at`` counts), zero before its first; one indexed lookup.

        Raises WalletNotFound, or StorageUnavailable when the store cannot answer in time.
        """


class Holds(Protocol):
    """Where holds change: placed, captured or voided, each under its wallets' row locks
    and in one transaction with its outcome recorded under the key (as ``Ledger``'s
    methods are). Every method raises StorageUnavailable when the store cannot answer in
    time, and IdempotencyKeyTaken (changing nothing) when the key is recorded already."""

    async def place(
        self, hold_id: UUID, request: HoldRequest, idempotency: Idempotency | None = None
    ) -> HoldChanged:
        """Reserve the amount on the wallet as ``hold_id``, expiring ``expires_in`` seconds
        from now by the store's clock. Raises WalletNotFound, or InsufficientFunds when the
        wallet's available balance is less than the amount (recorded under the key)."""

    async def capture(
        self, hold: Hold, amount: Money, idempotency: Idempotency | None = None
    ) -> HoldChanged:
        """Take ``amount`` (at most the hold's) as the hold's withdrawal or transfer, its
        entries naming the hold, and release the whole hold. ``hold`` is as read before:
        whether it is still held is decided under its lock. Raises HoldNotActive when it is
        no longer held (expired by the store's clock included), or BalanceLimitExceeded
        for the payee (recorded; the hold stays held)."""

    async def void(self, hold: Hold, idempotency: Idempotency | None = None) -> HoldChanged:
        """Release the whole hold (as read before). Raises HoldNotActive once it is not
        held."""


class HoldBook(Protocol):
    """Holds as they are now, for reading: a hold past its expiry reads EXPIRED."""

    async def find_hold(self, hold_id: UUID) -> Hold | None:
        """The hold, if there is one by that id."""

    async def list_holds(
        self, wallet_id: UUID, limit: int, before: Position | None, status: HoldStatus | None
    ) -> list[Hold]:
        """Up to ``limit`` of the wallet's holds strictly before ``before``, newest first by
        (created_at, id); with a ``status``, only those that have it now. Raises
        WalletNotFound, or StorageUnavailable."""


class HoldExpiry(Protocol):
    async def expire_due(self, wallets: int) -> tuple[int, list[Wallet]]:
        """Mark EXPIRED the holds past their expiry on up to ``wallets`` wallets, releasing
        what they reserved; how many holds, and those wallets as they are now."""

    async def count_open(self) -> int:
        """How many holds reserve money now (held, and not expired)."""


class EventFeed(Protocol):
    """Every committed change as an event, in commit order. Each event is written in the
    transaction of its change, so it exists exactly when the change committed."""

    async def read_events(
        self, after: int | None, limit: int, wallet_id: UUID | None
    ) -> list[Event]:
        """Up to ``limit`` events with ids greater than ``after`` (from the oldest kept when
        None), ascending; with ``wallet_id``, its own events and the transfers and captures
        that pay it. Only events no later commit can precede: a reader paging by the last
        id it was given never later finds a smaller one.

        Raises EventsExpired when events after ``after`` were dropped by the retention,
        StorageUnavailable when the store cannot answer in time.
        """

    async def forget_events_older_than(self, age: timedelta) -> int:
        """Drop the events older than ``age``, a few at a time; how many went."""


class IdempotencyRecords(Protocol):
    """The answers recorded under idempotency keys (written by the write ports, beside
    their effect)."""

    async def find_recorded(self, key: str) -> Recorded | None:
        """What the first request under ``key`` answered, if it ran."""

    async def forget_keys_older_than(self, age: timedelta) -> int:
        """Delete expired idempotency records, a few at a time; how many went."""


class Health(Protocol):
    async def ping(self) -> bool:
        """True when the system of record answers now; never raises."""


class BalanceCache(Protocol):
    """A fast, disposable copy of recent wallets, shared by every process; only ever
    an optimisation.

    A failing cache behaves as an empty one, and a wallet written while the cache
    failed is never served stale from it afterwards, by any process.
    """

    async def read_through(self, wallet_id: UUID, load: WalletLoader) -> Wallet:
        """The cached wallet, else ``load(wallet_id)``, remembered for the next reader.

        What ``load`` raises propagates. A loaded wallet is not remembered when the
        cache was invalidated while it loaded, so a slow reader cannot put back a
        balance older than a write that happened meanwhile.
        """

    async def put(self, wallet: Wallet) -> None:
        """Remember ``wallet`` after a write, unless a newer version is cached.

        When put returns, no reader anywhere serves an older version, except for at
        most the delivery delay of a fence while the writer cannot reach the cache.
        Raises StorageUnavailable when that cannot be made sure of (the write is
        committed, but must not be acknowledged as if readers would see it).
        """

    async def state(self) -> CacheState:
        """How the cache is doing, for readiness reports."""


class EventStream(Protocol):
    """Where the relay delivers events: a stream that keeps them in the order given.

    Every method raises StreamUnavailable when the stream cannot be reached in time.
    """

    async def resume(self) -> int | None:
        """The id of the newest event the stream holds (None when it holds none it can
        name), making sure the stream exists; the next ``publish`` follows that event."""

    async def publish(self, events: list[Event]) -> int:
        """Publish ``events`` (ascending ids) after what the stream held at ``resume``
        or the last full publish; how many of them, from the first, it acknowledged.

        The stream stores an event only right after the one before it, so a later event
        is never stored ahead of an earlier one that failed; after fewer than all,
        ``resume`` before publishing again.
        """


class RelayLease(Protocol):
    """The right to relay, held by one relay at a time across processes and hosts, and
    the position it guards. Every method raises LeaseLost when the lease's store does not
    answer in time: the relay can no longer show that it holds it."""

    @property
    def held(self) -> bool:
        """False once the lease is known to be lost (without asking the store)."""

    async def position(self) -> int:
        """The id of the last event the stream acknowledged, as recorded (0: none yet)."""

    async def advance(self, through: int) -> None:
        """Record ``through`` as acknowledged; a position never moves back."""

    async def backlog(self, after: int) -> Backlog:
        """How far the newest committed event is past ``after``, by id and by age."""


class RelayLeases(Protocol):
    def hold(self) -> AbstractAsyncContextManager[RelayLease]:
        """Wait until this relay holds the lease; it is let go when the block ends, or
        when its holder dies (so another relay takes over)."""


class RelayMeter(Protocol):
    """What the relay reports of itself, for monitoring."""

    def count(self, outcome: RelayOutcome, times: int = 1) -> None:
        """Events published, attempts failed, or retention skips."""

    def behind(self, backlog: Backlog) -> None:
        """The backlog as last measured by the relay holding the lease."""

    def leading(self, held: bool) -> None:
        """Whether this process holds the lease now."""
