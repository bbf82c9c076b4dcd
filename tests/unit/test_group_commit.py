"""Group commit on the in-memory store: order, one outcome each, failing batches, replans."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

import pytest

from wallet.adapters.group_commit import (
    LOCK_AFTER_REPLANS,
    BatchOutcome,
    GroupCommitLedger,
    PlannedBatch,
    _Queued,
)
from wallet.adapters.ids import time_ordered_uuids
from wallet.adapters.memory import InMemoryBatchStore, InMemoryDatabase
from wallet.deadlines import request_budget
from wallet.domain.errors import InsufficientFunds, StorageUnavailable, WalletNotFound
from wallet.domain.model import AppliedOperation, Leg, OperationRequest, OperationType
from wallet.domain.money import Money

DEPOSIT, WITHDRAW = OperationType.DEPOSIT, OperationType.WITHDRAW


def op(kind: OperationType, minor: int) -> OperationRequest:
    return OperationRequest(kind, Money(minor))


@pytest.fixture
def repository() -> InMemoryDatabase:
    return InMemoryDatabase()


@pytest.fixture
def store(repository: InMemoryDatabase) -> InMemoryBatchStore:
    return InMemoryBatchStore(repository)


def batched(
    repository: InMemoryDatabase, store: InMemoryBatchStore, max_batch: int = 256
) -> GroupCommitLedger:
    return GroupCommitLedger(store, timeout=5.0, max_batch=max_batch)


def assert_ledger_chain(repository: InMemoryDatabase, wallet_id: uuid.UUID) -> None:
    running = 0
    ledger = repository.ledger(wallet_id)
    for entry in ledger:
        running += entry.amount.minor if entry.type is DEPOSIT else -entry.amount.minor
        assert entry.balance_after.minor == running
    times = [entry.created_at for entry in ledger]
    assert times == sorted(set(times))


async def test_concurrent_operations_share_batches_and_keep_arrival_order(
    repository: InMemoryDatabase, store: InMemoryBatchStore
) -> None:
    wallet = await repository.create(uuid.uuid4())
    group = batched(repository, store)

    results = await asyncio.gather(*(group.apply(wallet.id, op(DEPOSIT, n)) for n in range(1, 101)))

    assert [r.operation.amount.minor for r in results] == list(range(1, 101))
    assert [r.operation.balance_after.minor for r in results] == [
        n * (n + 1) // 2 for n in range(1, 101)
    ]
    assert [r.wallet.version for r in results] == list(range(1, 101))
    assert len(store.batches) < 10, "operations queued during a commit should share the next one"
    assert [e.id for e in repository.ledger(wallet.id)] == [r.operation.id for r in results]
    assert_ledger_chain(repository, wallet.id)


async def test_each_operation_gets_its_own_outcome(
    repository: InMemoryDatabase, store: InMemoryBatchStore
) -> None:
    wallet = await repository.create(uuid.uuid4())
    group = batched(repository, store)
    requests = [op(DEPOSIT, 100), op(WITHDRAW, 150), op(WITHDRAW, 60), op(WITHDRAW, 50)]

    results = await asyncio.gather(
        *(group.apply(wallet.id, request) for request in requests), return_exceptions=True
    )

    assert isinstance(results[0], AppliedOperation)
    assert results[0].operation.balance_after == Money(100)
    assert isinstance(results[1], InsufficientFunds)
    assert str(results[1]) == "Balance 1.00 is less than 1.50"
    assert isinstance(results[2], AppliedOperation)
    assert results[2].operation.balance_after == Money(40)
    assert isinstance(results[3], InsufficientFunds)
    assert (await repository.get(wallet.id)).balance == Money(40)
    assert len(repository.ledger(wallet.id)) == 2
    assert_ledger_chain(repository, wallet.id)


async def test_a_failing_batch_fails_every_operation_in_it_and_applies_none(
    repository: InMemoryDatabase, store: InMemoryBatchStore
) -> None:
    wallet = await repository.create(uuid.uuid4())
    group = batched(repository, store)
    store.available = False

    results = await asyncio.gather(
        *(group.apply(wallet.id, op(DEPOSIT, 1)) for _ in range(20)), return_exceptions=True
    )

    assert all(isinstance(result, StorageUnavailable) for result in results)
    assert (await repository.get(wallet.id)).balance == Money(0)
    assert repository.ledger(wallet.id) == []
    store.available = True
    applied = await group.apply(wallet.id, op(DEPOSIT, 7))
    assert applied.operation.balance_after == Money(7)


async def test_a_balance_moved_elsewhere_is_replanned_from_the_real_balance(
    repository: InMemoryDatabase, store: InMemoryBatchStore
) -> None:
    """Another process (here: a second coordinator) moves the balance between batches."""
    wallet = await repository.create(uuid.uuid4())
    here, elsewhere = batched(repository, store), batched(repository, store)
    await here.apply(wallet.id, op(DEPOSIT, 100))  # "here" now believes the balance is 1.00
    await elsewhere.apply(wallet.id, op(WITHDRAW, 100))  # ... but it is 0.00

    refused, accepted = await asyncio.gather(
        here.apply(wallet.id, op(WITHDRAW, 50)),
        elsewhere.apply(wallet.id, op(DEPOSIT, 30)),
        return_exceptions=True,
    )

    assert isinstance(refused, InsufficientFunds)
    assert isinstance(accepted, AppliedOperation)
    assert (await repository.get(wallet.id)).balance == Money(30)
    assert_ledger_chain(repository, wallet.id)


class MovedElsewhereStore(InMemoryBatchStore):
    """Before each optimistic batch, another process moves the wallet by a cent, back and
    forth, so that every plan made from the balance last seen has just gone stale."""

    def __init__(self, repository: InMemoryDatabase, wallet_id: uuid.UUID) -> None:
        super().__init__(repository)
        self.wallet_id = wallet_id
        self.moves: int | None = None  # None: not moving yet

    async def apply_batch(self, batch: PlannedBatch) -> BatchOutcome:
        if self.moves is not None:
            kind = WITHDRAW if self.moves % 2 == 0 else DEPOSIT
            await self._repository.apply(self.wallet_id, op(kind, 1))
            self.moves += 1
        return await super().apply_batch(batch)


async def test_a_wallet_that_keeps_moving_is_decided_under_its_lock(
    repository: InMemoryDatabase,
) -> None:
    wallet = await repository.create(uuid.uuid4())
    await repository.apply(wallet.id, op(DEPOSIT, 99))
    store = MovedElsewhereStore(repository, wallet.id)
    group = batched(repository, store)
    await group.apply(wallet.id, op(DEPOSIT, 1))  # it has seen the balance: 1.00
    store.moves = 0  # from now on: 0.99 before the next batch, 1.00 before the one after...

    outcome = await group.apply(wallet.id, op(WITHDRAW, 100))  # allowed only from 1.00

    assert len(store.batches) == 1 + LOCK_AFTER_REPLANS  # the first, then each try went stale
    assert [list(batch.plan.runs) for batch in store.locked_batches] == [[wallet.id]]
    assert isinstance(outcome, AppliedOperation)
    assert outcome.operation.balance_after == Money(0)
    assert_ledger_chain(repository, wallet.id)


async def test_a_missing_wallet_decided_under_lock_is_not_found(
    repository: InMemoryDatabase, store: InMemoryBatchStore
) -> None:
    """No wallet is ever deleted, but a run decided under lock must not rely on that."""
    group = batched(repository, store)
    outcome: asyncio.Future[list[AppliedOperation]] = asyncio.get_running_loop().create_future()
    legs = (Leg(uuid.uuid4(), op(DEPOSIT, 1)),)
    waiting = _Queued(legs, None, outcome, LOCK_AFTER_REPLANS)
    group._queue.append(waiting)
    await group._flush_while_queued()
    with pytest.raises(WalletNotFound):
        await outcome
    assert store.locked_batches == []  # nothing left to apply once the wallet was not found


async def test_batches_span_wallets_and_respect_the_size_bound(
    repository: InMemoryDatabase, store: InMemoryBatchStore
) -> None:
    wallets = [await repository.create(uuid.uuid4()) for _ in range(5)]
    group = batched(repository, store, max_batch=8)

    await asyncio.gather(*(group.apply(w.id, op(DEPOSIT, 1)) for w in wallets for _ in range(10)))

    assert max(len(batch.plan.decisions) for batch in store.batches) <= 8
    assert any(len(batch.plan.runs) > 1 for batch in store.batches)
    for wallet in wallets:
        assert (await repository.get(wallet.id)).balance == Money(10)
        assert_ledger_chain(repository, wallet.id)


async def test_an_unknown_wallet_is_not_found_and_others_in_the_batch_still_apply(
    repository: InMemoryDatabase, store: InMemoryBatchStore
) -> None:
    wallet = await repository.create(uuid.uuid4())
    group = batched(repository, store)

    missing, applied = await asyncio.gather(
        group.apply(uuid.uuid4(), op(DEPOSIT, 1)),
        group.apply(wallet.id, op(DEPOSIT, 1)),
        return_exceptions=True,
    )

    assert isinstance(missing, WalletNotFound)
    assert isinstance(applied, AppliedOperation)


async def test_a_caller_that_gives_up_while_queued_leaves_nothing_applied(
    repository: InMemoryDatabase,
) -> None:
    wallet = await repository.create(uuid.uuid4())
    stalled = asyncio.Event()

    class StalledStore(InMemoryBatchStore):
        async def apply_batch(self, batch):  # type: ignore[no-untyped-def]
            await stalled.wait()
            return await super().apply_batch(batch)

    group = GroupCommitLedger(StalledStore(repository), timeout=0.05, max_batch=1)
    first = asyncio.create_task(group.apply(wallet.id, op(DEPOSIT, 1)))  # in the stalled batch
    second = asyncio.create_task(group.apply(wallet.id, op(DEPOSIT, 2)))  # still queued

    results = await asyncio.gather(first, second, return_exceptions=True)
    stalled.set()
    await asyncio.sleep(0.01)

    assert all(isinstance(result, StorageUnavailable) for result in results)
    assert [e.amount.minor for e in repository.ledger(wallet.id)] == [1]


async def test_each_caller_gives_up_at_its_own_deadline_even_one_queued_later_with_less_time(
    repository: InMemoryDatabase,
) -> None:
    wallet = await repository.create(uuid.uuid4())
    stalled = asyncio.Event()

    class StalledStore(InMemoryBatchStore):
        async def apply_batch(self, batch):  # type: ignore[no-untyped-def]
            await stalled.wait()
            return await super().apply_batch(batch)

    group = GroupCommitLedger(StalledStore(repository), timeout=5.0, max_batch=1)
    patient = asyncio.create_task(group.apply(wallet.id, op(DEPOSIT, 1)))
    await asyncio.sleep(0)

    async def hurried() -> AppliedOperation:
        with request_budget(0.05):  # what is left of its request's time
            return await group.apply(wallet.id, op(DEPOSIT, 2))

    started = time.perf_counter()
    with pytest.raises(StorageUnavailable):
        await hurried()
    gave_up_after = time.perf_counter() - started

    assert gave_up_after < 1.0  # its own 50 ms, not the 5 s of the caller before it
    assert not patient.done()  # that one still waits, within its own time
    stalled.set()
    applied = await patient
    assert applied.wallet.balance == Money(1)
    assert [e.amount.minor for e in repository.ledger(wallet.id)] == [1]


async def test_a_bug_in_the_store_reaches_every_caller_and_later_batches_still_run(
    repository: InMemoryDatabase,
) -> None:
    wallet = await repository.create(uuid.uuid4())
    failures = iter([True])

    class OnceBrokenStore(InMemoryBatchStore):
        async def apply_batch(self, batch):  # type: ignore[no-untyped-def]
            if next(failures, False):
                raise RuntimeError("bug")
            return await super().apply_batch(batch)

    group = batched(repository, OnceBrokenStore(repository))
    results = await asyncio.gather(
        *(group.apply(wallet.id, op(DEPOSIT, 1)) for _ in range(3)), return_exceptions=True
    )
    later = await group.apply(wallet.id, op(DEPOSIT, 5))

    assert all(isinstance(result, RuntimeError) for result in results)
    assert later.operation.balance_after == Money(5)


async def test_a_bug_in_handing_out_outcomes_reaches_its_callers_at_once(
    repository: InMemoryDatabase,
) -> None:
    wallet = await repository.create(uuid.uuid4())
    failures = iter([True])

    class OnceTruncatingStore(InMemoryBatchStore):
        """Answers its first batch with each run's entries cut to none."""

        async def apply_batch(self, batch):  # type: ignore[no-untyped-def]
            outcome = await super().apply_batch(batch)
            if next(failures, False):
                cut = [replace(run, entries=[]) for run in outcome.applied]
                return replace(outcome, applied=cut)
            return outcome

    group = GroupCommitLedger(OnceTruncatingStore(repository), timeout=30.0, max_batch=256)
    started = time.monotonic()
    results = await asyncio.gather(
        *(group.apply(wallet.id, op(DEPOSIT, 1)) for _ in range(3)), return_exceptions=True
    )
    failed_in = time.monotonic() - started
    later = await group.apply(wallet.id, op(DEPOSIT, 5))

    assert [type(result) for result in results] == [IndexError] * 3
    assert failed_in < 5, "the callers waited for their timeout instead of the bug"
    assert later.operation.balance_after == Money(8)  # the first three were committed


def test_operation_ids_are_distinct_time_ordered_version_7_uuids() -> None:
    before = time.time_ns() // 1_000_000
    ids = time_ordered_uuids(500)
    later = time_ordered_uuids(1)
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 500
    assert {(i.version, i.variant) for i in ids} == {(7, uuid.RFC_4122)}
    assert all(isinstance(i, uuid.UUID) and uuid.UUID(str(i)) == i for i in ids)
    milliseconds = [int.from_bytes(i.bytes[:6]) for i in [*ids, *later]]
    assert before <= min(milliseconds)
    assert max(milliseconds) <= after
    assert milliseconds[-1] >= milliseconds[0]  # later ids sort after (to the millisecond)


async def test_a_wallet_locked_elsewhere_holds_up_only_its_own_operations_in_order(
    repository: InMemoryDatabase, store: InMemoryBatchStore
) -> None:
    held, free = [await repository.create(uuid.uuid4()) for _ in range(2)]
    group = batched(repository, store)
    store.hold(held.id)
    interleaved = [
        asyncio.create_task(group.apply(wallet.id, op(DEPOSIT, n)))
        for n in range(1, 7)
        for wallet in (held, free)
    ]
    on_held, on_free = interleaved[0::2], interleaved[1::2]

    await asyncio.gather(*on_free)
    behind = asyncio.create_task(group.apply(held.id, op(DEPOSIT, 7)))  # queued while held
    assert (await group.apply(free.id, op(DEPOSIT, 7))).operation.balance_after == Money(28)
    assert not any(task.done() for task in [*on_held, behind])
    assert [w for batch in store.batches for w in batch.plan.runs].count(held.id) == 1
    assert store.locked_batches == []
    store.release(held.id)
    results = await asyncio.gather(*on_held, behind)
    later = await group.apply(held.id, op(DEPOSIT, 8))

    assert [r.operation.balance_after.minor for r in results] == [1, 3, 6, 10, 15, 21, 28]
    assert [e.amount.minor for e in repository.ledger(held.id)] == list(range(1, 9))
    assert later.operation.balance_after == Money(36)
    assert list(store.batches[-1].plan.runs) == [held.id], "back in the batches"
    assert_ledger_chain(repository, held.id)
    assert_ledger_chain(repository, free.id)


async def test_operations_on_a_wallet_locked_past_their_timeout_give_up_unapplied(
    repository: InMemoryDatabase, store: InMemoryBatchStore
) -> None:
    wallet = await repository.create(uuid.uuid4())
    group = GroupCommitLedger(store, timeout=0.05, max_batch=256)
    store.hold(wallet.id)

    results = await asyncio.gather(
        *(group.apply(wallet.id, op(DEPOSIT, 1)) for _ in range(3)), return_exceptions=True
    )
    store.release(wallet.id)
    applied = await group.apply(wallet.id, op(DEPOSIT, 5))

    assert all(isinstance(result, StorageUnavailable) for result in results)
    assert applied.operation.balance_after == Money(5)
    assert [e.amount.minor for e in repository.ledger(wallet.id)] == [5]


async def test_a_caller_who_gave_up_while_its_wallet_was_locked_is_left_out(
    repository: InMemoryDatabase, store: InMemoryBatchStore
) -> None:
    wallet = await repository.create(uuid.uuid4())
    group = batched(repository, store)
    loop = asyncio.get_running_loop()
    gave_up, waited = (
        _Queued(
            (Leg(wallet.id, op(DEPOSIT, n)),), None, loop.create_future(), deadline=loop.time() + 5
        )
        for n in (1, 2)
    )
    store.hold(wallet.id)
    group._queue.extend([gave_up, waited])

    await group._flush_while_queued()  # found locked: both now wait for the lock
    gave_up.outcome.set_exception(StorageUnavailable("its caller gave up"))
    store.release(wallet.id)
    (applied,) = await waited.outcome

    assert applied.operation.balance_after == Money(2)
    assert [e.amount.minor for e in repository.ledger(wallet.id)] == [2]


async def test_a_wallet_decided_under_its_lock_returns_to_the_batches_after_one_run(
    repository: InMemoryDatabase, store: InMemoryBatchStore
) -> None:
    """Under steady load its queue never empties: kept on the locked path, every run of a
    hot wallet would pay a transaction of its own."""
    wallet = await repository.create(uuid.uuid4())
    group = batched(repository, store)
    store.hold(wallet.id)
    first = [asyncio.create_task(group.apply(wallet.id, op(DEPOSIT, n))) for n in (1, 2, 3)]
    await turns_of_the_loop()
    assert len(store.batches) == 1  # the batch that found the wallet held
    meanwhile = [asyncio.create_task(group.apply(wallet.id, op(DEPOSIT, n))) for n in (4, 5)]
    await turns_of_the_loop()  # the flusher hands them to the locked path, behind the first

    store.release(wallet.id)
    results = await asyncio.gather(*first, *meanwhile)

    assert [r.operation.balance_after.minor for r in results] == [1, 3, 6, 10, 15]
    assert len(store.locked_batches) == 1
    assert list(store.batches[-1].plan.runs) == [wallet.id], "back in the batches"
    assert_ledger_chain(repository, wallet.id)


async def test_a_wallet_still_held_skips_the_batches_for_a_while(
    repository: InMemoryDatabase, store: InMemoryBatchStore
) -> None:
    """Each batch would wait for its lock a moment, then leave it out: the others in it
    would pay that wait for nothing."""
    held, free = [await repository.create(uuid.uuid4()) for _ in range(2)]
    group = GroupCommitLedger(store, timeout=0.05, max_batch=256)
    store.hold(held.id)
    with pytest.raises(StorageUnavailable):
        await group.apply(held.id, op(DEPOSIT, 1))  # found busy, then waited for in vain

    again = asyncio.create_task(group.apply(held.id, op(DEPOSIT, 2)))
    await group.apply(free.id, op(DEPOSIT, 3))
    with pytest.raises(StorageUnavailable):
        await again

    assert [w for batch in store.batches for w in batch.plan.runs].count(held.id) == 1
    store.release(held.id)
    assert (await group.apply(held.id, op(DEPOSIT, 4))).operation.balance_after == Money(4)


async def turns_of_the_loop(count: int = 10) -> None:
    """Let every task that is ready run a few steps (no time passes)."""
    for _ in range(count):
        await asyncio.sleep(0)
