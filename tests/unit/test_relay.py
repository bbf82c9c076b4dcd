"""The event relay over fakes: every event reaches the stream once, in id order, through
lost messages, lost acknowledgements, outages, retention, restarts and lost leases."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from wallet.adapters.memory import InMemoryDatabase
from wallet.domain.events import Event
from wallet.domain.relay import Backlog, LeaseLost, Relay, RelayOutcome, StreamUnavailable

BATCH = 50


class JetStreamFake:
    """A stream as JetStream keeps one: event ids in stream order. A message is stored only
    right after the sequence its publisher expected; one whose id is stored already answers
    as a duplicate, in its own place."""

    def __init__(self) -> None:
        self.stored: list[int] = []
        self.reachable = True
        self.lost: set[int] = set()  # event ids whose next message never arrives
        self.unacknowledged: set[int] = set()  # event ids stored, whose answer is lost

    def offer(self, event_id: int, follows: int) -> bool:
        """Whether the message was stored (or was already, in that place), as answered."""
        if event_id in self.lost:
            self.lost.discard(event_id)
            return False
        if event_id in self.stored:
            stored = self.stored.index(event_id) == follows
        elif len(self.stored) == follows:
            self.stored.append(event_id)
            stored = True
        else:
            stored = False
        if event_id in self.unacknowledged:
            self.unacknowledged.discard(event_id)
            return False
        return stored


class StreamClient:
    """One relay's connection to the stream: the EventStream port."""

    def __init__(self, server: JetStreamFake) -> None:
        self.server = server
        self._follows: int | None = None

    async def resume(self) -> int | None:
        if not self.server.reachable:
            raise StreamUnavailable("not reachable")
        self._follows = len(self.server.stored)
        return self.server.stored[-1] if self.server.stored else None

    async def publish(self, events: list[Event]) -> int:
        follows, self._follows = self._follows, None
        if not self.server.reachable or follows is None:
            raise StreamUnavailable("not reachable, or not resumed")
        answers = [self.server.offer(e.id, follows + n) for n, e in enumerate(events)]
        acknowledged = answers.index(False) if False in answers else len(answers)
        if acknowledged == len(events):
            self._follows = follows + acknowledged
        return acknowledged


class LeaseStore:
    """The lease and the position, as PostgreSQL keeps them for every relay."""

    def __init__(self) -> None:
        self.position = 0
        self.newest = 0  # the newest event committed
        self.free = asyncio.Event()
        self.free.set()
        self.holder: FakeLease | None = None

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[FakeLease]:
        while not self.free.is_set():
            await self.free.wait()
        self.free.clear()
        lease = self.holder = FakeLease(self)
        try:
            yield lease
        finally:
            lease.lost = True
            if self.holder is lease:
                self.holder = None
                self.free.set()

    def take_away(self) -> None:
        """The holder's session dies and someone else takes the lock."""
        assert self.holder is not None
        self.holder.lost = True
        self.holder = None


class FakeLease:
    def __init__(self, store: LeaseStore) -> None:
        self.store = store
        self.lost = False

    @property
    def held(self) -> bool:
        return not self.lost

    async def position(self) -> int:
        self._check()
        return self.store.position

    async def advance(self, through: int) -> None:
        self._check()
        self.store.position = max(self.store.position, through)

    async def backlog(self, after: int) -> Backlog:
        self._check()
        return Backlog(self.store.newest - after, 0.0)

    def _check(self) -> None:
        if self.lost:
            raise LeaseLost("taken away")


class Meter:
    def __init__(self) -> None:
        self.counts: Counter[RelayOutcome] = Counter()
        self.backlogs: list[Backlog] = []
        self.leading_now: list[bool] = []

    def count(self, outcome: RelayOutcome, times: int = 1) -> None:
        self.counts[outcome] += times

    def behind(self, backlog: Backlog) -> None:
        self.backlogs.append(backlog)

    def leading(self, held: bool) -> None:
        self.leading_now.append(held)


class Setup:
    """A feed, a stream, a lease store and as many relays as asked for."""

    def __init__(self) -> None:
        self.feed = InMemoryDatabase()
        self.stream = JetStreamFake()
        self.leases = LeaseStore()

    def relay(self, meter: Meter | None = None) -> Relay:
        return Relay(
            feed=self.feed,
            stream=StreamClient(self.stream),
            leases=self.leases,
            meter=meter or Meter(),
            batch=BATCH,
            idle_wait=0.001,
            lease_retry=0.01,
        )

    async def changes(self, count: int) -> list[int]:
        """Commit ``count`` changes (wallets created); their event ids."""
        for _ in range(count):
            await self.feed.create(uuid4())
        ids = await self.event_ids()
        self.leases.newest = ids[-1]
        return ids

    async def event_ids(self) -> list[int]:
        return [e.id for e in await self.feed.read_events(None, 10**9, None)]


@contextlib.asynccontextmanager
async def running(relay: Relay) -> AsyncIterator[None]:
    """The relay in a task; a relay that failed fails the test."""
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        if task.done():
            task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not so within {within} s")
        await asyncio.sleep(0.005)


@pytest.fixture
def setup() -> Setup:
    return Setup()


async def test_every_event_is_published_once_in_id_order(setup: Setup) -> None:
    ids = await setup.changes(3 * BATCH + 7)
    meter = Meter()
    async with running(setup.relay(meter)):
        await eventually(lambda: len(setup.stream.stored) == len(ids))
        everything = await setup.changes(5)
        await eventually(lambda: len(setup.stream.stored) == len(everything))
    assert setup.stream.stored == everything
    assert setup.leases.position == everything[-1]
    assert meter.counts == {RelayOutcome.PUBLISHED: len(everything)}
    assert meter.leading_now == [True, False]


async def test_the_backlog_is_reported_before_publishing(setup: Setup) -> None:
    ids = await setup.changes(BATCH + 1)
    meter = Meter()
    async with running(setup.relay(meter)):
        await eventually(lambda: len(setup.stream.stored) == len(ids))
    assert meter.backlogs[0] == Backlog(len(ids), 0.0)


async def test_a_lost_message_is_sent_again_and_none_after_it_goes_ahead(setup: Setup) -> None:
    ids = await setup.changes(2 * BATCH)
    setup.stream.lost = {ids[10], ids[BATCH + 3]}
    meter = Meter()
    async with running(setup.relay(meter)):
        await eventually(lambda: len(setup.stream.stored) == len(ids))
    assert setup.stream.stored == ids
    assert meter.counts[RelayOutcome.PUBLISHED] == len(ids)
    assert meter.counts[RelayOutcome.FAILED] == 2


async def test_lost_acknowledgements_resume_after_what_the_stream_holds(setup: Setup) -> None:
    """Stored, but the relay never heard so: it goes on after the stream's newest event,
    sending nothing twice."""
    ids = await setup.changes(BATCH)
    setup.stream.unacknowledged = set(ids[20:])
    async with running(setup.relay()):
        await eventually(lambda: setup.leases.position == ids[-1])
    assert setup.stream.stored == ids


async def test_a_restarted_relay_goes_on_after_the_streams_newest_event(setup: Setup) -> None:
    """A crash between the stream's acknowledgement and the position's write."""
    ids = await setup.changes(BATCH)
    setup.stream.stored = ids[:30]
    setup.leases.position = ids[9]
    meter = Meter()
    async with running(setup.relay(meter)):
        await eventually(lambda: setup.leases.position == ids[-1])
    assert setup.stream.stored == ids
    assert meter.counts[RelayOutcome.PUBLISHED] == 20


async def test_a_stream_that_lost_events_is_not_sent_them_again(setup: Setup) -> None:
    """The position says they were acknowledged: the stream goes on after it (the feed
    still has the lost ones)."""
    ids = await setup.changes(20)
    setup.leases.position = ids[9]
    async with running(setup.relay()):
        await eventually(lambda: setup.leases.position == ids[-1])
    assert setup.stream.stored == ids[10:]


async def test_an_unreachable_stream_is_waited_out(setup: Setup) -> None:
    ids = await setup.changes(10)
    setup.stream.reachable = False
    meter = Meter()
    async with running(setup.relay(meter)):
        await eventually(lambda: meter.counts[RelayOutcome.FAILED] >= 2)
        assert setup.stream.stored == []
        setup.stream.reachable = True
        await eventually(lambda: len(setup.stream.stored) == len(ids))
    assert setup.stream.stored == ids
    assert setup.leases.position == ids[-1]


async def test_a_failing_feed_is_waited_out(setup: Setup) -> None:
    ids = await setup.changes(10)
    setup.feed.available = False
    meter = Meter()
    async with running(setup.relay(meter)):
        await eventually(lambda: meter.counts[RelayOutcome.FAILED] >= 1)
        setup.feed.available = True
        await eventually(lambda: len(setup.stream.stored) == len(ids))
    assert setup.stream.stored == ids


async def test_events_dropped_by_the_retention_are_skipped_and_counted(setup: Setup) -> None:
    old = await setup.changes(10)
    boundary = datetime.now(UTC)
    await asyncio.sleep(0.002)
    ids = await setup.changes(5)
    setup.feed.clock = lambda: boundary
    assert await setup.feed.forget_events_older_than(timedelta(0)) == len(old)
    setup.leases.position = old[3]
    meter = Meter()
    async with running(setup.relay(meter)):
        await eventually(lambda: setup.leases.position == ids[-1])
    assert setup.stream.stored == ids[len(old) :]
    assert meter.counts[RelayOutcome.SKIPPED] == 1


async def test_a_lost_lease_stops_publishing_until_it_is_held_again(setup: Setup) -> None:
    ids = await setup.changes(5)
    meter = Meter()
    async with running(setup.relay(meter)):
        await eventually(lambda: len(setup.stream.stored) == len(ids))
        setup.leases.take_away()
        await eventually(lambda: meter.leading_now == [True, False])
        later = await setup.changes(5)
        await asyncio.sleep(0.1)
        assert setup.stream.stored == ids
        setup.leases.free.set()
        await eventually(lambda: len(setup.stream.stored) == len(later))
    assert setup.stream.stored == later
    assert meter.leading_now == [True, False, True, False]


async def test_of_two_relays_only_the_holder_publishes(setup: Setup) -> None:
    ids = await setup.changes(3 * BATCH)
    first, second = Meter(), Meter()
    async with running(setup.relay(first)), running(setup.relay(second)):
        await eventually(lambda: len(setup.stream.stored) == len(ids))
        await asyncio.sleep(0.05)
    assert setup.stream.stored == ids
    published = {first.counts[RelayOutcome.PUBLISHED], second.counts[RelayOutcome.PUBLISHED]}
    assert published == {0, len(ids)}
    assert first.leading_now[:1] + second.leading_now[:1] == [True]
