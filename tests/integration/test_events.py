"""The event feed on the real PostgreSQL, through the app: each committed change is one
event whose data is what the API answered, refusals and repeats make none, and readers
racing concurrent writers get every event once, in id order, never a smaller id later."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from tests.integration.conftest import AppFactory, Client
from wallet.adapters.postgres.events import PostgresEventFeed
from wallet.adapters.postgres.holds import PostgresHolds
from wallet.adapters.postgres.wallets import CREATE_WALLET, WALLET_LIST_LOCK
from wallet.domain.errors import EventsExpired
from wallet.domain.events import EventType

Body = dict[str, Any]
EVENTS = "/api/v1/events"


async def _ok(response: Any, status: int = 200) -> Body:
    body: Body = await response.json()
    assert response.status == status, body
    return body


async def _last_event_id(pool: asyncpg.Pool) -> int:
    """Where a test starts reading: the database is shared by the whole run."""
    return int(await pool.fetchval("SELECT coalesce(max(id), 0) FROM events"))


async def _read_all(client: Client, after: int, limit: int = 1000, **query: str) -> list[Body]:
    """Every event after ``after``, paging by ``lastEventId`` until a page comes back empty."""
    events: list[Body] = []
    while True:
        page = await _ok(await client.get(EVENTS, params={"after": after, "limit": limit, **query}))
        if not page["items"]:
            assert page["lastEventId"] is None
            return events
        assert page["lastEventId"] == page["items"][-1]["id"]
        events.extend(page["items"])
        after = int(page["lastEventId"])


async def _wallet(client: Client, **body: object) -> Body:
    return await _ok(await client.post("/api/v1/wallets", json=body), 201)


async def _operation(client: Client, wallet_id: str, kind: str, amount: str, **more: Any) -> Any:
    body = {"operationType": kind, "amount": amount, **more}
    return await client.post(f"/api/v1/wallets/{wallet_id}/operation", json=body)


@pytest.fixture(params=[True, False], ids=["group-commit", "one-by-one"])
async def app(request: pytest.FixtureRequest, make_client: AppFactory) -> Client:
    return await make_client(group_commit=request.param, hold_expiry_interval=0.2)


async def test_every_change_is_one_event_whose_data_is_what_the_api_answered(
    app: Client, pool: asyncpg.Pool
) -> None:
    start = await _last_event_id(pool)
    payer = await _wallet(app, currency="EUR", metadata={"owner": "ann"})
    payee = await _wallet(app, currency="EUR")
    deposit = await _ok(await _operation(app, payer["id"], "DEPOSIT", "100.00", reference="d1"))
    withdrawal = await _ok(await _operation(app, payer["id"], "WITHDRAW", "10.00"))
    transfer = await _ok(
        await app.post(
            "/api/v1/transfers",
            json={"fromWalletId": payer["id"], "toWalletId": payee["id"], "amount": "5.00"},
        ),
        201,
    )
    hold = await _ok(
        await app.post(f"/api/v1/wallets/{payer['id']}/holds", json={"amount": "7"}), 201
    )
    capture = await _ok(await app.post(f"/api/v1/holds/{hold['id']}/capture", json={"amount": "3"}))
    paying = await _ok(
        await app.post(
            f"/api/v1/wallets/{payer['id']}/holds", json={"amount": "4", "toWalletId": payee["id"]}
        ),
        201,
    )
    paid = await _ok(await app.post(f"/api/v1/holds/{paying['id']}/capture"))
    voided = await _ok(
        await app.post(f"/api/v1/wallets/{payer['id']}/holds", json={"amount": "2"}), 201
    )
    void = await _ok(await app.post(f"/api/v1/holds/{voided['id']}/void"))
    expiring = await _ok(
        await app.post(
            f"/api/v1/wallets/{payer['id']}/holds", json={"amount": "1", "expiresIn": 1}
        ),
        201,
    )
    expired = await _expired(app, expiring)

    events = await _read_all(app, start, walletId=payer["id"])
    assert [(e["type"], e["data"]) for e in events] == [
        ("wallet.created", payer),
        ("operation.applied", deposit["operation"]),
        ("operation.applied", withdrawal["operation"]),
        ("transfer.completed", transfer),
        ("hold.created", hold),
        ("hold.captured", capture),
        ("hold.created", paying),
        ("hold.captured", paid),
        ("hold.created", voided),
        ("hold.voided", void),
        ("hold.created", expiring),
        ("hold.expired", expired),
    ]
    assert {e["walletId"] for e in events} == {payer["id"]}
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(set(ids))
    assert [e["createdAt"] for e in events[:4]] == [
        payer["createdAt"],
        deposit["operation"]["createdAt"],
        withdrawal["operation"]["createdAt"],
        transfer["createdAt"],
    ]
    assert events[-1]["createdAt"] == expired["updatedAt"] == expired["expiresAt"]

    # The payee's feed: its own creation, and the transfer and the capture that paid it.
    to_payee = await _read_all(app, start, walletId=payee["id"])
    assert [(e["type"], e["data"]) for e in to_payee] == [
        ("wallet.created", payee),
        ("transfer.completed", transfer),
        ("hold.captured", paid),
    ]
    assert [e["walletId"] for e in to_payee] == [payee["id"], payer["id"], payer["id"]]
    # Without a filter: the same events, in the same order.
    every = [e for e in await _read_all(app, start) if e["walletId"] in (payer["id"], payee["id"])]
    assert [e["id"] for e in every] == sorted({e["id"] for e in events + to_payee}, key=int)


async def _expired(app: Client, hold: Body) -> Body:
    """The hold once the expiry job has marked it (within the job's interval of expiring)."""
    async with asyncio.timeout(15):
        while True:
            feed = await _read_all(app, 0, walletId=hold["walletId"])
            if any(e["type"] == "hold.expired" and e["data"]["id"] == hold["id"] for e in feed):
                return await _ok(await app.get(f"/api/v1/holds/{hold['id']}"))
            await asyncio.sleep(0.2)


async def test_refusals_and_repeats_make_no_event(app: Client, pool: asyncpg.Pool) -> None:
    wallet = await _wallet(app)
    other = await _wallet(app, currency="JPY")
    start = await _last_event_id(pool)
    refused = [
        await _operation(app, wallet["id"], "WITHDRAW", "1.00"),
        await _operation(app, wallet["id"], "DEPOSIT", "0.001"),
        await _operation(app, str(uuid.uuid4()), "DEPOSIT", "1.00"),
        await app.post(
            "/api/v1/transfers",
            json={"fromWalletId": wallet["id"], "toWalletId": other["id"], "amount": "1"},
        ),
        await app.post(f"/api/v1/wallets/{wallet['id']}/holds", json={"amount": "5"}),
    ]
    assert [r.status for r in refused] == [400, 400, 404, 400, 400]
    key = {"Idempotency-Key": str(uuid.uuid4())}
    deposit = {"operationType": "DEPOSIT", "amount": "9.00"}
    path = f"/api/v1/wallets/{wallet['id']}/operation"
    first = await _ok(await app.post(path, json=deposit, headers=key))
    again = await app.post(path, json=deposit, headers=key)
    assert again.headers.get("Idempotent-Replayed") == "true"
    hold = await _ok(
        await app.post(f"/api/v1/wallets/{wallet['id']}/holds", json={"amount": "1"}), 201
    )
    await _ok(await app.post(f"/api/v1/holds/{hold['id']}/void"))
    assert (await app.post(f"/api/v1/holds/{hold['id']}/capture")).status == 409
    assert (await app.post(f"/api/v1/holds/{hold['id']}/void")).status == 409

    events = await _read_all(app, start, walletId=wallet["id"])
    assert [(e["type"], e["data"]["id"]) for e in events] == [
        ("operation.applied", first["operation"]["id"]),
        ("hold.created", hold["id"]),
        ("hold.voided", hold["id"]),
    ]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM events WHERE id > $1 AND wallet_id = $2",
            start,
            uuid.UUID(wallet["id"]),
        )
        == 3
    )


async def test_a_reader_never_passes_an_event_whose_transaction_is_still_open(
    client: Client, pool: asyncpg.Pool
) -> None:
    """A transaction that took an event id and has not committed holds the feed below it:
    the events committed after it (with larger ids) wait until it ends, then come after
    it. Had the reader returned them, it would never have seen the smaller id."""
    start = await _last_event_id(pool)
    for outcome in ("commit", "rollback"):
        async with pool.acquire() as slow:
            transaction = slow.transaction()
            await transaction.start()
            slow_id = uuid.uuid4()
            await slow.fetchrow(CREATE_WALLET, slow_id, WALLET_LIST_LOCK, "USD", 2, "{}")
            quick = await _wallet(client)  # its event's id is larger, and it commits first
            held_back = await _read_all(client, start)
            assert quick["id"] not in {e["data"]["id"] for e in held_back}
            if outcome == "commit":
                await transaction.commit()
            else:
                await transaction.rollback()
        after = await _read_all(client, start)
        seen = [e["data"]["id"] for e in after if e["type"] == "wallet.created"]
        expected = [str(slow_id), quick["id"]] if outcome == "commit" else [quick["id"]]
        assert seen[-len(expected) :] == expected
        assert [int(e["id"]) for e in after] == sorted(int(e["id"]) for e in after)
        start = int(after[-1]["id"])


WRITERS = 12
READERS = 3
RACE_SECONDS = 4.0


async def test_readers_racing_writers_get_every_event_once_in_order(
    app: Client, pool: asyncpg.Pool
) -> None:
    """Writers on a few wallets (deposits, withdrawals, transfers both ways, holds placed,
    captured and voided) while readers page the feed by ``after``: each reader's ids only
    ever grow, and in the end each has exactly the events the table holds; per wallet,
    the entries the events carry follow the wallet's ledger order."""
    start = await _last_event_id(pool)
    wallets = [(await _wallet(app))["id"] for _ in range(4)]
    for wallet_id in wallets:
        await _ok(await _operation(app, wallet_id, "DEPOSIT", "1000000.00"))
    stop = asyncio.Event()

    async def write(seed: int) -> None:
        pick = random.Random(seed)
        while not stop.is_set():
            payer, payee = pick.sample(wallets, 2)
            roll = pick.random()
            if roll < 0.4:
                await _operation(app, payer, pick.choice(["DEPOSIT", "WITHDRAW"]), "1.00")
            elif roll < 0.7:
                body = {"fromWalletId": payer, "toWalletId": payee, "amount": "2.00"}
                await app.post("/api/v1/transfers", json=body)
            else:
                placed = await app.post(f"/api/v1/wallets/{payer}/holds", json={"amount": "3"})
                hold = await placed.json()
                action = pick.choice(["capture", "void"])
                await app.post(f"/api/v1/holds/{hold['id']}/{action}")

    async def read() -> list[int]:
        seen: list[int] = []
        after = start
        while True:
            finished = stop.is_set()  # read once more after the writers stopped
            page = await _ok(await app.get(EVENTS, params={"after": after, "limit": 50}))
            ids = [int(e["id"]) for e in page["items"]]
            assert all(i > after for i in ids)
            assert ids == sorted(set(ids))
            seen.extend(ids)
            if ids:
                after = ids[-1]
            elif finished:
                return seen

    writers = [asyncio.create_task(write(n)) for n in range(WRITERS)]
    readers = [asyncio.create_task(read()) for _ in range(READERS)]
    await asyncio.sleep(RACE_SECONDS)
    stop.set()
    await asyncio.gather(*writers)
    got = await asyncio.gather(*readers)

    stored = [
        r["id"] for r in await pool.fetch("SELECT id FROM events WHERE id > $1 ORDER BY id", start)
    ]
    assert len(stored) > 200, "the writers made too few changes to race anything"
    for seen in got:
        assert seen == stored
    entries = await _read_all(app, start)
    _assert_ledger_order(entries)


def _assert_ledger_order(events: list[Body]) -> None:
    """For each wallet, the entries in its events (in event order) have growing times."""
    times: dict[str, list[str]] = defaultdict(list)
    for event in events:
        data = event["data"]
        operations = {
            "operation.applied": [data],
            "transfer.completed": data.get("operations", []),
            "hold.captured": data.get("operations", []),
        }.get(event["type"], [])
        for operation in operations:
            times[operation["walletId"]].append(operation["createdAt"])
    assert times
    for wallet_times in times.values():
        assert wallet_times == sorted(wallet_times)
        assert len(set(wallet_times)) == len(wallet_times)


@pytest.fixture
async def feed(migrated_url: str) -> AsyncIterator[tuple[PostgresEventFeed, asyncpg.Pool]]:
    async with asyncpg.create_pool(migrated_url, min_size=1, max_size=4) as pool:
        yield PostgresEventFeed(pool, timeout=5.0), pool


async def test_the_retention_drops_the_oldest_and_an_after_before_them_is_expired(
    feed: tuple[PostgresEventFeed, asyncpg.Pool],
) -> None:
    events, pool = feed
    for _ in range(5):
        await pool.fetchrow(CREATE_WALLET, uuid.uuid4(), WALLET_LIST_LOCK, "USD", 2, "{}")
    kept = await events.read_events(None, 100, None)
    assert len(kept) == 5
    assert await events.forget_events_older_than(timedelta(days=1)) == 0
    assert await events.forget_events_older_than(timedelta(0)) == 5
    newer = uuid.uuid4()
    await pool.fetchrow(CREATE_WALLET, newer, WALLET_LIST_LOCK, "USD", 2, "{}")

    with pytest.raises(EventsExpired) as expired:
        await events.read_events(kept[0].id, 100, None)
    assert expired.value.oldest_kept_after == kept[-1].id
    for after in (None, kept[-1].id):
        (only,) = await events.read_events(after, 100, None)
        assert only.subject.id == newer  # type: ignore[union-attr]
    assert await pool.fetchval("SELECT dropped_through FROM event_feed") == kept[-1].id


async def test_an_expiry_on_a_wallet_locked_for_a_moment_is_marked_in_the_same_run(
    feed: tuple[PostgresEventFeed, asyncpg.Pool],
) -> None:
    """A hot wallet's batches hold its row most of the time: the job tries again a moment
    later rather than leave the expiry (and its event) to a run many seconds away."""
    events, pool = feed
    holds = PostgresHolds(pool, timeout=5.0)
    wallet_id, hold_id = uuid.uuid4(), uuid.uuid4()
    await pool.fetchrow(CREATE_WALLET, wallet_id, WALLET_LIST_LOCK, "USD", 2, "{}")
    await pool.execute("UPDATE wallets SET balance = 500, held = 100 WHERE id = $1;", wallet_id)
    await pool.execute(
        "INSERT INTO holds (id, wallet_id, currency, amount, expires_at, created_at, updated_at)"
        " VALUES ($1, $2, 'USD', 100, clock_timestamp() - interval '1 second',"
        " clock_timestamp() - interval '1 minute', clock_timestamp() - interval '1 minute')",
        hold_id,
        wallet_id,
    )
    async with pool.acquire() as busy, busy.transaction():
        await busy.execute("SELECT 1 FROM wallets WHERE id = $1 FOR NO KEY UPDATE", wallet_id)
        expiring = asyncio.create_task(holds.expire_due(10))
        await asyncio.sleep(0.1)  # the job meets the lock at least once
        assert not expiring.done()
    count, (wallet,) = await expiring
    assert (count, wallet.id, wallet.held.minor) == (1, wallet_id, 0)
    last = (await events.read_events(None, 1000, wallet_id))[-1]
    assert (last.type, last.subject.id) == (EventType.HOLD_EXPIRED, hold_id)  # type: ignore[union-attr]
