"""The event relay on the real PostgreSQL and a private nats-server: every event of a run
reaches stream WALLET_EVENTS once, in id order, with its subject, Nats-Msg-Id and body;
with NATS down at start, through a NATS crash while writes go on, a relay killed
mid-batch, and two relays at once (the lease: one session's, gone with it). The example
consumer gets each event once.

Each test has a database of its own: the stream must hold exactly that database's events.
(The database and NATS come first in each test's arguments: they outlive its app.)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType

import asyncpg
import orjson
import pytest

from tests.integration.conftest import AppFactory, Client
from tests.integration.nats_server import (
    Message,
    PrivateNats,
    stored_count,
    stored_messages,
)
from tests.unit.test_metrics import sample
from wallet.adapters.nats_stream import TIMEOUT as NATS_TIMEOUT
from wallet.adapters.postgres.relay import PostgresRelayLease, PostgresRelayLeases
from wallet.domain.relay import LeaseLost

Item = dict[str, object]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "consume_events.py"
FAILURES = "wallet_events_publish_failures_total"


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    """A nats-server of the test's own; a missing nats-server fails the test."""
    server = PrivateNats(tmp_path)
    server.start()
    yield server
    server.stop()


async def commit_changes(client: Client, wallets: int, deposits: int) -> None:
    """``wallets`` wallets created, then ``deposits`` deposits into each, concurrently."""
    created = await asyncio.gather(*(client.post("/api/v1/wallets") for _ in range(wallets)))
    ids = [(await response.json())["id"] for response in created]
    body = {"operationType": "DEPOSIT", "amount": "1.00"}
    for _ in range(deposits):
        answers = await asyncio.gather(
            *(client.post(f"/api/v1/wallets/{w}/operation", json=body) for w in ids)
        )
        assert {answer.status for answer in answers} == {200}


async def every_kind_of_change(client: Client) -> None:
    """One event of each type the relay carries (the expiry of a hold aside)."""
    payer, payee = [(await (await client.post("/api/v1/wallets")).json())["id"] for _ in range(2)]
    deposit = {"operationType": "DEPOSIT", "amount": "50.00"}
    withdrawal = {"operationType": "WITHDRAW", "amount": "1.25"}
    for body in (deposit, withdrawal):
        assert (await client.post(f"/api/v1/wallets/{payer}/operation", json=body)).status == 200
    transfer = {"fromWalletId": payer, "toWalletId": payee, "amount": "3.00"}
    assert (await client.post("/api/v1/transfers", json=transfer)).status == 201
    holds = []
    for _ in range(2):
        placed = await client.post(f"/api/v1/wallets/{payer}/holds", json={"amount": "2.00"})
        assert placed.status == 201
        holds.append((await placed.json())["id"])
    assert (await client.post(f"/api/v1/holds/{holds[0]}/capture", json={})).status == 200
    assert (await client.post(f"/api/v1/holds/{holds[1]}/void", json={})).status == 200


async def the_feed(client: Client) -> list[Item]:
    """Every event, paged from GET /api/v1/events as a consumer pages it."""
    items: list[Item] = []
    after = "0"
    while True:
        response = await client.get("/api/v1/events", params={"after": after, "limit": "1000"})
        assert response.status == 200, await response.text()
        page = await response.json()
        items += page["items"]
        if page["lastEventId"] is None:
            return items
        after = page["lastEventId"]


async def wait_for_stream(url: str, count: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while (held := await stored_count(url)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"the stream holds {held} of {count} events after {within} s")
        await asyncio.sleep(0.05)


def assert_delivered(messages: list[Message], items: list[Item]) -> None:
    """Each event exactly once, in id order, under its subject, named by its id, its body
    the feed's JSON for it."""
    assert [int(m.msg_id) for m in messages] == [int(str(item["id"])) for item in items]
    for message, item in zip(messages, items, strict=True):
        assert message.subject == f"wallet.events.{item['type']}"
        assert orjson.loads(message.body) == item


async def test_every_event_arrives_once_in_id_order_as_the_feed_has_it(
    migrated_url: str, private_nats: PrivateNats, make_client: AppFactory
) -> None:
    client = await make_client(
        database_url=migrated_url, nats_url=private_nats.url, relay_interval=0.01
    )
    await every_kind_of_change(client)
    await commit_changes(client, wallets=20, deposits=10)
    items = await the_feed(client)
    assert {item["type"] for item in items} == {
        "wallet.created",
        "operation.applied",
        "transfer.completed",
        "hold.created",
        "hold.captured",
        "hold.voided",
    }
    await wait_for_stream(private_nats.url, len(items))
    assert_delivered(await stored_messages(private_nats.url), items)
    assert await relay_position(migrated_url) == int(str(items[-1]["id"]))

    deadline = time.monotonic() + 5  # the backlog is measured once a second
    while (metrics := await (await client.get("/metrics")).text()) and (
        sample(metrics, "wallet_events_relay_lag_events") != 0
    ):
        assert time.monotonic() < deadline, "the relay's lag never came back to 0"
        await asyncio.sleep(0.2)
    assert sample(metrics, "wallet_events_relay_leader") == 1
    assert sample(metrics, "wallet_events_relay_lag_seconds") == 0
    assert sample(metrics, "wallet_events_published_total") >= len(items)


async def test_the_service_starts_and_answers_with_nats_down_and_relays_once_it_is_up(
    migrated_url: str, tmp_path: Path, make_client: AppFactory
) -> None:
    later = PrivateNats(tmp_path)  # its port chosen, nothing listening there yet
    try:
        client = await make_client(
            database_url=migrated_url, nats_url=later.url, relay_interval=0.01
        )
        started = time.monotonic()
        await commit_changes(client, wallets=5, deposits=2)
        assert time.monotonic() - started < 5, "writes waited for NATS"
        later.start()
        items = await the_feed(client)
        await wait_for_stream(later.url, len(items))
        assert_delivered(await stored_messages(later.url), items)
    finally:
        later.stop()


async def test_the_example_consumer_gets_every_event_once_from_the_stream_and_the_feed(
    migrated_url: str, private_nats: PrivateNats, make_client: AppFactory
) -> None:
    client = await make_client(
        database_url=migrated_url, nats_url=private_nats.url, relay_interval=0.01
    )
    await commit_changes(client, wallets=5, deposits=4)
    items = await the_feed(client)
    await wait_for_stream(private_nats.url, len(items))
    example = load_example()

    got: list[Item] = []

    async def handle(event: Item) -> None:
        got.append(event)

    after = int(str(items[4]["id"]))  # what an earlier run handled already
    consuming = asyncio.create_task(example.consume(private_nats.url, "test", handle, after))
    try:
        await until_equal(lambda: asyncio.sleep(0.01, len(got)), len(items) - 5)
    finally:
        consuming.cancel()
    assert got == items[5:]
    base = str(client.make_url("")).rstrip("/")
    assert await asyncio.to_thread(lambda: list(example.read_feed(base, after))) == items[5:]


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("consume_events", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.faults
async def test_a_nats_crash_while_writes_go_on_loses_and_reorders_nothing(
    migrated_url: str, private_nats: PrivateNats, make_client: AppFactory
) -> None:
    """Down longer than a batch waits for its acknowledgements: the batch in flight fails,
    and the relay resumes after what the restarted server kept."""
    client = await make_client(
        database_url=migrated_url, nats_url=private_nats.url, relay_interval=0.01
    )
    failures = sample(await (await client.get("/metrics")).text(), FAILURES)
    writing = asyncio.create_task(write_for(client, seconds=NATS_TIMEOUT + 3))
    await wait_for_stream(private_nats.url, 200)
    private_nats.kill()
    await asyncio.sleep(NATS_TIMEOUT + 1)  # requests go on and are answered meanwhile
    private_nats.start()
    slowest = await writing
    assert slowest < 1.0, f"a request waited {slowest:.2f} s while NATS was down"

    items = await the_feed(client)
    await wait_for_stream(private_nats.url, len(items))
    assert_delivered(await stored_messages(private_nats.url), items)
    assert sample(await (await client.get("/metrics")).text(), FAILURES) > failures


async def write_for(client: Client, seconds: float) -> float:
    """Deposits by 20 concurrent writers for ``seconds``; the slowest answer's time."""
    wallets = [(await (await client.post("/api/v1/wallets")).json())["id"] for _ in range(20)]
    body = {"operationType": "DEPOSIT", "amount": "1.00"}
    stop = time.monotonic() + seconds
    slowest = 0.0

    async def writer(wallet_id: str) -> None:
        nonlocal slowest
        while time.monotonic() < stop:
            started = time.monotonic()
            response = await client.post(f"/api/v1/wallets/{wallet_id}/operation", json=body)
            assert response.status == 200, await response.text()
            slowest = max(slowest, time.monotonic() - started)

    await asyncio.gather(*(writer(w) for w in wallets))
    return slowest


class RelayProcess:
    """``python -m wallet relay`` in a session of its own, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wallet", "relay"],
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL: a crash in the middle of whatever it was doing."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def published(self) -> bool:
        """Whether it ever held the lease (and so published)."""
        return "holds the lease" in self.log_path.read_text(errors="replace")


RelayFactory = Callable[..., RelayProcess]


@pytest.fixture
def relays(migrated_url: str, private_nats: PrivateNats, tmp_path: Path) -> Iterator[RelayFactory]:
    """Start ``wallet relay`` processes on the test's database and NATS."""
    started: list[RelayProcess] = []

    def start(**env: str) -> RelayProcess:
        relay = RelayProcess(
            {
                "WALLET_DATABASE_URL": migrated_url,
                "WALLET_REDIS_URL": "",
                "WALLET_NATS_URL": private_nats.url,
                "WALLET_LOG_LEVEL": "INFO",
                **env,
            },
            tmp_path / f"relay-{len(started)}.log",
        )
        relay.start()
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.stop()


async def relay_position(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        position: int = await connection.fetchval(
            "SELECT published_through FROM event_relays WHERE stream = 'WALLET_EVENTS'"
        )
        return position
    finally:
        await connection.close()


async def a_backlog(make_client: AppFactory, database_url: str) -> tuple[Client, list[Item]]:
    """A service without a relay of its own, and a few thousand events committed on it."""
    client = await make_client(database_url=database_url, nats_url=None)
    await commit_changes(client, wallets=100, deposits=29)
    items = await the_feed(client)
    assert len(items) == 3000
    return client, items


async def test_the_lease_is_one_sessions_and_goes_with_it(migrated_url: str) -> None:
    """One holder at a time; its session ended from outside, it can record nothing more,
    and the next relay gets the lease with the position as it was left."""
    leases = PostgresRelayLeases(migrated_url, "WALLET_EVENTS", timeout=2.0, retry=0.05)
    held = asyncio.Event()
    second: list[PostgresRelayLease] = []

    async def take_over() -> None:
        async with leases.hold() as lease:
            second.append(lease)
            held.set()
            await asyncio.sleep(3600)

    async with leases.hold() as first:
        assert await first.position() == 0
        await first.advance(7)
        await first.advance(5)  # never back
        assert await first.position() == 7
        waiting = asyncio.create_task(take_over())
        await asyncio.sleep(0.3)
        assert not held.is_set()

        admin = await asyncpg.connect(migrated_url)
        try:
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted"
            )
        finally:
            await admin.close()
        assert ended == 1
        with pytest.raises(LeaseLost):
            await first.advance(9)
        assert not first.held
        await asyncio.wait_for(held.wait(), 5)
    assert await second[0].position() == 7
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting


@pytest.mark.faults
async def test_a_relay_killed_mid_batch_is_followed_without_a_gap(
    migrated_url: str,
    private_nats: PrivateNats,
    relays: RelayFactory,
    make_client: AppFactory,
) -> None:
    client, items = await a_backlog(make_client, migrated_url)
    first = relays(WALLET_RELAY_BATCH="20")  # small batches: the kill lands inside one
    await wait_for_stream(private_nats.url, 500)
    first.kill()
    held = await stored_count(private_nats.url)
    assert held < len(items), "the relay finished before it could be killed"

    await commit_changes(client, wallets=10, deposits=0)  # and the feed goes on meanwhile
    items = await the_feed(client)
    relays(WALLET_RELAY_BATCH="20")
    await wait_for_stream(private_nats.url, len(items))
    assert_delivered(await stored_messages(private_nats.url), items)
    await until_equal(lambda: relay_position(migrated_url), int(str(items[-1]["id"])))


@pytest.mark.faults
async def test_of_two_relays_one_publishes_and_the_other_takes_over_when_it_dies(
    migrated_url: str,
    private_nats: PrivateNats,
    relays: RelayFactory,
    make_client: AppFactory,
) -> None:
    client, items = await a_backlog(make_client, migrated_url)
    pair = [relays(WALLET_RELAY_BATCH="20"), relays(WALLET_RELAY_BATCH="20")]
    await wait_for_stream(private_nats.url, 500)
    publishing = [relay.published() for relay in pair]
    assert sorted(publishing) == [False, True], "not exactly one relay holds the lease"
    holder, waiting = (pair[0], pair[1]) if publishing[0] else (pair[1], pair[0])

    holder.kill()
    await commit_changes(client, wallets=10, deposits=0)
    items = await the_feed(client)
    await wait_for_stream(private_nats.url, len(items))
    assert waiting.published()
    assert_delivered(await stored_messages(private_nats.url), items)


async def until_equal(read: Callable[[], Awaitable[int]], expected: int) -> None:
    deadline = time.monotonic() + 10
    while (found := await read()) != expected:
        assert time.monotonic() < deadline, f"{found} != {expected} after 10 s"
        await asyncio.sleep(0.05)
