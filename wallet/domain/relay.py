"""The event relay: every committed event onto the stream, in id order, at least once.

One relay at a time publishes, the one holding the lease. It resumes after the newest
event the stream holds, so a crash or an outage neither skips an event nor stores one out
of order; the position it keeps is what it last saw acknowledged, for ops and for a
stream that lost its end.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from typing import TYPE_CHECKING

from wallet.domain.errors import EventsExpired, StorageUnavailable
from wallet.domain.values import value

if TYPE_CHECKING:
    from wallet.domain.ports import EventFeed, EventStream, RelayLease, RelayLeases, RelayMeter

log = logging.getLogger(__name__)

FIRST_BACKOFF = 0.1  # seconds after a first failure; doubled after each next one
LAST_BACKOFF = 5.0
MEASURE_EVERY = 1.0  # seconds between looks at the backlog (each also proves the lease)


class StreamUnavailable(Exception):
    """The stream cannot be reached, or refused or did not acknowledge events in time;
    the events not acknowledged go again."""


class LeaseLost(Exception):
    """The relay can no longer show that it holds the lease: it must stop publishing."""


class RelayOutcome(enum.StrEnum):
    PUBLISHED = "published"  # events the stream acknowledged
    FAILED = "failed"  # attempts that left events unpublished (they go again)
    SKIPPED = "skipped"  # times the retention dropped events before they were published


@value
class Backlog:
    """What waits to be published: ``events`` by id after the position, and the age in
    ``seconds`` of the oldest of them (0 when there is none)."""

    events: int
    seconds: float


CAUGHT_UP = Backlog(0, 0.0)


class Relay:
    """Reads the feed after the position and publishes, ``batch`` events at a time.

    Waits ``idle_wait`` seconds when it found less than a batch, and backs off while the
    stream or the store fails. Nothing here ever makes a request wait.
    """

    def __init__(
        self,
        feed: EventFeed,
        stream: EventStream,
        leases: RelayLeases,
        meter: RelayMeter,
        batch: int,
        idle_wait: float,
        lease_retry: float = 1.0,
    ) -> None:
        self._feed = feed
        self._stream = stream
        self._leases = leases
        self._meter = meter
        self._batch = batch
        self._idle_wait = idle_wait
        self._lease_retry = lease_retry
        self._position = 0  # the last event acknowledged, as far as this relay knows
        self._chained = False  # the stream's end is known: the next publish follows it

    async def run(self) -> None:
        """Relay for good: whenever this process holds the lease, and only then."""
        while True:
            try:
                async with self._leases.hold() as lease:
                    log.info("event relay holds the lease; publishing")
                    self._meter.leading(True)
                    try:
                        await self._relay_while_held(lease)
                    finally:
                        self._meter.leading(False)
            except LeaseLost as lost:
                log.warning("event relay lost its lease (%s); another may take over", lost)
            await asyncio.sleep(self._lease_retry)

    async def _relay_while_held(self, lease: RelayLease) -> None:
        """Batch after batch until the lease is lost (LeaseLost) or the task is cancelled."""
        self._position = await lease.position()
        self._chained = False
        next_measure = 0.0
        backoff = 0.0
        while True:
            if time.monotonic() >= next_measure:  # each look also proves the lease
                next_measure = time.monotonic() + MEASURE_EVERY
                self._meter.behind(await lease.backlog(self._position))
            try:
                more = await self._publish_next(lease)
            except (StreamUnavailable, StorageUnavailable) as error:
                self._chained = False
                self._meter.count(RelayOutcome.FAILED)
                backoff = min(max(backoff * 2, FIRST_BACKOFF), LAST_BACKOFF)
                log.warning(
                    "event relay could not publish after event %d (%s); again in %.1f s",
                    self._position,
                    error,
                    backoff,
                )
                await asyncio.sleep(backoff)
                continue
            backoff = 0.0
            if not more:
                await asyncio.sleep(self._idle_wait)

    async def _publish_next(self, lease: RelayLease) -> bool:
        """One batch after the position; whether more may be waiting already."""
        if not self._chained:
            await self._resume(lease)
        try:
            events = await self._feed.read_events(self._position or None, self._batch, None)
        except EventsExpired as expired:
            log.warning(
                "event relay: the retention dropped events after %d before they were"
                " published; going on after %d",
                expired.after,
                expired.oldest_kept_after,
            )
            self._meter.count(RelayOutcome.SKIPPED)
            self._position = expired.oldest_kept_after
            return True
        if not events:
            return False
        if not lease.held:
            raise LeaseLost("its connection is gone")
        acknowledged = await self._stream.publish(events)
        if acknowledged:
            self._position = events[acknowledged - 1].id
            self._meter.count(RelayOutcome.PUBLISHED, acknowledged)
            await lease.advance(self._position)
        if acknowledged < len(events):
            raise StreamUnavailable(f"{acknowledged} of {len(events)} events acknowledged")
        return len(events) == self._batch

    async def _resume(self, lease: RelayLease) -> None:
        """Go on after the newest event the stream holds: past the position when the
        relay before published more than it recorded."""
        newest = await self._stream.resume()
        if newest is not None and newest > self._position:
            log.info("event relay: the stream holds events through %d; going on after it", newest)
            self._position = newest
            await lease.advance(newest)
        elif self._position and (newest is None or newest < self._position):
            log.warning(
                "event relay: the stream's newest event is %s, behind the relay's position %d;"
                " going on after the position (events up to it are not published again)",
                newest,
                self._position,
            )
        self._chained = True
