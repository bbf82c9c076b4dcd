"""/metrics: Prometheus text with the service's own counters moving as requests are answered."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry, Counter, Histogram

from wallet.metrics import Tally

Client = TestClient[web.Request, web.Application]


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when it is absent)."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return 0.0


async def scrape(client: Client) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    return await response.text()


async def test_requests_operations_and_replays_are_counted(client: Client) -> None:
    before = await scrape(client)
    wallet = (await (await client.post("/api/v1/wallets")).json())["id"]
    path = f"/api/v1/wallets/{wallet}/operation"
    deposit = {"operationType": "DEPOSIT", "amount": "5"}
    for _ in range(2):
        await client.post(path, json=deposit, headers={"Idempotency-Key": f"m-{wallet}"})
    await client.post(path, json={"operationType": "WITHDRAW", "amount": "50"})
    await client.get("/no/such/route")

    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    route = "/api/v1/wallets/{wallet_id}/operation"
    assert grew("wallet_http_requests_total", route=route, method="POST", status="200") == 2
    assert grew("wallet_http_requests_total", route=route, method="POST", status="400") == 1
    assert grew("wallet_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert grew("wallet_operations_total", type="DEPOSIT", outcome="applied") == 1
    assert grew("wallet_operations_total", type="DEPOSIT", outcome="replayed") == 1
    assert grew("wallet_operations_total", type="WITHDRAW", outcome="insufficient_funds") == 1
    assert grew("wallet_idempotent_replays_total") == 1
    assert grew("wallet_http_request_duration_seconds_count", route=route, method="POST") == 3


async def test_rare_methods_share_one_series(client: Client) -> None:
    before = await scrape(client)
    for method in ("PURGE", "PROPFIND", "MKCOL"):
        assert (await client.request(method, "/api/v1/wallets")).status == 405
    after = await scrape(client)
    labels = {"route": "unmatched", "method": "OTHER", "status": "405"}
    grown = sample(after, "wallet_http_requests_total", **labels)
    assert grown - sample(before, "wallet_http_requests_total", **labels) == 3
    assert "PROPFIND" not in after


BUCKETS = (0.001, 0.01, 0.1, 1.0)


def test_a_tally_writes_what_observing_each_sample_would() -> None:
    registry = CollectorRegistry()
    direct = Histogram("direct", "d", ["route"], buckets=BUCKETS, registry=registry)
    tallied = Histogram("tallied", "t", ["route"], buckets=BUCKETS, registry=registry)
    counted = Counter("counted", "c", ["route"], registry=registry)
    tally = Tally()
    samples = [0.0, 0.001, 0.0010001, 0.05, 0.1, 0.99, 1.0, 7.5, 120.0]
    for value in samples:
        direct.labels("a").observe(value)
        tally.observe(tallied.labels("a"), value)
        tally.inc(counted.labels("a"))

    assert registry.get_sample_value("tallied_count", {"route": "a"}) == 0  # not written yet
    tally.flush()
    tally.flush()  # nothing is written twice

    for bound in (*map(str, BUCKETS), "+Inf"):
        labels = {"route": "a", "le": bound}
        expected = registry.get_sample_value("direct_bucket", labels)
        assert registry.get_sample_value("tallied_bucket", labels) == expected
    for suffix in ("_count", "_sum"):
        expected = registry.get_sample_value(f"direct{suffix}", {"route": "a"})
        assert registry.get_sample_value(f"tallied{suffix}", {"route": "a"}) == expected
    assert registry.get_sample_value("counted_total", {"route": "a"}) == len(samples)


async def test_the_scraping_process_writes_its_tally_first(client: Client) -> None:
    before = await scrape(client)
    await client.get("/health/live")
    after = await scrape(client)
    labels = {"route": "/health/live", "method": "GET", "status": "200"}
    assert (
        sample(after, "wallet_http_requests_total", **labels)
        - sample(before, "wallet_http_requests_total", **labels)
        == 1
    )


def test_the_histogram_internals_the_tally_writes_through_are_there() -> None:
    """metrics.Tally uses a histogram child's private ``_upper_bounds``, ``_buckets`` and
    ``_sum``; setup.cfg pins prometheus-client to releases that have them. A release
    that changes them fails here, by name, before any figure goes wrong."""
    child = Histogram("probe_seconds", "a probe", registry=CollectorRegistry(), buckets=(1.0,))
    assert list(child._upper_bounds) == [1.0, float("inf")]
    assert len(child._buckets) == len(child._upper_bounds)
    assert all(callable(bucket.inc) for bucket in child._buckets)
    assert callable(child._sum.inc)
