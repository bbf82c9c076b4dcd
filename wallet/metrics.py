"""Prometheus metrics of the service, and their exposition (one process or several).

With ``serve --workers N`` each worker writes its samples under
``PROMETHEUS_MULTIPROC_DIR`` (set by the parent before the workers start), and a
scrape of any worker reports the sum over all of them.
"""

from __future__ import annotations

import asyncio
import functools
import os
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics import MetricWrapperBase

from wallet.domain.relay import Backlog, RelayOutcome

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# A client may send any token as a method; the rest are counted as OTHER, so that no
# client can grow the number of series without bound.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HTTP_REQUESTS = Counter(
    "wallet_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "wallet_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OPERATIONS = Counter(
    "wallet_operations_total",
    "Deposits and withdrawals, by type and outcome (applied, replayed or the refusal's code).",
    ["type", "outcome"],
)
TRANSFERS = Counter(
    "wallet_transfers_total",
    "Transfers between wallets, by outcome (applied, replayed or the refusal's code).",
    ["outcome"],
)
HOLDS = Counter(
    "wallet_holds_total",
    "Holds by outcome: placed, captured, voided, expired (marked by the job), replayed, or"
    " the refusal's code.",
    ["outcome"],
)
OPEN_HOLDS = Gauge(
    "wallet_holds_open",
    "Holds reserving money now (held and not expired), as the last expiry run counted them.",
    multiprocess_mode="mostrecent",
)
IDEMPOTENT_REPLAYS = Counter(
    "wallet_idempotent_replays_total", "Requests answered with the answer recorded under their key."
)
BATCH_SIZE = Histogram(
    "wallet_group_commit_batch_operations",
    "Operations in one group-commit batch (one statement, one commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
CACHE_LOOKUPS = Counter(
    "wallet_cache_lookups_total", "Balance cache reads, by result.", ["result"]
)  # hit, miss
CACHE_ERRORS = Counter("wallet_cache_errors_total", "Balance cache calls that failed or timed out.")
DB_POOL_CONNECTIONS = Gauge(
    "wallet_db_pool_connections",
    "Database connections of the pool, by state.",
    ["state"],  # in_use, idle
    multiprocess_mode="livesum",
)
DB_POOL_WAITING = Gauge(
    "wallet_db_pool_waiting",
    "Requests waiting for a database connection.",
    multiprocess_mode="livesum",
)
# The event relay. One process at a time relays (the lease's holder): the gauges are its
# own, 0 in every other process, so "livemax" reads the holder's (and drops a dead one's).
EVENTS_PUBLISHED = Counter(
    "wallet_events_published_total",
    "Events the stream acknowledged to the relay (a batch stored without an answer is not"
    " counted: the relay then goes on after it).",
)
EVENTS_PUBLISH_FAILURES = Counter(
    "wallet_events_publish_failures_total",
    "Relay attempts that left events unpublished (NATS unreachable, a refusal, no"
    " acknowledgement in time); those events go again.",
)
EVENTS_SKIPPED = Counter(
    "wallet_events_relay_skips_total",
    "Times the retention dropped events before the relay published them; it went on after.",
)
EVENTS_LAG = Gauge(
    "wallet_events_relay_lag_events",
    "Events not yet acknowledged by the stream: the newest committed id less the last"
    " acknowledged (an id a rolled-back change took counts too).",
    multiprocess_mode="livemax",
)
EVENTS_LAG_SECONDS = Gauge(
    "wallet_events_relay_lag_seconds",
    "Age of the oldest event not yet acknowledged by the stream; 0 when caught up.",
    multiprocess_mode="livemax",
)
EVENTS_RELAY_LEADER = Gauge(
    "wallet_events_relay_leader",
    "1 in the process that holds the relay's lease and publishes, else 0.",
    multiprocess_mode="livesum",
)


class Tally:
    """Samples kept in this process, written to the metrics in bulk by ``flush``.

    Writing one sample under PROMETHEUS_MULTIPROC_DIR takes a lock and a write to a
    shared file: the three or four a request wrote cost it 7-9 µs of CPU. Counting
    in a dictionary instead costs about one, and the metrics lag by the interval
    between flushes (one second while serving, and none in a scrape's own process).
    """

    def __init__(self) -> None:
        self._counts: dict[Any, int] = {}
        self._observed: dict[Any, list[float]] = {}  # the sum, then each bucket's count

    def inc(self, child: Any) -> None:
        self._counts[child] = self._counts.get(child, 0) + 1

    def observe(self, child: Any, value: float) -> None:
        observed = self._observed.get(child)
        if observed is None:
            observed = self._observed[child] = [0.0] * (1 + len(child._upper_bounds))
        observed[0] += value
        observed[1 + bisect_left(child._upper_bounds, value)] += 1  # as Histogram.observe

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        for child, count in counts.items():
            child.inc(count)
        observed, self._observed = self._observed, {}
        for child, (total, *buckets) in observed.items():
            for bucket, times in zip(child._buckets, buckets, strict=True):
                if times:
                    bucket.inc(times)
            child._sum.inc(total)


TALLY = Tally()


def count_operation(kind: str, outcome: str) -> None:
    """Count one operation by its outcome: applied, replayed, or the code that refused it."""
    TALLY.inc(series(OPERATIONS, kind, outcome))


def count_transfer(outcome: str) -> None:
    """Count one transfer by its outcome: applied, replayed, or the code that refused it."""
    TALLY.inc(series(TRANSFERS, outcome))


def count_hold(outcome: str, times: int = 1) -> None:
    """Count holds by outcome: placed, captured, voided, expired, replayed, or the code
    that refused the request."""
    child = series(HOLDS, outcome)
    for _ in range(times):
        TALLY.inc(child)


class RelayMetrics:
    """The relay's reports as metrics (a few writes a second: no tally needed)."""

    COUNTERS = {
        RelayOutcome.PUBLISHED: EVENTS_PUBLISHED,
        RelayOutcome.FAILED: EVENTS_PUBLISH_FAILURES,
        RelayOutcome.SKIPPED: EVENTS_SKIPPED,
    }

    def count(self, outcome: RelayOutcome, times: int = 1) -> None:
        self.COUNTERS[outcome].inc(times)

    def behind(self, backlog: Backlog) -> None:
        EVENTS_LAG.set(backlog.events)
        EVENTS_LAG_SECONDS.set(backlog.seconds)

    def leading(self, held: bool) -> None:
        EVENTS_RELAY_LEADER.set(1 if held else 0)
        if not held:  # the next holder reports the backlog from now on
            EVENTS_LAG.set(0)
            EVENTS_LAG_SECONDS.set(0)


@contextmanager
def waiting_for_connection() -> Iterator[None]:
    DB_POOL_WAITING.inc()
    try:
        yield
    finally:
        DB_POOL_WAITING.dec()


def count_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request under its route, method and status, with its duration."""
    method = method if method in HTTP_METHODS else "OTHER"
    TALLY.observe(series(HTTP_DURATION, route, method), seconds)
    TALLY.inc(series(HTTP_REQUESTS, route, method, str(status)))


async def flush_tally_every(seconds: float) -> None:
    """Write this process's tallied samples to the metrics now and then, for good."""
    try:
        while True:
            await asyncio.sleep(seconds)
            TALLY.flush()
    finally:
        TALLY.flush()


@functools.lru_cache(maxsize=4096)
def series(metric: MetricWrapperBase, *labels: str) -> Any:
    """The child of ``metric`` for these label values, found once (``labels()`` locks)."""
    return metric.labels(*labels)


def exposition() -> bytes:
    """The metrics in Prometheus' text format, summed over every worker when there are several.

    This process's tallied samples are written first; another worker's are at most
    one flush interval behind.
    """
    TALLY.flush()
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def forget_process(pid: int) -> None:
    """Drop the live gauges of a worker that has exited."""
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
