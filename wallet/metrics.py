"""Prometheus metrics of the service, and their exposition (one process or several).

With ``serve --workers N`` each worker writes its samples under
``PROMETHEUS_MULTIPROC_DIR`` (set by the parent before the workers start), and a
scrape of any worker reports the sum over all of them.
"""

from __future__ import annotations

import functools
import os
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


def count_operation(kind: str, outcome: str) -> None:
    """Count one operation by its outcome: applied, replayed, or the code that refused it."""
    series(OPERATIONS, kind, outcome).inc()


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
    series(HTTP_DURATION, route, method).observe(seconds)
    series(HTTP_REQUESTS, route, method, str(status)).inc()


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
