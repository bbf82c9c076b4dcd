"""Prometheus metrics of the service, and their exposition (one process or several).

With ``serve --workers N`` each worker writes its samples under
``PROMETHEUS_MULTIPROC_DIR`` (set by the parent before the workers start), and a
scrape of any worker reports the sum over all of them.
"""

from __future__ import annotations

import functools
import os
import time
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

from wallet.domain.errors import WalletError

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


class OperationOutcome:
    """What became of one operation request, filled in by the handler that ran it."""

    replayed = False


@contextmanager
def counted_operation(kind: str) -> Iterator[OperationOutcome]:
    """Count the operation by its outcome: applied, replayed, or the code that refused it."""
    outcome = OperationOutcome()
    try:
        yield outcome
    except WalletError as error:
        series(OPERATIONS, kind, error.code.lower()).inc()
        raise
    series(OPERATIONS, kind, "replayed" if outcome.replayed else "applied").inc()


@contextmanager
def waiting_for_connection() -> Iterator[None]:
    DB_POOL_WAITING.inc()
    try:
        yield
    finally:
        DB_POOL_WAITING.dec()


class RequestTiming:
    """One request's status (set by the caller) and, once answered, its duration."""

    __slots__ = ("seconds", "status")

    def __init__(self) -> None:
        self.status = 500
        self.seconds = 0.0


@contextmanager
def timed_request(route: str, method: str) -> Iterator[RequestTiming]:
    """Time one request and count it under its route, method and status."""
    timing = RequestTiming()
    method = method if method in HTTP_METHODS else "OTHER"
    started = time.perf_counter()
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - started
        series(HTTP_DURATION, route, method).observe(timing.seconds)
        series(HTTP_REQUESTS, route, method, str(timing.status)).inc()


@functools.lru_cache(maxsize=4096)
def series(metric: MetricWrapperBase, *labels: str) -> Any:
    """The child of ``metric`` for these label values, found once (``labels()`` locks)."""
    return metric.labels(*labels)


def exposition() -> bytes:
    """The metrics in Prometheus' text format, summed over every worker when there are several."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def forget_process(pid: int) -> None:
    """Drop the live gauges of a worker that has exited."""
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
