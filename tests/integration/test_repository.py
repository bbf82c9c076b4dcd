"""The storage adapters' SQL on the real PostgreSQL: atomic operations, constraints, the ledger."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass

import asyncpg
import pytest

from tests.integration.ledger import assert_ledger_consistent
from wallet.adapters.postgres.connections import PostgresHealth
from wallet.adapters.postgres.ledger import PostgresHistory, PostgresLedger
from wallet.adapters.postgres.wallets import CREATE_WALLET, WALLET_LIST_LOCK, PostgresWallets
from wallet.domain.currency import CURRENCIES, USD
from wallet.domain.errors import BalanceLimitExceeded, InsufficientFunds, WalletNotFound
from wallet.domain.model import MAX_BALANCE, AppliedOperation, OperationRequest, OperationType
from wallet.domain.money import Money
from wallet.domain.pagination import Position

DEPOSIT, WITHDRAW = OperationType.DEPOSIT, OperationType.WITHDRAW


def request(kind: OperationType, minor: int) -> OperationRequest:
    return OperationRequest(kind, Money(minor))


@dataclass(frozen=True)
class Storage:
    """The PostgreSQL adapters of the storage ports, on one pool."""

    wallets: PostgresWallets
    ledger: PostgresLedger
    history: PostgresHistory
    health: PostgresHealth

    @classmethod
    def on(cls, pool: asyncpg.Pool, timeout: float) -> Storage:
        return cls(
            PostgresWallets(pool, timeout),
            PostgresLedger(pool, timeout),
            PostgresHistory(pool, timeout),
            PostgresHealth(pool, timeout),
        )


@pytest.fixture
def repository(pool: asyncpg.Pool) -> Storage:
    return Storage.on(pool, timeout=5.0)


async def ledger(pool: asyncpg.Pool, wallet_id: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM operations WHERE wallet_id = $1 ORDER BY created_at, id", wallet_id
    )


async def test_a_new_wallet_has_a_zero_balance(repository: Storage) -> None:
    wallet = await repository.wallets.create(uuid.uuid4())

    assert wallet.balance == Money(0)
    assert wallet.version == 0
    assert wallet.created_at == wallet.updated_at
    assert await repository.wallets.get(wallet.id) == wallet


async def test_an_operation_changes_the_balance_and_appends_to_the_ledger(
    repository: Storage, pool: asyncpg.Pool
) -> None:
    wallet = await repository.wallets.create(uuid.uuid4())

    first = await repository.ledger.apply(wallet.id, request(DEPOSIT, 15_000))
    second = await repository.ledger.apply(wallet.id, request(WITHDRAW, 5_001))

    assert (first.operation.balance_after, second.operation.balance_after) == (
        Money(15_000),
        Money(9_999),
    )
    assert second.wallet.version == 2
    rows = await ledger(pool, wallet.id)
    assert [(r["operation_type"], r["amount"], r["balance_after"]) for r in rows] == [
        ("DEPOSIT", 15_000, 15_000),
        ("WITHDRAW", 5_001, 9_999),
    ]
    assert rows[1]["created_at"] == second.wallet.updated_at == second.operation.created_at
    assert (await repository.wallets.get(wallet.id)).balance == Money(9_999)


@pytest.mark.parametrize(
    ("start", "refused", "error"),
    [
        (100, request(WITHDRAW, 101), InsufficientFunds),
        (0, request(WITHDRAW, 1), InsufficientFunds),
        (MAX_BALANCE.minor, request(DEPOSIT, 1), BalanceLimitExceeded),
    ],
)
async def test_a_refused_operation_changes_nothing(
    repository: Storage,
    pool: asyncpg.Pool,
    start: int,
    refused: OperationRequest,
    error: type[Exception],
) -> None:
    wallet = await repository.wallets.create(uuid.uuid4())
    await pool.execute("UPDATE wallets SET balance = $2 WHERE id = $1", wallet.id, start)
    before = await repository.wallets.get(wallet.id)

    with pytest.raises(error):
        await repository.ledger.apply(wallet.id, refused)

    assert await repository.wallets.get(wallet.id) == before
    assert await ledger(pool, wallet.id) == []


async def test_unknown_wallets_are_not_found(repository: Storage) -> None:
    unknown = uuid.uuid4()
    with pytest.raises(WalletNotFound):
        await repository.wallets.get(unknown)
    with pytest.raises(WalletNotFound):
        await repository.ledger.apply(unknown, request(DEPOSIT, 1))
    with pytest.raises(WalletNotFound):
        await repository.history.list_operations(unknown, 10, None)


async def test_the_balance_bounds_are_enforced_by_the_schema(
    repository: Storage, pool: asyncpg.Pool
) -> None:
    wallet = await repository.wallets.create(uuid.uuid4())
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("UPDATE wallets SET balance = -1 WHERE id = $1", wallet.id)
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "UPDATE wallets SET balance = $2 WHERE id = $1", wallet.id, MAX_BALANCE.minor + 1
        )


async def test_the_ledger_is_append_only(repository: Storage, pool: asyncpg.Pool) -> None:
    wallet = await repository.wallets.create(uuid.uuid4())
    applied = await repository.ledger.apply(wallet.id, request(DEPOSIT, 100))

    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("UPDATE operations SET amount = 1 WHERE id = $1", applied.operation.id)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM operations WHERE id = $1", applied.operation.id)
    assert len(await ledger(pool, wallet.id)) == 1


async def test_wallets_are_kept_for_their_ledger(repository: Storage, pool: asyncpg.Pool) -> None:
    """Entries name their wallet without a foreign key; no wallet ever goes away under them."""
    wallet = await repository.wallets.create(uuid.uuid4())
    await repository.ledger.apply(wallet.id, request(DEPOSIT, 100))

    with pytest.raises(asyncpg.RaiseError, match="wallets are kept for their ledger: DELETE"):
        await pool.execute("DELETE FROM wallets WHERE id = $1", wallet.id)
    with pytest.raises(asyncpg.RaiseError, match="wallets are kept for their ledger: TRUNCATE"):
        await pool.execute("TRUNCATE wallets CASCADE")
    assert await pool.fetchval("SELECT count(*) FROM wallets WHERE id = $1", wallet.id) == 1
    assert len(await ledger(pool, wallet.id)) == 1


async def test_history_pages_newest_first(repository: Storage) -> None:
    wallet = await repository.wallets.create(uuid.uuid4())
    for cents in range(1, 8):
        await repository.ledger.apply(wallet.id, request(DEPOSIT, cents))

    first = await repository.history.list_operations(wallet.id, 3, None)
    last = first[-1]
    rest = await repository.history.list_operations(
        wallet.id, 10, Position(last.created_at, last.id)
    )

    assert [op.amount.minor for op in first + rest] == [7, 6, 5, 4, 3, 2, 1]


async def test_wallets_page_oldest_first(repository: Storage) -> None:
    created = [await repository.wallets.create(uuid.uuid4()) for _ in range(5)]
    start = Position(created[0].created_at, created[0].id)

    page = await repository.wallets.list_wallets(3, start)

    assert [w.id for w in page] == [w.id for w in created[1:4]]


async def test_ping_and_the_cursor_secret(repository: Storage) -> None:
    assert await repository.health.ping() is True
    secret = await repository.wallets.load_secret("cursor")
    assert len(secret) >= 16
    assert secret == await repository.wallets.load_secret("cursor")


async def test_listing_waits_for_wallets_stamped_but_not_yet_committed(
    repository: Storage, pool: asyncpg.Pool
) -> None:
    """A slow creation stamped before a committed one must not be skipped by a page."""
    async with pool.acquire() as slow:
        transaction = slow.transaction()
        await transaction.start()
        slow_id = uuid.uuid4()
        await slow.fetchrow(  # stamped, uncommitted
            CREATE_WALLET, slow_id, WALLET_LIST_LOCK, USD.code, USD.digits, "{}"
        )
        fast = await repository.wallets.create(uuid.uuid4())

        listing = asyncio.create_task(repository.wallets.list_wallets(1000, None))
        done, _ = await asyncio.wait({listing}, timeout=0.3)
        assert not done, "the page was read while an earlier-stamped wallet was uncommitted"
        await transaction.commit()
        page = await listing

    ids = [wallet.id for wallet in page]
    assert ids.index(slow_id) < ids.index(fast.id)


async def test_operations_on_a_wallet_that_keeps_moving_are_all_decided(
    pool: asyncpg.Pool,
) -> None:
    """Without group commit: balances near zero, withdrawals that flip with every cent.

    A refusal seen by the one-statement apply is checked again under the row lock, so
    the balance moving meanwhile never ends in anything but an answer.
    """
    repository = Storage.on(pool, timeout=10.0)
    wallet = await repository.wallets.create(uuid.uuid4())
    rng = random.Random(3)
    outcomes: list[object] = []

    async def client() -> None:
        for _ in range(40):
            kind = rng.choice([DEPOSIT, WITHDRAW])
            request = OperationRequest(kind, Money(rng.randint(1, 3)))
            try:
                outcomes.append(await repository.ledger.apply(wallet.id, request))
            except Exception as error:  # a refusal is expected; anything else fails below
                outcomes.append(error)

    await asyncio.gather(*(client() for _ in range(32)))

    unexpected = [o for o in outcomes if not isinstance(o, AppliedOperation | InsufficientFunds)]
    assert unexpected == []
    assert any(isinstance(o, InsufficientFunds) for o in outcomes)
    await assert_ledger_consistent(pool, wallet.id)


@pytest.mark.parametrize("code", ["JPY", "BHD"])
async def test_a_wallet_keeps_its_currency_in_every_row_it_writes(
    repository: Storage, pool: asyncpg.Pool, code: str
) -> None:
    currency = CURRENCIES[code]
    wallet = await repository.wallets.create(uuid.uuid4(), currency=currency)
    deposit = OperationRequest(DEPOSIT, Money(1500, currency))

    applied = await repository.ledger.apply(wallet.id, deposit)

    assert applied.wallet.balance == Money(1500, currency)
    assert (await repository.wallets.get(wallet.id)).currency is currency
    (listed,) = await repository.history.list_operations(wallet.id, 10, None)
    assert listed == applied.operation
    assert listed.amount.currency is currency
    rows = await pool.fetch("SELECT currency FROM operations WHERE wallet_id = $1", wallet.id)
    assert [row["currency"] for row in rows] == [code]


async def test_a_balance_is_bounded_in_its_currencys_major_units_by_the_schema(
    repository: Storage, pool: asyncpg.Pool
) -> None:
    for code, digits in (("JPY", 0), ("USD", 2), ("BHD", 3)):
        wallet = await repository.wallets.create(uuid.uuid4(), currency=CURRENCIES[code])
        largest = 9_000_000_000_000_000 * 10**digits
        update = "UPDATE wallets SET balance = $2 WHERE id = $1"
        await pool.execute(update, wallet.id, largest)
        with pytest.raises(asyncpg.CheckViolationError):
            await pool.execute(update, wallet.id, largest + 1)
        await pool.execute(update, wallet.id, 0)
