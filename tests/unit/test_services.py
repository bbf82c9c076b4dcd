"""The use cases on the in-memory adapters: results are checked on the resulting state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID, uuid4

import pytest

from tests.unit.fakes import TEST_SECRET, batched_ledger, in_memory_service
from wallet.adapters.memory import InMemoryBalanceCache, InMemoryDatabase
from wallet.domain import services
from wallet.domain.currency import CURRENCIES
from wallet.domain.errors import (
    BalanceLimitExceeded,
    CurrencyMismatch,
    HoldNotActive,
    HoldNotFound,
    InsufficientFunds,
    StorageUnavailable,
    ValidationFailed,
    WalletNotFound,
)
from wallet.domain.holds import CaptureCommand, HoldCommand, HoldStatus
from wallet.domain.idempotency import Idempotency, Recorded
from wallet.domain.model import Operation, OperationCommand, OperationType, Page, Wallet
from wallet.domain.money import MAX_AMOUNT_MINOR, MAX_BALANCE_MINOR, Money, parse_amount
from wallet.domain.pagination import CursorCodec
from wallet.domain.services import WalletService

DEPOSIT = OperationType.DEPOSIT
WITHDRAW = OperationType.WITHDRAW
T = TypeVar("T", Wallet, Operation)


def op(kind: OperationType, amount: str) -> OperationCommand:
    return OperationCommand(kind, parse_amount(amount))


async def new_wallet_with(service: WalletService, balance: str) -> Wallet:
    wallet = (await service.create_wallet()).value
    if balance != "0.00":
        await service.apply_operation(wallet.id, op(DEPOSIT, balance))
    return await service.get_wallet(wallet.id)


async def all_pages(
    fetch: Callable[[str | None], Awaitable[Page[T]]],
) -> tuple[list[list[T]], list[str | None]]:
    """Follow nextCursor from the first page to the last: (pages, cursors returned)."""
    pages: list[list[T]] = []
    cursors: list[str | None] = []
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        pages.append(page.items)
        cursors.append(page.next_cursor)
        if page.next_cursor is None:
            return pages, cursors
        assert len(pages) < 1000, "paging does not end"
        cursor = page.next_cursor


async def state_of(repository: InMemoryDatabase, wallet_id: UUID) -> tuple[object, ...]:
    """Everything a refused operation must leave as it was: the stored wallet and its ledger."""
    return (await repository.get(wallet_id), tuple(repository.ledger(wallet_id)))


# --- create and get -------------------------------------------------------------------


async def test_a_new_wallet_starts_at_zero(
    service: WalletService, repository: InMemoryDatabase
) -> None:
    wallet = (await service.create_wallet()).value
    assert wallet.balance == Money.zero()
    assert wallet.version == 0
    assert wallet.created_at == wallet.updated_at
    assert wallet.created_at.utcoffset() is not None
    assert await repository.get(wallet.id) == wallet
    assert repository.ledger(wallet.id) == []


async def test_get_returns_the_created_wallet(service: WalletService) -> None:
    created = (await service.create_wallet()).value
    assert await service.get_wallet(created.id) == created


async def test_each_wallet_gets_its_own_id(service: WalletService) -> None:
    ids = {(await service.create_wallet()).value.id for _ in range(20)}
    assert len(ids) == 20


async def test_the_id_comes_from_the_injected_generator(
    repository: InMemoryDatabase, cache: InMemoryBalanceCache
) -> None:
    fixed = UUID("00000000-0000-4000-8000-000000000001")
    service = in_memory_service(repository, cache, CursorCodec(TEST_SECRET), new_id=lambda: fixed)
    assert (await service.create_wallet()).value.id == fixed
    assert (await repository.get(fixed)).id == fixed


# --- apply ----------------------------------------------------------------------------


async def test_a_deposit_raises_the_balance_and_is_recorded(
    service: WalletService, repository: InMemoryDatabase
) -> None:
    wallet = (await service.create_wallet()).value
    applied = await service.apply_operation(wallet.id, op(DEPOSIT, "150"))
    assert applied.value.balance_after == Money(15000)
    assert (await repository.get(wallet.id)).version == 1
    assert applied.value.wallet_id == wallet.id
    assert applied.value.type is DEPOSIT
    assert applied.value.amount == Money(15000)
    assert applied.value.balance_after == Money(15000)
    assert repository.ledger(wallet.id) == [applied.value]
    assert (await repository.get(wallet.id)).balance == Money(15000)


async def test_a_withdrawal_lowers_the_balance(service: WalletService) -> None:
    wallet = await new_wallet_with(service, "100.00")
    applied = await service.apply_operation(wallet.id, op(WITHDRAW, "30.25"))
    assert applied.value.balance_after == Money(6975)
    assert applied.value.balance_after == Money(6975)
    assert (await service.get_wallet(wallet.id)).balance == Money(6975)


async def test_withdrawing_the_whole_balance_leaves_zero(service: WalletService) -> None:
    wallet = await new_wallet_with(service, "12.34")
    applied = await service.apply_operation(wallet.id, op(WITHDRAW, "12.34"))
    assert applied.value.balance_after == Money.zero()


@pytest.mark.parametrize(("balance", "amount"), [("0.00", "0.01"), ("10.00", "10.01")])
async def test_insufficient_funds_changes_nothing(
    service: WalletService, repository: InMemoryDatabase, balance: str, amount: str
) -> None:
    wallet = await new_wallet_with(service, balance)
    before = await state_of(repository, wallet.id)
    with pytest.raises(InsufficientFunds, match=f"Balance {balance} is less than {amount}"):
        await service.apply_operation(wallet.id, op(WITHDRAW, amount))
    assert await state_of(repository, wallet.id) == before
    assert str((await service.get_wallet(wallet.id)).balance) == balance


async def test_the_balance_can_reach_its_maximum_but_not_pass_it(
    service: WalletService, repository: InMemoryDatabase
) -> None:
    wallet = (await service.create_wallet()).value
    largest = op(DEPOSIT, str(Money(MAX_AMOUNT_MINOR)))
    for _ in range(MAX_BALANCE_MINOR // MAX_AMOUNT_MINOR):
        applied = await service.apply_operation(wallet.id, largest)
    assert applied.value.balance_after == Money(MAX_BALANCE_MINOR)
    assert str(applied.value.balance_after) == "9000000000000000.00"

    before = await state_of(repository, wallet.id)
    with pytest.raises(BalanceLimitExceeded):
        await service.apply_operation(wallet.id, op(DEPOSIT, "0.01"))
    assert await state_of(repository, wallet.id) == before
    assert (await service.get_wallet(wallet.id)).balance == Money(MAX_BALANCE_MINOR)


async def test_the_ledger_adds_up_to_the_balance(
    service: WalletService, repository: InMemoryDatabase
) -> None:
    wallet = (await service.create_wallet()).value
    script = [(DEPOSIT, "100"), (WITHDRAW, "0.01"), (DEPOSIT, "0.1"), (WITHDRAW, "50.09")]
    script += [(DEPOSIT, "1.23"), (WITHDRAW, "51.23")]
    for kind, amount in script:
        await service.apply_operation(wallet.id, op(kind, amount))

    ledger = repository.ledger(wallet.id)
    assert [(o.type, str(o.amount)) for o in ledger] == [
        (kind, str(Money.parse_amount(amount))) for kind, amount in script
    ]
    running = 0
    for entry in ledger:
        running += entry.amount.minor if entry.type is DEPOSIT else -entry.amount.minor
        assert entry.balance_after.minor == running
    final = await service.get_wallet(wallet.id)
    assert final.balance.minor == running == 0
    assert final.version == len(script)
    assert [e.created_at for e in ledger] == sorted({e.created_at for e in ledger})


async def test_a_refused_operation_leaves_no_gap_in_the_ledger(
    service: WalletService, repository: InMemoryDatabase
) -> None:
    wallet = await new_wallet_with(service, "5.00")
    with pytest.raises(InsufficientFunds):
        await service.apply_operation(wallet.id, op(WITHDRAW, "6"))
    await service.apply_operation(wallet.id, op(WITHDRAW, "5"))
    assert [str(o.balance_after) for o in repository.ledger(wallet.id)] == ["5.00", "0.00"]


async def test_operations_on_one_wallet_do_not_touch_another(service: WalletService) -> None:
    first = await new_wallet_with(service, "10.00")
    second = await new_wallet_with(service, "20.00")
    await service.apply_operation(first.id, op(WITHDRAW, "10"))
    assert (await service.get_wallet(second.id)).balance == Money(2000)
    assert [o.wallet_id for o in (await service.list_operations(second.id, 10, None)).items] == [
        second.id
    ]


# --- list_wallets ---------------------------------------------------------------------


async def test_paging_through_25_wallets_by_7_yields_each_once_in_order(
    service: WalletService,
) -> None:
    created = [(await service.create_wallet()).value for _ in range(25)]
    pages, cursors = await all_pages(lambda cursor: service.list_wallets(7, cursor))

    assert [len(page) for page in pages] == [7, 7, 7, 4]
    assert cursors[-1] is None
    assert all(cursors[:-1])
    seen = [wallet for page in pages for wallet in page]
    assert [w.id for w in seen] == [w.id for w in created]
    assert seen == sorted(seen, key=lambda w: (w.created_at, w.id))


async def test_a_last_page_that_is_exactly_full_has_no_next_cursor(
    service: WalletService,
) -> None:
    for _ in range(21):
        await service.create_wallet()
    pages, cursors = await all_pages(lambda cursor: service.list_wallets(7, cursor))
    assert [len(page) for page in pages] == [7, 7, 7]
    assert cursors[-1] is None


async def test_an_empty_list_is_one_empty_page(service: WalletService) -> None:
    page = await service.list_wallets(100, None)
    assert page.items == []
    assert page.next_cursor is None


async def test_wallets_created_while_paging_are_neither_skipped_nor_repeated(
    service: WalletService,
) -> None:
    for _ in range(10):
        await service.create_wallet()
    seen: list[UUID] = []
    cursor: str | None = None
    created_meanwhile = 0
    while True:
        page = await service.list_wallets(3, cursor)
        seen += [w.id for w in page.items]
        if page.next_cursor is None:
            break
        if created_meanwhile < 4:
            await service.create_wallet()
            created_meanwhile += 1
        cursor = page.next_cursor
    everything = [w.id for w in (await service.list_wallets(1000, None)).items]
    assert len(everything) == 14
    assert seen == everything


class FrozenClockRepository(InMemoryDatabase):
    """Every wallet is created in the same instant, so only the id orders them."""

    def _now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)


async def test_wallets_created_in_the_same_instant_page_without_skips_or_repeats() -> None:
    repository = FrozenClockRepository()
    service = in_memory_service(repository, InMemoryBalanceCache(), CursorCodec(TEST_SECRET))
    ids = [(await service.create_wallet()).value.id for _ in range(20)]
    pages, _ = await all_pages(lambda cursor: service.list_wallets(3, cursor))
    assert [w.id for page in pages for w in page] == sorted(ids)


@pytest.mark.parametrize("cursor", ["", "garbage", "A" * 54])
async def test_a_cursor_the_service_did_not_make_is_a_validation_error(
    service: WalletService, cursor: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await service.list_wallets(10, cursor)
    assert [e.field for e in caught.value.errors] == ["cursor"]


async def test_a_cursor_made_with_another_secret_is_refused(
    repository: InMemoryDatabase, cache: InMemoryBalanceCache, service: WalletService
) -> None:
    for _ in range(3):
        await service.create_wallet()
    other = in_memory_service(repository, cache, CursorCodec(b"a-different-secret-of-32-bytes!!"))
    cursor = (await other.list_wallets(1, None)).next_cursor
    assert cursor is not None
    assert len((await other.list_wallets(1, cursor)).items) == 1
    with pytest.raises(ValidationFailed):
        await service.list_wallets(1, cursor)


# --- list_operations ------------------------------------------------------------------


async def test_operations_are_listed_newest_first_across_pages(
    service: WalletService, repository: InMemoryDatabase
) -> None:
    wallet = (await service.create_wallet()).value
    for cents in range(1, 11):
        await service.apply_operation(wallet.id, op(DEPOSIT, str(Money(cents))))

    pages, cursors = await all_pages(lambda cursor: service.list_operations(wallet.id, 3, cursor))
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    assert cursors[-1] is None
    listed = [o for page in pages for o in page]
    assert listed == list(reversed(repository.ledger(wallet.id)))
    assert [o.amount.minor for o in listed] == list(range(10, 0, -1))


async def test_a_wallet_without_operations_has_an_empty_history(service: WalletService) -> None:
    wallet = (await service.create_wallet()).value
    page = await service.list_operations(wallet.id, 10, None)
    assert page.items == []
    assert page.next_cursor is None


async def test_an_operations_cursor_belongs_to_its_wallet(service: WalletService) -> None:
    first = await new_wallet_with(service, "1.00")
    second = await new_wallet_with(service, "1.00")
    for wallet in (first, second):
        await service.apply_operation(wallet.id, op(DEPOSIT, "1"))
    cursor = (await service.list_operations(first.id, 1, None)).next_cursor
    assert cursor is not None
    assert len((await service.list_operations(first.id, 1, cursor)).items) == 1

    with pytest.raises(ValidationFailed):
        await service.list_operations(second.id, 1, cursor)
    with pytest.raises(ValidationFailed):
        await service.list_wallets(1, cursor)


async def test_a_wallet_list_cursor_is_refused_for_operations(service: WalletService) -> None:
    wallet = await new_wallet_with(service, "1.00")
    await service.create_wallet()
    cursor = (await service.list_wallets(1, None)).next_cursor
    assert cursor is not None
    with pytest.raises(ValidationFailed):
        await service.list_operations(wallet.id, 1, cursor)


# --- unknown wallets ------------------------------------------------------------------


async def test_an_unknown_wallet_is_not_found_everywhere(service: WalletService) -> None:
    await service.create_wallet()
    unknown = uuid4()
    with pytest.raises(WalletNotFound) as caught:
        await service.get_wallet(unknown)
    assert caught.value.wallet_id == unknown
    with pytest.raises(WalletNotFound):
        await service.apply_operation(unknown, op(DEPOSIT, "1"))
    with pytest.raises(WalletNotFound):
        await service.list_operations(unknown, 10, None)


async def test_looking_up_an_unknown_wallet_creates_nothing(
    service: WalletService, cache: InMemoryBalanceCache
) -> None:
    with pytest.raises(WalletNotFound):
        await service.apply_operation(uuid4(), op(DEPOSIT, "1"))
    with pytest.raises(WalletNotFound):
        await service.get_wallet(uuid4())
    assert (await service.list_wallets(10, None)).items == []
    assert cache.entries == {}


# --- the cache ------------------------------------------------------------------------


async def test_a_read_after_a_write_sees_the_write(
    service: WalletService, cache: InMemoryBalanceCache
) -> None:
    wallet = (await service.create_wallet()).value
    assert (await service.get_wallet(wallet.id)).balance == Money.zero()  # now cached
    applied = await service.apply_operation(wallet.id, op(DEPOSIT, "42"))
    read = await service.get_wallet(wallet.id)
    assert read.balance == applied.value.balance_after == Money(4200)
    assert cache.entries[wallet.id] == read


async def test_reads_are_served_from_the_cache_once_warm(
    service: WalletService, cache: InMemoryBalanceCache
) -> None:
    wallet = await new_wallet_with(service, "3.00")
    hits = cache.hits
    for _ in range(3):
        assert (await service.get_wallet(wallet.id)).balance == Money(300)
    assert cache.hits == hits + 3


async def test_everything_works_while_the_cache_is_down(
    service: WalletService, cache: InMemoryBalanceCache
) -> None:
    cache.available = False
    wallet = (await service.create_wallet()).value
    await service.apply_operation(wallet.id, op(DEPOSIT, "10"))
    applied = await service.apply_operation(wallet.id, op(WITHDRAW, "2.50"))
    assert applied.value.balance_after == Money(750)
    assert (await service.get_wallet(wallet.id)).balance == Money(750)
    assert [w.id for w in (await service.list_wallets(10, None)).items] == [wallet.id]
    assert len((await service.list_operations(wallet.id, 10, None)).items) == 2
    assert cache.entries == {}


async def test_no_stale_balance_is_served_when_the_cache_comes_back(
    service: WalletService, cache: InMemoryBalanceCache
) -> None:
    wallet = await new_wallet_with(service, "10.00")
    assert (await service.get_wallet(wallet.id)).balance == Money(1000)  # cached
    cache.available = False
    await service.apply_operation(wallet.id, op(WITHDRAW, "10"))
    cache.available = True
    assert (await service.get_wallet(wallet.id)).balance == Money.zero()


async def test_a_write_with_the_database_down_is_refused_and_not_cached(
    service: WalletService, repository: InMemoryDatabase, cache: InMemoryBalanceCache
) -> None:
    wallet = await new_wallet_with(service, "10.00")
    repository.available = False
    with pytest.raises(StorageUnavailable):
        await service.apply_operation(wallet.id, op(WITHDRAW, "10"))
    with pytest.raises(StorageUnavailable):
        await service.create_wallet()
    with pytest.raises(StorageUnavailable):
        await service.list_wallets(10, None)
    repository.available = True
    assert (await service.get_wallet(wallet.id)).balance == Money(1000)
    assert cache.entries[wallet.id].balance == Money(1000)


# --- readiness ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("database_up", "cache_up", "expected"),
    [
        (True, True, (True, "ok")),
        (True, False, (True, "down")),
        (False, True, (False, "ok")),
        (False, False, (False, "down")),
    ],
)
async def test_readiness_reports_the_database_and_the_cache(
    service: WalletService,
    repository: InMemoryDatabase,
    cache: InMemoryBalanceCache,
    database_up: bool,
    cache_up: bool,
    expected: tuple[bool, str],
) -> None:
    repository.available = database_up
    cache.available = cache_up
    readiness = await service.readiness()
    assert (readiness.database_ok, readiness.cache) == expected


# --- holds ----------------------------------------------------------------------------


class Clock:
    """The time now, ``offset`` later: the store's and the service's clock alike."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock(repository: InMemoryDatabase) -> Clock:
    moved = Clock()
    repository.clock = moved
    return moved


@pytest.fixture
def timed(repository: InMemoryDatabase, cache: InMemoryBalanceCache, clock: Clock) -> WalletService:
    """The service over memory, its clock the store's."""
    return WalletService(
        wallets=repository,
        ledger=batched_ledger(repository),
        history=repository,
        records=repository,
        health=repository,
        cache=cache,
        cursors=CursorCodec(TEST_SECRET),
        holds=repository,
        hold_book=repository,
        hold_expiry=repository,
        events=repository,
        clock=clock,
    )


def hold_command(wallet: Wallet, amount: str, expires_in: int = 60) -> HoldCommand:
    return HoldCommand(wallet.id, parse_amount(amount), expires_in=expires_in)


async def test_a_placed_hold_is_cached_with_the_wallet_and_served_until_it_expires(
    timed: WalletService, cache: InMemoryBalanceCache, clock: Clock
) -> None:
    wallet = await new_wallet_with(timed, "100")
    hold = (await timed.place_hold(hold_command(wallet, "30"))).value

    cached = cache.entries[wallet.id]
    assert (cached.held, cached.available, cached.held_until) == (
        Money(3000),
        Money(7000),
        hold.expires_at,
    )
    hits = cache.hits
    assert await timed.get_wallet(wallet.id) == cached  # from the cache
    assert cache.hits == hits + 1

    clock.offset = timedelta(seconds=60)

    read = await timed.get_wallet(wallet.id)
    assert (read.held, read.available, read.held_until) == (Money(0), Money(10000), None)
    assert read.balance == Money(10000)
    assert cache.entries[wallet.id] == cached  # not from it: it still says what was held


async def test_a_cached_wallet_is_read_again_only_once_its_next_hold_has_expired(
    timed: WalletService, cache: InMemoryBalanceCache, clock: Clock
) -> None:
    wallet = await new_wallet_with(timed, "100")
    await timed.place_hold(hold_command(wallet, "10", expires_in=60))
    await timed.place_hold(hold_command(wallet, "20", expires_in=120))
    assert (await timed.get_wallet(wallet.id)).held == Money(3000)

    clock.offset = timedelta(seconds=90)
    assert (await timed.get_wallet(wallet.id)).held == Money(2000)
    clock.offset = timedelta(seconds=120)
    assert (await timed.get_wallet(wallet.id)).held == Money(0)


async def test_capture_and_void_refresh_the_cached_wallets(
    timed: WalletService, cache: InMemoryBalanceCache
) -> None:
    payer = await new_wallet_with(timed, "100")
    payee = await new_wallet_with(timed, "0.00")
    paying = HoldCommand(payer.id, parse_amount("40"), payee.id)
    hold = (await timed.place_hold(paying)).value
    voided = (await timed.place_hold(hold_command(payer, "10"))).value
    assert cache.entries[payer.id].held == Money(5000)

    captured = (await timed.capture_hold(CaptureCommand(hold.id, parse_amount("25")))).value
    assert captured.transfer is not None
    assert captured.transfer.hold_id == hold.id
    assert (cache.entries[payer.id].balance, cache.entries[payer.id].held) == (
        Money(7500),
        Money(1000),
    )
    assert cache.entries[payee.id].balance == Money(2500)

    assert (await timed.void_hold(voided.id)).value.status is HoldStatus.VOIDED
    assert cache.entries[payer.id].held == Money(0)
    assert cache.entries[payer.id] == await timed.get_wallet(payer.id)


async def test_the_expiry_job_marks_every_due_hold_a_few_wallets_at_a_time(
    timed: WalletService,
    repository: InMemoryDatabase,
    cache: InMemoryBalanceCache,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "HOLDS_EXPIRED_PER_RUN", 2)
    wallets = [await new_wallet_with(timed, "10") for _ in range(5)]
    for wallet in wallets:
        await timed.place_hold(hold_command(wallet, "1", expires_in=60))
        await timed.place_hold(hold_command(wallet, "2", expires_in=60))
    await timed.place_hold(hold_command(wallets[0], "3", expires_in=600))
    versions = {w.id: (await repository.get(w.id)).version for w in wallets}
    clock.offset = timedelta(seconds=60)

    run = await timed.expire_holds()

    assert (run.expired, run.still_open) == (10, 1)
    for wallet in wallets:
        stored = await repository.get(wallet.id)
        assert stored.version > versions[wallet.id]
        assert cache.entries[wallet.id] == stored
    assert cache.entries[wallets[0].id].held == Money(300)
    clock.offset = timedelta()  # marked in storage: expired whatever the clock says now
    statuses = [h.status for h in (await timed.list_holds(wallets[1].id, 10, None)).items]
    assert statuses == [HoldStatus.EXPIRED, HoldStatus.EXPIRED]
    again = await timed.expire_holds()
    assert (again.expired, again.still_open) == (0, 1)


async def test_an_expired_hold_is_refused_for_capture_and_void(
    timed: WalletService, clock: Clock
) -> None:
    wallet = await new_wallet_with(timed, "100")
    hold = (await timed.place_hold(hold_command(wallet, "30"))).value
    clock.offset = timedelta(seconds=60)

    read = await timed.get_hold(hold.id)
    assert (read.status, read.updated_at) == (HoldStatus.EXPIRED, hold.expires_at)
    with pytest.raises(HoldNotActive, match="EXPIRED"):
        await timed.capture_hold(CaptureCommand(hold.id))
    with pytest.raises(HoldNotActive, match="EXPIRED"):
        await timed.void_hold(hold.id)
    with pytest.raises(HoldNotFound):
        await timed.get_hold(uuid4())
    assert (await timed.get_wallet(wallet.id)).balance == Money(10000)


async def test_a_holds_payee_is_checked_as_a_transfers(timed: WalletService) -> None:
    wallet = await new_wallet_with(timed, "100")
    euro = (await timed.create_wallet(currency=CURRENCIES["EUR"])).value
    with pytest.raises(WalletNotFound):
        await timed.place_hold(HoldCommand(wallet.id, parse_amount("1"), uuid4()))
    with pytest.raises(CurrencyMismatch):
        await timed.place_hold(HoldCommand(wallet.id, parse_amount("1"), euro.id))
    with pytest.raises(InsufficientFunds, match=r"Balance 100\.00 is less than 100\.01"):
        await timed.place_hold(hold_command(wallet, "100.01"))
    assert (await timed.list_holds(wallet.id, 10, None)).items == []


class RecordsOfHoldsAsTheyAreNow:
    """IdempotencyRecords that answer a recorded hold as it is now, not as it was when
    recorded: as a store that records the hold's id and reads the hold back does."""

    def __init__(self, database: InMemoryDatabase) -> None:
        self._database = database

    async def find_recorded(self, key: str) -> Recorded | None:
        recorded = await self._database.find_recorded(key)
        if recorded is None or recorded.hold is None:
            return recorded
        return replace(recorded, hold=await self._database.find_hold(recorded.hold.id))

    async def forget_keys_older_than(self, age: timedelta) -> int:
        return await self._database.forget_keys_older_than(age)


async def test_a_replayed_placement_answers_the_hold_as_placed_whatever_became_of_it(
    repository: InMemoryDatabase,
) -> None:
    service = WalletService(
        wallets=repository,
        ledger=batched_ledger(repository),
        history=repository,
        records=RecordsOfHoldsAsTheyAreNow(repository),
        health=repository,
        cache=InMemoryBalanceCache(),
        cursors=CursorCodec(TEST_SECRET),
        holds=repository,
        hold_book=repository,
        hold_expiry=repository,
        events=repository,
    )
    wallet = await new_wallet_with(service, "100")
    command = hold_command(wallet, "30")
    key = Idempotency.of("h-1", "POST", f"/api/v1/wallets/{wallet.id}/holds", command.meaning, "r")
    placed = (await service.place_hold(command, key)).value
    await service.capture_hold(CaptureCommand(placed.id, parse_amount("10")))

    replayed = await service.place_hold(command, key)

    assert replayed.replayed
    assert replayed.value == placed
    assert (replayed.value.status, replayed.value.captured_amount) == (HoldStatus.HELD, None)
    assert (await service.get_hold(placed.id)).status is HoldStatus.CAPTURED
