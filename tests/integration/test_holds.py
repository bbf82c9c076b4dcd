"""Holds through the real app on the real PostgreSQL and Redis: placed, read, listed,
captured (whole or part, as a withdrawal or a transfer), voided and expired, each clause of
the contract's Holds section; withdrawals and transfers out held to the available balance
on both write paths; keys replayed; and capture, void and expiry racing on one hold."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from tests.integration.conftest import AppFactory, Client
from wallet.adapters.postgres.audit import audit, summary
from wallet.domain.model import MAX_BALANCE

BOTH_WRITE_PATHS = pytest.mark.parametrize(
    "group_commit", [True, False], ids=["group-commit", "one-by-one"]
)
MAXIMUM = MAX_BALANCE.minor  # a USD wallet's most, in cents
SEVEN_DAYS = 7 * 24 * 3600
THIRTY_DAYS = 30 * 24 * 3600
HOLD_FIELDS = {
    "id",
    "walletId",
    "toWalletId",
    "currency",
    "amount",
    "capturedAmount",
    "status",
    "expiresAt",
    "reference",
    "metadata",
    "createdAt",
    "updatedAt",
}
Body = dict[str, Any]
Answer = tuple[int, Body, dict[str, str]]


def cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def until_past(stamp: str, margin: float = 0.02) -> None:
    """Wait until the clock (the database's is this machine's) is ``margin`` seconds past
    ``stamp``."""
    await asyncio.sleep(max(0.0, moment(stamp).timestamp() + margin - time.time()))


@dataclass(frozen=True, slots=True)
class Service:
    """The app on a database of the test's own, and that database straight."""

    client: Client
    url: str

    async def post(
        self, path: str, body: object = None, key: str | None = None, allow_5xx: bool = False
    ) -> Answer:
        """POST ``body`` as JSON (no body at all when None); a 5xx fails, unless allowed."""
        headers = {} if key is None else {"Idempotency-Key": key}
        if body is None:
            response = await self.client.post(path, headers=headers)
        else:
            response = await self.client.post(path, json=body, headers=headers)
        if not allow_5xx:
            assert response.status < 500, f"POST {path} {body}: {await response.text()}"
        return response.status, await response.json(), dict(response.headers)

    async def wallet(self, funding: str | None = None, currency: str = "USD") -> str:
        status, body, _ = await self.post("/api/v1/wallets", {"currency": currency})
        assert status == 201, body
        wallet_id: str = body["id"]
        if funding is not None:
            status, body, _ = await self.operate(wallet_id, "DEPOSIT", funding)
            assert status == 200, body
        return wallet_id

    async def operate(self, wallet_id: str, kind: str, amount: str) -> Answer:
        body = {"operationType": kind, "amount": amount}
        return await self.post(f"/api/v1/wallets/{wallet_id}/operation", body)

    async def transfer(self, payer: str, payee: str, amount: str) -> Answer:
        body = {"fromWalletId": payer, "toWalletId": payee, "amount": amount}
        return await self.post("/api/v1/transfers", body)

    async def hold(
        self, wallet_id: str, amount: object, key: str | None = None, **extra: object
    ) -> Answer:
        body = {"amount": amount, **extra}
        return await self.post(f"/api/v1/wallets/{wallet_id}/holds", body, key)

    async def placed(self, wallet_id: str, amount: str, **extra: object) -> Body:
        """A hold that must be placed."""
        status, body, _ = await self.hold(wallet_id, amount, **extra)
        assert status == 201, body
        return body

    async def capture(self, hold_id: str, body: object = None, key: str | None = None) -> Answer:
        return await self.post(f"/api/v1/holds/{hold_id}/capture", body, key)

    async def void(self, hold_id: str, body: object = None, key: str | None = None) -> Answer:
        return await self.post(f"/api/v1/holds/{hold_id}/void", body, key)

    async def get(self, path: str, **params: str) -> Body:
        response = await self.client.get(path, params=params)
        assert response.status == 200, await response.text()
        answer: Body = await response.json()
        return answer

    async def refused(self, path: str, **params: str) -> tuple[int, str]:
        response = await self.client.get(path, params=params)
        return response.status, (await response.json())["code"]

    async def money(self, wallet_id: str) -> tuple[str, str, str]:
        """The wallet's balance, heldBalance and availableBalance, as the API shows them."""
        wallet = await self.get(f"/api/v1/wallets/{wallet_id}")
        return wallet["balance"], wallet["heldBalance"], wallet["availableBalance"]

    async def fetch(self, query: str, *arguments: object) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.url)
        try:
            return list(await connection.fetch(query, *arguments))
        finally:
            await connection.close()

    async def hold_row(self, hold_id: str) -> asyncpg.Record:
        rows = await self.fetch("SELECT * FROM holds WHERE id = $1", uuid.UUID(hold_id))
        return rows[0]

    async def written(self) -> tuple[int, ...]:
        """How many rows each table a change writes holds, and every wallet's sums."""
        rows = await self.fetch(
            "SELECT (SELECT count(*) FROM operations), (SELECT count(*) FROM transfers),"
            " (SELECT count(*) FROM holds), (SELECT count(*) FROM idempotency_keys),"
            " (SELECT string_agg(status, ',' ORDER BY id) FROM holds),"
            " (SELECT coalesce(sum(balance), 0) FROM wallets),"
            " (SELECT coalesce(sum(held), 0) FROM wallets),"
            " (SELECT coalesce(sum(version), 0) FROM wallets)"
        )
        return tuple(rows[0])

    async def entries(self, wallet_id: str) -> list[Body]:
        items: list[Body] = (await self.get(f"/api/v1/wallets/{wallet_id}/operations"))["items"]
        return items

    async def assert_audit_clean(self) -> None:
        report = await audit(self.url)
        assert report.clean, "\n".join(summary(report))


@pytest.fixture
def group_commit() -> bool:
    """The write path of a test that does not ask for both: the default, batched."""
    return True


@pytest.fixture
async def service(migrated_url: str, make_client: AppFactory, group_commit: bool) -> Service:
    """The app (its cache on) on a database of its own, made before the app so dropped after."""
    client = await make_client(database_url=migrated_url, group_commit=group_commit)
    return Service(client, migrated_url)


def problem(answer: Answer) -> tuple[int, str | None]:
    return answer[0], answer[1].get("code")


def fields(answer: Answer) -> list[str]:
    return [error["field"] for error in answer[1].get("errors", [])]


# Placing


async def test_a_hold_reserves_its_amount_and_writes_no_entry(service: Service) -> None:
    wallet_id = await service.wallet("100.00")
    metadata = {"cart": "c-1", "channel": "web"}

    status, hold, headers = await service.hold(
        wallet_id, "30.00", reference="order-7", metadata=metadata
    )

    assert status == 201, hold
    assert headers["Location"] == f"/api/v1/holds/{hold['id']}"
    assert "Idempotent-Replayed" not in headers
    assert set(hold) == HOLD_FIELDS
    assert {k: hold[k] for k in ("walletId", "toWalletId", "currency", "amount")} == {
        "walletId": wallet_id,
        "toWalletId": None,
        "currency": "USD",
        "amount": "30.00",
    }
    assert (hold["status"], hold["capturedAmount"]) == ("HELD", None)
    assert (hold["reference"], hold["metadata"]) == ("order-7", metadata)
    assert hold["updatedAt"] == hold["createdAt"]
    assert moment(hold["expiresAt"]) - moment(hold["createdAt"]) == timedelta(seconds=SEVEN_DAYS)
    assert await service.get(headers["Location"]) == hold
    assert await service.money(wallet_id) == ("100.00", "30.00", "70.00")

    second = await service.placed(wallet_id, 20)

    assert second["amount"] == "20.00"
    assert (second["reference"], second["metadata"]) == (None, {})
    assert await service.money(wallet_id) == ("100.00", "50.00", "50.00")
    assert [e["operationType"] for e in await service.entries(wallet_id)] == ["DEPOSIT"]
    rows = await service.fetch(
        "SELECT balance, held FROM wallets WHERE id = $1", uuid.UUID(wallet_id)
    )
    assert (rows[0]["balance"], rows[0]["held"]) == (10000, 5000)
    await service.assert_audit_clean()


async def test_a_hold_needs_the_available_balance(service: Service) -> None:
    wallet_id = await service.wallet("10.00")
    await service.placed(wallet_id, "6.00")
    before = await service.written()

    refused = await service.hold(wallet_id, "4.01")

    assert problem(refused) == (400, "INSUFFICIENT_FUNDS")
    assert "4.00 " in refused[1]["detail"], refused[1]  # what is available
    assert refused[1]["detail"].endswith("4.01"), refused[1]
    assert await service.written() == before
    assert await service.money(wallet_id) == ("10.00", "6.00", "4.00")

    await service.placed(wallet_id, "4.00")  # exactly what is available

    assert await service.money(wallet_id) == ("10.00", "10.00", "0.00")
    assert problem(await service.hold(wallet_id, "0.01")) == (400, "INSUFFICIENT_FUNDS")
    await service.assert_audit_clean()


async def test_a_payee_is_checked_as_for_transfers(service: Service) -> None:
    payer = await service.wallet("10.00")
    euros = await service.wallet("10.00", currency="EUR")
    yen = await service.wallet("1000", currency="JPY")
    nobody = str(uuid.uuid4())
    before = await service.written()

    cases: list[tuple[str, Body, int, str, str]] = [
        (payer, {"amount": "1.00", "toWalletId": nobody}, 404, "WALLET_NOT_FOUND", nobody),
        (nobody, {"amount": "1.00"}, 404, "WALLET_NOT_FOUND", nobody),
        (nobody, {"amount": "1.00", "toWalletId": euros}, 404, "WALLET_NOT_FOUND", nobody),
        (payer, {"amount": "99.00", "toWalletId": nobody}, 404, "WALLET_NOT_FOUND", nobody),
        (payer, {"amount": "1.00", "toWalletId": euros}, 400, "CURRENCY_MISMATCH", "EUR"),
        (euros, {"amount": "1.00", "toWalletId": payer}, 400, "CURRENCY_MISMATCH", "USD"),
        (payer, {"amount": "99.00", "toWalletId": euros}, 400, "CURRENCY_MISMATCH", "EUR"),
        (payer, {"amount": "1.00", "toWalletId": payer}, 400, "VALIDATION_ERROR", "toWalletId"),
        (payer, {"amount": "1.00", "toWalletId": payer.upper()}, 400, "VALIDATION_ERROR", ""),
        (payer, {"amount": "1.00", "toWalletId": "nobody"}, 400, "VALIDATION_ERROR", ""),
        (payer, {"amount": "1.00", "toWalletId": 7}, 400, "VALIDATION_ERROR", ""),
        (yen, {"amount": "1.5"}, 400, "VALIDATION_ERROR", "amount"),
        (payer, {"amount": "1.001"}, 400, "VALIDATION_ERROR", "amount"),
        (nobody, {"amount": "1.0001"}, 400, "VALIDATION_ERROR", "amount"),  # before the wallet
        (payer, {"amount": "0"}, 400, "VALIDATION_ERROR", "amount"),
        (payer, {"amount": "-1.00"}, 400, "VALIDATION_ERROR", "amount"),
        (payer, {}, 400, "VALIDATION_ERROR", "amount"),
        (payer, {"amount": "1.00", "ammount": "1"}, 400, "VALIDATION_ERROR", "ammount"),
    ]
    for wallet_id, body, status, code, named in cases:
        answer = await service.post(f"/api/v1/wallets/{wallet_id}/holds", body)

        assert problem(answer) == (status, code), (wallet_id, body, answer[1])
        assert named in answer[1]["detail"], answer[1]
        if code == "VALIDATION_ERROR":
            assert fields(answer), answer[1]
    same_wallet = await service.hold(payer, "1.00", toWalletId=payer)
    assert fields(same_wallet) == ["toWalletId"], same_wallet[1]
    malformed = await service.post("/api/v1/wallets/not-a-wallet/holds", {"amount": "1.00"})
    assert problem(malformed) == (400, "VALIDATION_ERROR")
    assert await service.written() == before

    # Optional fields sent as null are absent; a payee of the currency is taken.
    payee = await service.wallet()
    hold = await service.placed(
        payer, "1.00", toWalletId=None, expiresIn=None, reference=None, metadata=None
    )
    to_payee = await service.placed(payer, "2.00", toWalletId=payee.upper())
    assert (hold["toWalletId"], hold["reference"], hold["metadata"]) == (None, None, {})
    assert moment(hold["expiresAt"]) - moment(hold["createdAt"]) == timedelta(seconds=SEVEN_DAYS)
    assert to_payee["toWalletId"] == payee
    assert (await service.placed(yen, "7"))["amount"] == "7"
    await service.assert_audit_clean()


@pytest.mark.parametrize("seconds", [1, 60, THIRTY_DAYS])
async def test_expires_in_sets_the_expiry_in_whole_seconds(service: Service, seconds: int) -> None:
    wallet_id = await service.wallet("1.00")

    hold = await service.placed(wallet_id, "1.00", expiresIn=seconds)

    assert moment(hold["expiresAt"]) - moment(hold["createdAt"]) == timedelta(seconds=seconds)


async def test_expires_in_outside_1_to_30_days_or_not_an_integer_is_refused(
    service: Service,
) -> None:
    wallet_id = await service.wallet("1.00")
    before = await service.written()

    for expires_in in [0, -1, THIRTY_DAYS + 1, 10**30, 1.5, "60", "1", True, [60], {"s": 60}]:
        answer = await service.hold(wallet_id, "1.00", expiresIn=expires_in)

        assert problem(answer) == (400, "VALIDATION_ERROR"), (expires_in, answer[1])
        assert fields(answer) == ["expiresIn"], (expires_in, answer[1])
    assert await service.written() == before


# Reading and listing


async def test_holds_are_read_and_listed_newest_first_by_status(service: Service) -> None:
    wallet_id = await service.wallet("100.00")
    payee = await service.wallet()
    holds = [
        await service.placed(wallet_id, "1.00"),
        await service.placed(wallet_id, "2.00", toWalletId=payee),
        await service.placed(wallet_id, "3.00"),
        await service.placed(wallet_id, "4.00", expiresIn=1),
        await service.placed(wallet_id, "5.00"),
    ]
    ids = [hold["id"] for hold in holds]
    assert (await service.capture(ids[1], {"amount": "1.50"}))[0] == 200
    assert (await service.void(ids[2]))[0] == 200
    await until_past(holds[3]["expiresAt"])
    path = f"/api/v1/wallets/{wallet_id}/holds"

    listed = await service.get(path)

    newest_first = ids[::-1]
    assert [h["id"] for h in listed["items"]] == newest_first
    assert [h["status"] for h in listed["items"]] == [
        "HELD",
        "EXPIRED",
        "VOIDED",
        "CAPTURED",
        "HELD",
    ]
    assert listed["nextCursor"] is None
    for item in listed["items"]:
        assert await service.get(f"/api/v1/holds/{item['id']}") == item
    assert await service.money(wallet_id) == ("98.50", "6.00", "92.50")

    seen: list[str] = []
    page = await service.get(path, limit="2")
    pages = 1
    while True:
        assert len(page["items"]) <= 2
        seen += [h["id"] for h in page["items"]]
        if page["nextCursor"] is None:
            break
        page = await service.get(path, limit="2", cursor=page["nextCursor"])
        pages += 1
    assert (seen, pages) == (newest_first, 3)

    for status, expected in [
        ("HELD", [ids[4], ids[0]]),
        ("EXPIRED", [ids[3]]),
        ("VOIDED", [ids[2]]),
        ("CAPTURED", [ids[1]]),
    ]:
        found = await service.get(path, status=status)
        assert [h["id"] for h in found["items"]] == expected, status
        assert {h["status"] for h in found["items"]} == {status}
    first = await service.get(path, status="HELD", limit="1")
    assert [h["id"] for h in first["items"]] == [ids[4]]
    rest = await service.get(path, status="HELD", limit="1", cursor=first["nextCursor"])
    assert ([h["id"] for h in rest["items"]], rest["nextCursor"]) == ([ids[0]], None)

    unfiltered_cursor = (await service.get(path, limit="1"))["nextCursor"]
    assert await service.refused(path, status="HELD", cursor=unfiltered_cursor) == (
        400,
        "VALIDATION_ERROR",
    )
    for params in [{"status": "held"}, {"status": "OPEN"}, {"limit": "0"}, {"cursor": "x"}]:
        assert await service.refused(path, **params) == (400, "VALIDATION_ERROR"), params
    twice = await service.client.get(f"{path}?status=HELD&status=VOIDED")
    assert (twice.status, (await twice.json())["code"]) == (400, "VALIDATION_ERROR")

    none_yet = await service.get(f"/api/v1/wallets/{payee}/holds")
    assert none_yet == {"items": [], "nextCursor": None}
    nobody = str(uuid.uuid4())
    assert await service.refused(f"/api/v1/wallets/{nobody}/holds") == (404, "WALLET_NOT_FOUND")
    assert await service.refused(f"/api/v1/wallets/{nobody}/holds", status="HELD") == (
        404,
        "WALLET_NOT_FOUND",
    )
    assert await service.refused("/api/v1/wallets/nope/holds") == (400, "VALIDATION_ERROR")


async def test_unknown_and_malformed_hold_ids(service: Service) -> None:
    nobody = str(uuid.uuid4())

    assert await service.refused(f"/api/v1/holds/{nobody}") == (404, "HOLD_NOT_FOUND")
    assert problem(await service.capture(nobody)) == (404, "HOLD_NOT_FOUND")
    assert problem(await service.void(nobody)) == (404, "HOLD_NOT_FOUND")
    for malformed in ["not-a-uuid", "1234", nobody + "0", nobody.replace("-", "")]:
        assert await service.refused(f"/api/v1/holds/{malformed}") == (400, "VALIDATION_ERROR")
        assert problem(await service.capture(malformed)) == (400, "VALIDATION_ERROR")
        assert problem(await service.void(malformed)) == (400, "VALIDATION_ERROR")


# Capturing and voiding


async def test_a_whole_capture_is_one_withdrawal_naming_the_hold(service: Service) -> None:
    wallet_id = await service.wallet("50.00")
    hold = await service.placed(wallet_id, "20.00", reference="order-9")
    version = await service.fetch("SELECT version FROM wallets WHERE id = $1", uuid.UUID(wallet_id))

    status, captured, _ = await service.capture(hold["id"])

    assert status == 200, captured
    assert set(captured) == {"hold", "operations"}
    settled = captured["hold"]
    assert (settled["id"], settled["status"], settled["capturedAmount"]) == (
        hold["id"],
        "CAPTURED",
        "20.00",
    )
    assert (settled["amount"], settled["createdAt"]) == ("20.00", hold["createdAt"])
    (entry,) = captured["operations"]
    assert {k: entry[k] for k in ("operationType", "walletId", "amount", "balanceAfter")} == {
        "operationType": "WITHDRAW",
        "walletId": wallet_id,
        "amount": "20.00",
        "balanceAfter": "30.00",
    }
    assert (entry["holdId"], entry["transferId"], entry["currency"]) == (hold["id"], None, "USD")
    assert settled["updatedAt"] == entry["createdAt"]
    assert await service.get(f"/api/v1/holds/{hold['id']}") == settled
    assert await service.money(wallet_id) == ("30.00", "0.00", "30.00")
    history = await service.entries(wallet_id)
    assert [e["operationType"] for e in history] == ["WITHDRAW", "DEPOSIT"]
    assert history[0] == entry
    assert (await service.fetch("SELECT count(*) FROM transfers"))[0][0] == 0
    # The capture is counted by its entry: a hold placed, an entry written.
    after = await service.fetch("SELECT version FROM wallets WHERE id = $1", uuid.UUID(wallet_id))
    assert after[0][0] == version[0][0] + 1

    again = await service.capture(hold["id"])
    voided = await service.void(hold["id"])
    for answer in (again, voided):
        assert problem(answer) == (409, "HOLD_NOT_ACTIVE"), answer[1]
        assert "CAPTURED" in answer[1]["detail"]
    assert await service.money(wallet_id) == ("30.00", "0.00", "30.00")

    # An empty object, or an amount sent as null, takes the whole hold too.
    for body in ({}, {"amount": None}):
        other = await service.placed(wallet_id, "5.00")
        status, taken, _ = await service.capture(other["id"], body)
        assert (status, taken["hold"]["capturedAmount"]) == (200, "5.00"), body
    assert await service.money(wallet_id) == ("20.00", "0.00", "20.00")
    await service.assert_audit_clean()


async def test_a_part_capture_to_a_payee_is_a_transfer_and_releases_the_rest(
    service: Service,
) -> None:
    payer = await service.wallet("100.00")
    payee = await service.wallet("5.00")
    other = await service.placed(payer, "10.00")
    hold = await service.placed(payer, "40.00", toWalletId=payee, metadata={"k": "v"})
    assert await service.money(payer) == ("100.00", "50.00", "50.00")

    status, captured, _ = await service.capture(hold["id"], {"amount": "25.50"})

    assert status == 200, captured
    settled = captured["hold"]
    assert (settled["status"], settled["amount"], settled["capturedAmount"]) == (
        "CAPTURED",
        "40.00",
        "25.50",
    )
    assert settled["toWalletId"] == payee
    out, into = captured["operations"]
    assert (out["operationType"], out["walletId"], out["balanceAfter"]) == (
        "TRANSFER_OUT",
        payer,
        "74.50",
    )
    assert (into["operationType"], into["walletId"], into["balanceAfter"]) == (
        "TRANSFER_IN",
        payee,
        "30.50",
    )
    transfer_id = out["transferId"]
    assert transfer_id is not None
    for entry in (out, into):
        assert (entry["holdId"], entry["transferId"], entry["amount"]) == (
            hold["id"],
            transfer_id,
            "25.50",
        )
    transfer = await service.get(f"/api/v1/transfers/{transfer_id}")
    assert {k: transfer[k] for k in ("fromWalletId", "toWalletId", "amount", "holdId")} == {
        "fromWalletId": payer,
        "toWalletId": payee,
        "amount": "25.50",
        "holdId": hold["id"],
    }
    assert transfer["operations"] == [out, into]
    # The rest (14.50) is released; the other hold still reserves its 10.00.
    assert await service.money(payer) == ("74.50", "10.00", "64.50")
    assert await service.money(payee) == ("30.50", "0.00", "30.50")
    assert (await service.entries(payee))[0] == into
    assert (await service.entries(payer))[0] == out
    assert (await service.get(f"/api/v1/holds/{other['id']}"))["status"] == "HELD"
    await service.assert_audit_clean()


async def test_a_capture_takes_at_most_the_hold_in_its_currency_digits(service: Service) -> None:
    dollars = await service.wallet("50.00")
    dinars = await service.wallet("5.000", currency="BHD")
    yen = await service.wallet("500", currency="JPY")
    usd = await service.placed(dollars, "10.00")
    bhd = await service.placed(dinars, "1.500")
    jpy = await service.placed(yen, "100")
    before = await service.written()

    for hold_id, body in [
        (usd["id"], {"amount": "10.01"}),
        (usd["id"], {"amount": 11}),
        (usd["id"], {"amount": "0.001"}),
        (usd["id"], {"amount": "0"}),
        (usd["id"], {"amount": "1.00", "to": "x"}),
        (usd["id"], {"amount": "abc"}),
        (usd["id"], []),
        (bhd["id"], {"amount": "1.501"}),
        (bhd["id"], {"amount": "0.0001"}),
        (jpy["id"], {"amount": "1.5"}),
        (jpy["id"], {"amount": "101"}),
    ]:
        answer = await service.capture(hold_id, body)
        assert problem(answer) == (400, "VALIDATION_ERROR"), (body, answer[1])
    assert await service.written() == before
    for hold in (usd, bhd, jpy):
        assert (await service.get(f"/api/v1/holds/{hold['id']}"))["status"] == "HELD"

    status, captured, _ = await service.capture(bhd["id"], {"amount": "0.125"})
    assert (status, captured["operations"][0]["amount"]) == (200, "0.125")
    assert await service.money(dinars) == ("4.875", "0.000", "4.875")
    status, captured, _ = await service.capture(jpy["id"], {"amount": 100})
    assert (status, captured["hold"]["capturedAmount"]) == (200, "100")
    assert await service.money(yen) == ("400", "0", "400")
    await service.assert_audit_clean()


async def test_a_payee_past_its_maximum_refuses_the_capture_in_the_contract_order(
    service: Service,
) -> None:
    payer = await service.wallet("20.00")
    full = await service.wallet("0.01")
    await service.fetch(
        "UPDATE wallets SET balance = $2 WHERE id = $1", uuid.UUID(full), MAXIMUM - 100
    )
    hold = await service.placed(payer, "5.00", toWalletId=full)
    captured_already = await service.placed(payer, "1.00")
    voided_already = await service.placed(payer, "1.00")
    assert (await service.capture(captured_already["id"]))[0] == 200
    assert (await service.void(voided_already["id"]))[0] == 200
    before = await service.written()

    # An unknown hold first, then one not held, then the amount, then the payee's maximum.
    orders: list[tuple[str, Body | None, int, str, str]] = [
        (str(uuid.uuid4()), {"amount": "1.001"}, 404, "HOLD_NOT_FOUND", ""),
        (captured_already["id"], {"amount": "1.001"}, 409, "HOLD_NOT_ACTIVE", "CAPTURED"),
        (voided_already["id"], {"amount": "99.00"}, 409, "HOLD_NOT_ACTIVE", "VOIDED"),
        (hold["id"], {"amount": "5.01"}, 400, "VALIDATION_ERROR", "amount"),
        (hold["id"], {"amount": "1.001"}, 400, "VALIDATION_ERROR", "amount"),
        (hold["id"], None, 400, "BALANCE_LIMIT_EXCEEDED", ""),
        (hold["id"], {"amount": "1.01"}, 400, "BALANCE_LIMIT_EXCEEDED", ""),
    ]
    for hold_id, body, status, code, named in orders:
        answer = await service.capture(hold_id, body)
        assert problem(answer) == (status, code), (hold_id, body, answer[1])
        assert named in answer[1]["detail"], answer[1]
    assert await service.written() == before
    assert (await service.get(f"/api/v1/holds/{hold['id']}"))["status"] == "HELD"
    assert await service.money(payer) == ("19.00", "5.00", "14.00")

    # Exactly to the maximum is fine.
    status, captured, _ = await service.capture(hold["id"], {"amount": "1.00"})
    assert (status, captured["hold"]["status"]) == (200, "CAPTURED"), captured
    assert cents((await service.money(full))[0]) == MAXIMUM
    assert await service.money(payer) == ("18.00", "0.00", "18.00")


async def test_a_void_releases_the_whole_hold(service: Service) -> None:
    payer = await service.wallet("10.00")
    payee = await service.wallet()
    hold = await service.placed(payer, "7.00", toWalletId=payee)
    entries = len(await service.entries(payer))

    refused = await service.void(hold["id"], {"amount": "1.00"})
    status, voided, headers = await service.void(hold["id"])

    assert problem(refused) == (400, "VALIDATION_ERROR")
    assert status == 200, voided
    assert "Idempotent-Replayed" not in headers
    assert set(voided) == HOLD_FIELDS
    assert (voided["id"], voided["status"], voided["capturedAmount"]) == (
        hold["id"],
        "VOIDED",
        None,
    )
    assert voided["createdAt"] == hold["createdAt"]
    assert moment(voided["updatedAt"]) > moment(voided["createdAt"])
    assert await service.get(f"/api/v1/holds/{hold['id']}") == voided
    assert await service.money(payer) == ("10.00", "0.00", "10.00")
    assert await service.money(payee) == ("0.00", "0.00", "0.00")
    assert len(await service.entries(payer)) == entries
    assert await service.entries(payee) == []
    for answer in (await service.void(hold["id"]), await service.capture(hold["id"])):
        assert problem(answer) == (409, "HOLD_NOT_ACTIVE"), answer[1]
        assert "VOIDED" in answer[1]["detail"]

    other = await service.placed(payer, "10.00")
    assert (await service.void(other["id"], {}))[0] == 200
    assert await service.money(payer) == ("10.00", "0.00", "10.00")
    await service.assert_audit_clean()


# Expiry


@BOTH_WRITE_PATHS
async def test_a_hold_expires_at_its_moment_for_every_reader(
    migrated_url: str, make_client: AppFactory, group_commit: bool
) -> None:
    """With the cache on and the job not due for a minute: the hold reads EXPIRED, and its
    amount is available, from the database's moment on, marked or not."""
    client = await make_client(
        database_url=migrated_url, group_commit=group_commit, hold_expiry_interval=60
    )
    service = Service(client, migrated_url)
    wallet_id = await service.wallet("10.00")
    hold = await service.placed(wallet_id, "6.00", expiresIn=1)
    assert moment(hold["expiresAt"]) - moment(hold["createdAt"]) == timedelta(seconds=1)
    assert await service.money(wallet_id) == ("10.00", "6.00", "4.00")  # read, and cached
    assert problem(await service.operate(wallet_id, "WITHDRAW", "4.01")) == (
        400,
        "INSUFFICIENT_FUNDS",
    )

    await until_past(hold["expiresAt"])

    assert await service.money(wallet_id) == ("10.00", "0.00", "10.00")
    expired = await service.get(f"/api/v1/holds/{hold['id']}")
    assert (expired["status"], expired["updatedAt"]) == ("EXPIRED", hold["expiresAt"])
    assert expired["capturedAmount"] is None
    listed = await service.get(f"/api/v1/wallets/{wallet_id}/holds", status="EXPIRED")
    assert listed["items"] == [expired]
    held = await service.get(f"/api/v1/wallets/{wallet_id}/holds", status="HELD")
    assert held["items"] == []
    assert (await service.hold_row(hold["id"]))["status"] == "HELD"  # not marked yet
    for answer in (await service.capture(hold["id"]), await service.void(hold["id"])):
        assert problem(answer) == (409, "HOLD_NOT_ACTIVE"), answer[1]
        assert "EXPIRED" in answer[1]["detail"]

    # Its amount is available to a new hold and to a withdrawal alike.
    again = await service.placed(wallet_id, "10.00")
    assert (await service.void(again["id"]))[0] == 200
    status, applied, _ = await service.operate(wallet_id, "WITHDRAW", "10.00")
    assert (status, applied.get("balance")) == (200, "0.00"), applied
    assert await service.money(wallet_id) == ("0.00", "0.00", "0.00")
    assert (await service.hold_row(hold["id"]))["status"] == "HELD"
    await service.assert_audit_clean()


async def test_the_job_marks_expired_holds_as_of_their_expiry(
    migrated_url: str, make_client: AppFactory
) -> None:
    client = await make_client(database_url=migrated_url, hold_expiry_interval=0.2)
    service = Service(client, migrated_url)
    wallet_id = await service.wallet("10.00")
    short = await service.placed(wallet_id, "3.00", expiresIn=1)
    long = await service.placed(wallet_id, "2.00")
    voided = await service.placed(wallet_id, "1.00", expiresIn=1)
    assert (await service.void(voided["id"]))[0] == 200
    assert (await service.hold_row(short["id"]))["status"] == "HELD"

    await until_past(short["expiresAt"], margin=0)
    deadline = time.monotonic() + 3
    while (row := await service.hold_row(short["id"]))["status"] == "HELD":
        assert time.monotonic() < deadline, "the job did not mark the hold within 2 s"
        await asyncio.sleep(0.05)

    assert row["status"] == "EXPIRED"
    assert row["updated_at"] == row["expires_at"] == moment(short["expiresAt"])
    assert row["captured_amount"] is None
    assert (await service.hold_row(long["id"]))["status"] == "HELD"
    assert (await service.hold_row(voided["id"]))["status"] == "VOIDED"
    wallets = await service.fetch(
        "SELECT balance, held, version FROM wallets WHERE id = $1", uuid.UUID(wallet_id)
    )
    # One deposit, three holds placed, one voided, one marked expired.
    assert tuple(wallets[0]) == (1000, 200, 6)
    assert await service.money(wallet_id) == ("10.00", "2.00", "8.00")
    assert (await service.get(f"/api/v1/holds/{short['id']}"))["updatedAt"] == short["expiresAt"]
    await service.assert_audit_clean()


# Withdrawals, transfers and deposits beside holds


@BOTH_WRITE_PATHS
async def test_withdrawals_and_transfers_out_need_the_available_balance(
    service: Service,
) -> None:
    wallet_id = await service.wallet("10.00")
    payee = await service.wallet()
    hold = await service.placed(wallet_id, "6.00")
    before = await service.written()

    withdrawal = await service.operate(wallet_id, "WITHDRAW", "4.01")
    transfer = await service.transfer(wallet_id, payee, "4.01")

    for answer in (withdrawal, transfer):
        assert problem(answer) == (400, "INSUFFICIENT_FUNDS"), answer[1]
        assert "4.00" in answer[1]["detail"], answer[1]
    assert await service.written() == before

    assert (await service.operate(wallet_id, "WITHDRAW", "2.00"))[0] == 200
    assert (await service.transfer(wallet_id, payee, "2.00"))[0] == 201
    assert await service.money(wallet_id) == ("6.00", "6.00", "0.00")
    before = await service.written()
    many = await asyncio.gather(
        *(service.operate(wallet_id, "WITHDRAW", "0.01") for _ in range(10)),
        *(service.transfer(wallet_id, payee, "0.01") for _ in range(10)),
    )
    assert Counter(problem(answer) for answer in many) == {(400, "INSUFFICIENT_FUNDS"): 20}
    assert await service.written() == before

    status, captured, _ = await service.capture(hold["id"])
    assert (status, captured["operations"][0]["balanceAfter"]) == (200, "0.00")
    assert await service.money(wallet_id) == ("0.00", "0.00", "0.00")
    await service.assert_audit_clean()


@BOTH_WRITE_PATHS
async def test_deposits_and_incoming_transfers_ignore_holds(service: Service) -> None:
    wallet_id = await service.wallet("10.00")
    payer = await service.wallet("5.00")
    await service.placed(wallet_id, "10.00")
    await service.placed(payer, "2.00", toWalletId=wallet_id)  # a hold that would pay it

    deposited = await service.operate(wallet_id, "DEPOSIT", "5.00")
    paid = await service.transfer(payer, wallet_id, "3.00")

    assert (deposited[0], deposited[1]["balance"]) == (200, "15.00")
    assert paid[0] == 201, paid[1]
    assert await service.money(wallet_id) == ("18.00", "10.00", "8.00")
    assert await service.money(payer) == ("2.00", "2.00", "0.00")
    await service.assert_audit_clean()


async def test_balance_at_is_the_ledger_whatever_is_held(service: Service) -> None:
    wallet_id = await service.wallet("10.00")
    kept = await service.placed(wallet_id, "4.00")
    taken = await service.placed(wallet_id, "3.00")
    path = f"/api/v1/wallets/{wallet_id}/balance"

    assert (await service.get(path))["balance"] == "10.00"
    assert (await service.get(path, at=datetime.now(UTC).isoformat()))["balance"] == "10.00"

    status, captured, _ = await service.capture(taken["id"], {"amount": "2.00"})
    assert status == 200
    assert (await service.void(kept["id"]))[0] == 200
    at_capture = captured["operations"][0]["createdAt"]
    just_before = moment(at_capture) - timedelta(microseconds=1)

    assert (await service.get(path, at=at_capture))["balance"] == "8.00"
    assert (await service.get(path, at=just_before.isoformat()))["balance"] == "10.00"
    assert (await service.get(path))["balance"] == "8.00"
    await service.placed(wallet_id, "8.00")
    assert (await service.get(path))["balance"] == "8.00"
    assert (await service.get(path, at=datetime.now(UTC).isoformat()))["balance"] == "8.00"


# Idempotency


async def test_a_key_replays_a_hold_as_placed_even_once_captured(service: Service) -> None:
    payer = await service.wallet("20.00")
    payee = await service.wallet()
    key = f"hold-{uuid.uuid4()}"

    first = await service.hold(payer, "5.00", key, toWalletId=payee, reference="r")
    again = await service.hold(payer, 5, key, reference="r", toWalletId=payee)
    other = await service.hold(payer, "5.01", key, toWalletId=payee, reference="r")
    elsewhere = await service.post(
        f"/api/v1/wallets/{payee}/holds", {"amount": "5.00", "toWalletId": payer}, key
    )

    assert first[0] == 201, first[1]
    assert (again[0], again[1], again[2].get("Idempotent-Replayed")) == (201, first[1], "true")
    assert again[2]["Location"] == first[2]["Location"]
    for answer in (other, elsewhere):
        assert problem(answer) == (422, "IDEMPOTENCY_KEY_REUSED"), answer[1]
    assert len(await service.fetch("SELECT id FROM holds")) == 1
    assert await service.money(payer) == ("20.00", "5.00", "15.00")

    assert (await service.capture(first[1]["id"], {"amount": "2.00"}))[0] == 200
    after_capture = await service.hold(payer, "5.00", key, toWalletId=payee, reference="r")

    assert (after_capture[0], after_capture[1]) == (201, first[1])
    assert after_capture[1]["status"] == "HELD"
    assert after_capture[2].get("Idempotent-Replayed") == "true"
    assert len(await service.fetch("SELECT id FROM holds")) == 1
    assert await service.money(payer) == ("18.00", "0.00", "18.00")
    await service.assert_audit_clean()


async def test_a_key_replays_a_capture_and_a_void(service: Service) -> None:
    payer = await service.wallet("20.00")
    payee = await service.wallet()
    to_capture = await service.placed(payer, "6.00", toWalletId=payee)
    to_void = await service.placed(payer, "4.00")
    capture_key, void_key = f"capture-{uuid.uuid4()}", f"void-{uuid.uuid4()}"

    captured = await service.capture(to_capture["id"], {"amount": "3.00"}, capture_key)
    replayed = await service.capture(to_capture["id"], {"amount": "3"}, capture_key)
    all_of_it = await service.capture(to_capture["id"], None, capture_key)
    more = await service.capture(to_capture["id"], {"amount": "2.00"}, capture_key)
    voided = await service.void(to_void["id"], None, void_key)
    void_replayed = await service.void(to_void["id"], {}, void_key)
    other_hold = await service.void(to_capture["id"], None, void_key)

    assert captured[0] == 200, captured[1]
    assert (replayed[0], replayed[1], replayed[2].get("Idempotent-Replayed")) == (
        200,
        captured[1],
        "true",
    )
    assert voided[0] == 200, voided[1]
    assert (void_replayed[0], void_replayed[1], void_replayed[2].get("Idempotent-Replayed")) == (
        200,
        voided[1],
        "true",
    )
    for answer in (all_of_it, more, other_hold):
        assert problem(answer) == (422, "IDEMPOTENCY_KEY_REUSED"), answer[1]
    assert (await service.fetch("SELECT count(*) FROM operations WHERE hold_id IS NOT NULL"))[0][
        0
    ] == 2
    assert await service.money(payer) == ("17.00", "0.00", "17.00")
    assert await service.money(payee) == ("3.00", "0.00", "3.00")
    # Without the key, a second capture is what it is: the hold is no longer held.
    assert problem(await service.capture(to_capture["id"], {"amount": "3.00"})) == (
        409,
        "HOLD_NOT_ACTIVE",
    )
    await service.assert_audit_clean()


async def test_a_key_replays_a_recorded_refusal_after_the_money_came(service: Service) -> None:
    payer = await service.wallet("10.00")
    full = await service.wallet("0.01")
    await service.fetch(
        "UPDATE wallets SET balance = $2 WHERE id = $1", uuid.UUID(full), MAXIMUM - 100
    )
    hold_key, capture_key = f"short-{uuid.uuid4()}", f"limit-{uuid.uuid4()}"
    to_full = await service.placed(payer, "5.00", toWalletId=full)

    short = await service.hold(payer, "6.00", hold_key)
    limited = await service.capture(to_full["id"], None, capture_key)
    assert problem(short) == (400, "INSUFFICIENT_FUNDS")
    assert problem(limited) == (400, "BALANCE_LIMIT_EXCEEDED")

    assert (await service.operate(payer, "DEPOSIT", "100.00"))[0] == 200
    assert (await service.operate(full, "WITHDRAW", "50.00"))[0] == 200
    short_again = await service.hold(payer, "6.00", hold_key)
    limited_again = await service.capture(to_full["id"], None, capture_key)

    assert (short_again[0], short_again[1]) == (400, short[1])
    assert (limited_again[0], limited_again[1]) == (400, limited[1])
    for answer in (short_again, limited_again):
        assert answer[2].get("Idempotent-Replayed") == "true"
    assert len(await service.fetch("SELECT id FROM holds")) == 1
    assert (await service.get(f"/api/v1/holds/{to_full['id']}"))["status"] == "HELD"
    assert await service.money(payer) == ("110.00", "5.00", "105.00")
    # Without the key they are judged again, now.
    assert (await service.hold(payer, "6.00"))[0] == 201
    assert (await service.capture(to_full["id"]))[0] == 200


# Concurrency


class ExpiryRaceBug(AssertionError):
    """A movement on a wallet whose hold expired while it was decided under the wallet's
    lock was answered 500 or 404 WALLET_NOT_FOUND (the batch left its run unsettled)."""


# The wrong answers of that race: the movement moved nothing, and said so wrongly.
EXPIRY_RACE_ANSWERS = {(500, "INTERNAL_ERROR"), (404, "WALLET_NOT_FOUND")}


@BOTH_WRITE_PATHS
async def test_movements_beside_holds_expiring_are_answered_rightly(
    migrated_url: str, make_client: AppFactory, group_commit: bool
) -> None:
    """Two hundred holds of a cent expire within about 0.2 s while deposits, withdrawals and
    transfers out of a cent each are sent on the wallet: each is applied (it has money to
    spare), and the wallet ends where they put it."""
    client = await make_client(
        database_url=migrated_url, group_commit=group_commit, hold_expiry_interval=60
    )
    service = Service(client, migrated_url)
    wallet_id = await service.wallet("1000.00")
    payee = await service.wallet()
    holds = await asyncio.gather(
        *(service.placed(wallet_id, "0.01", expiresIn=1) for _ in range(200))
    )
    expiries = sorted(hold["expiresAt"] for hold in holds)
    answers: list[tuple[str, Answer]] = []

    async def move(kind: str) -> None:
        if kind == "transfer":
            body = {"fromWalletId": wallet_id, "toWalletId": payee, "amount": "0.01"}
            answer = await service.post("/api/v1/transfers", body, allow_5xx=True)
        else:
            body = {"operationType": kind, "amount": "0.01"}
            path = f"/api/v1/wallets/{wallet_id}/operation"
            answer = await service.post(path, body, allow_5xx=True)
        answers.append((kind, answer))

    await until_past(expiries[0], margin=-0.02)
    while time.time() < moment(expiries[-1]).timestamp() + 0.02:
        await asyncio.gather(*(move(kind) for kind in ("DEPOSIT", "WITHDRAW", "transfer") * 2))

    wrong = Counter((kind, *problem(answer)) for kind, answer in answers if answer[0] >= 300)
    done = Counter(kind for kind, answer in answers if answer[0] < 300)
    expected = 1000_00 + done["DEPOSIT"] - done["WITHDRAW"] - done["transfer"]
    assert tuple(map(cents, await service.money(wallet_id))) == (expected, 0, expected)
    assert cents((await service.money(payee))[0]) == done["transfer"]
    await service.assert_audit_clean()
    assert set(wrong) <= {(kind, *bad) for kind, _ in answers for bad in EXPIRY_RACE_ANSWERS}
    if wrong:
        raise ExpiryRaceBug(f"wrong answers of {len(answers)}: {dict(wrong)}")


RACES = 200
ROUND = 20  # holds whose expiry is raced at once


async def test_capture_void_and_expiry_race_and_one_wins_at_most(
    migrated_url: str, make_client: AppFactory
) -> None:
    """Holds that expire in a second, each captured by one instance of the app and voided by
    another at once, around its expiry (both marking expired holds every 0.2 s beside them):
    never both, and when neither, the hold is EXPIRED; each wallet is left with its funding
    less what was captured, and nothing held."""
    instances = [
        Service(
            await make_client(database_url=migrated_url, hold_expiry_interval=0.2), migrated_url
        )
        for _ in range(2)
    ]
    service = instances[0]
    payers = list(await asyncio.gather(*(service.wallet("10.00") for _ in range(RACES))))
    payees = [await service.wallet() for _ in range(10)]
    rng = random.Random(20261205)

    async def race(n: int, hold: Body) -> tuple[int, int, Body]:
        capturer, voider = rng.sample(instances, 2)
        capture_first = rng.random() < 0.5
        # Sent from 40 ms before the hold's expiry to 20 ms after it.
        await until_past(hold["expiresAt"], margin=rng.uniform(-0.04, 0.02))
        sends = [capturer.capture(hold["id"]), voider.void(hold["id"])]
        answers = await asyncio.gather(*(sends if capture_first else sends[::-1]))
        capture, void = answers if capture_first else answers[::-1]
        final = await voider.get(f"/api/v1/holds/{hold['id']}")
        winner = {200: "CAPTURED"}.get(capture[0]) or {200: "VOIDED"}.get(void[0]) or "EXPIRED"
        assert not (capture[0] == 200 and void[0] == 200), (hold, capture[1], void[1])
        assert final["status"] == winner, (final, capture[1], void[1])
        for answer, won in ((capture, "CAPTURED"), (void, "VOIDED")):
            if answer[0] == 200:
                settled = answer[1]["hold"] if won == "CAPTURED" else answer[1]
                assert settled["status"] == won
            else:
                assert problem(answer) == (409, "HOLD_NOT_ACTIVE"), answer[1]
                assert winner in answer[1]["detail"] or "EXPIRED" in answer[1]["detail"]
        if winner == "EXPIRED":
            assert final["updatedAt"] == hold["expiresAt"]
        balance = "7.00" if winner == "CAPTURED" else "10.00"
        for instance in instances:  # each instance, its cache, sees the hold settled
            assert await instance.money(payers[n]) == (balance, "0.00", balance)
        return capture[0], void[0], final

    async def round_of(first: int) -> list[tuple[int, int, Body]]:
        numbers = range(first, min(first + ROUND, RACES))
        holds = await asyncio.gather(
            *(
                service.placed(
                    payers[n], "3.00", expiresIn=1, toWalletId=payees[n % 10] if n % 2 else None
                )
                for n in numbers
            )
        )
        return list(
            await asyncio.gather(*(race(n, h) for n, h in zip(numbers, holds, strict=True)))
        )

    rounds = []
    for first in range(0, RACES, ROUND):
        rounds.append(asyncio.create_task(round_of(first)))
        await asyncio.sleep(0.15)
    results = [result for done in await asyncio.gather(*rounds) for result in done]

    outcomes = Counter(final["status"] for _, _, final in results)
    assert sum(outcomes.values()) == RACES
    assert set(outcomes) <= {"CAPTURED", "VOIDED", "EXPIRED"}, outcomes
    # Sent around the expiry, the race goes every way.
    assert all(outcomes[status] > 0 for status in ("CAPTURED", "VOIDED", "EXPIRED")), outcomes

    captured_to = Counter(
        final["toWalletId"] for _, _, final in results if final["status"] == "CAPTURED"
    )
    for payee in payees:
        expected = f"{3 * captured_to[payee]}.00"
        assert await service.money(payee) == (expected, "0.00", expected)
    deadline = time.monotonic() + 3
    while (await service.fetch("SELECT count(*) FROM holds WHERE status = 'HELD'"))[0][0]:
        assert time.monotonic() < deadline, "the job left expired holds unmarked"
        await asyncio.sleep(0.05)
    marked = await service.fetch("SELECT status, count(*) FROM holds GROUP BY status")
    assert {row["status"]: row["count"] for row in marked} == dict(outcomes)
    assert (await service.fetch("SELECT sum(held) FROM wallets"))[0][0] == 0
    await service.assert_audit_clean()


HOT_FUNDING = 100_00  # cents


@BOTH_WRITE_PATHS
async def test_holds_beside_withdrawals_on_one_hot_wallet_never_overdraw_it(
    migrated_url: str, make_client: AppFactory, group_commit: bool
) -> None:
    """Holds placed, captured, voided and expiring beside withdrawals, transfers out and
    deposits, all on one wallet, through two instances of the app (each marking expired
    holds every 0.2 s): every read, through the API and in the tables, shows
    0 <= available <= balance and a held amount that is the sum of its HELD, unexpired holds;
    and at the end every cent is where the answers put it."""
    instances = [
        Service(
            await make_client(
                database_url=migrated_url, group_commit=group_commit, hold_expiry_interval=0.2
            ),
            migrated_url,
        )
        for _ in range(2)
    ]
    service, other = instances
    wallet_id = await service.wallet(f"{HOT_FUNDING / 100:.2f}")
    payee = await service.wallet()
    rng = random.Random(42)
    running = True
    api_reads = table_reads = 0
    short_expiries: list[str] = []
    wrong_answers: list[tuple[str, Body]] = []

    def money() -> str:
        return f"{rng.randint(1, 400) / 100:.2f}"

    async def place_and_settle(n: int) -> tuple[str, int, bool]:
        """A hold placed, then captured (in part), voided or left: what became of it, the
        cents it took, and whether they went to the payee."""
        await asyncio.sleep(rng.uniform(0, 1.5))
        amount, short, to_payee = money(), n % 3 == 0, n % 4 == 0
        extra: Body = {"expiresIn": 1 if short else 600}
        if to_payee:
            extra["toWalletId"] = payee
        status, hold, _ = await rng.choice(instances).hold(wallet_id, amount, **extra)
        if status != 201:
            assert problem((status, hold, {})) == (400, "INSUFFICIENT_FUNDS"), hold
            return "refused", 0, to_payee
        if short:
            short_expiries.append(hold["expiresAt"])
        await asyncio.sleep(rng.uniform(0, 0.3))
        choice = rng.choice(["capture", "void", "leave"])
        if choice == "leave":
            return choice, 0, to_payee
        instance = rng.choice(instances)
        if choice == "capture":
            part = f"{rng.randint(1, cents(amount)) / 100:.2f}"
            status, answer, _ = await instance.capture(hold["id"], {"amount": part})
        else:
            part = "0"
            status, answer, _ = await instance.void(hold["id"])
        if status == 200:
            return choice, cents(part), to_payee
        # Only a hold placed to expire in a second may have gone meanwhile.
        assert short, answer
        assert problem((status, answer, {})) == (409, "HOLD_NOT_ACTIVE"), answer
        assert "EXPIRED" in answer["detail"], answer
        return "expired", 0, to_payee

    async def move(n: int) -> tuple[str, int]:
        """A withdrawal, a transfer out or (one in five) a deposit: its kind and its cents."""
        await asyncio.sleep(rng.uniform(0, 1.8))
        amount, instance = money(), rng.choice(instances)
        kind = "deposit" if n % 5 == 0 else "transfer" if n % 2 else "withdrawal"
        if kind == "transfer":
            answer = await instance.post(
                "/api/v1/transfers",
                {"fromWalletId": wallet_id, "toWalletId": payee, "amount": amount},
                allow_5xx=True,
            )
        else:
            operation = {"deposit": "DEPOSIT", "withdrawal": "WITHDRAW"}[kind]
            body = {"operationType": operation, "amount": amount}
            path = f"/api/v1/wallets/{wallet_id}/operation"
            answer = await instance.post(path, body, allow_5xx=True)
        if answer[0] in (200, 201):
            return kind, cents(amount)
        if problem(answer) in EXPIRY_RACE_ANSWERS:
            wrong_answers.append((kind, answer[1]))
            return "wrongly answered", 0
        assert kind != "deposit", answer[1]
        assert problem(answer) == (400, "INSUFFICIENT_FUNDS"), answer[1]
        return "refused", 0

    async def read_api() -> None:
        nonlocal api_reads
        while running:
            for instance in instances:
                balance, held, available = map(cents, await instance.money(wallet_id))
                assert 0 <= available <= balance, (balance, held, available)
                assert held == balance - available
                api_reads += 1
            await asyncio.sleep(0.01)

    async def read_tables() -> None:
        nonlocal table_reads
        connection = await asyncpg.connect(service.url)
        try:
            while running:
                async with connection.transaction(isolation="repeatable_read", readonly=True):
                    row = await connection.fetchrow(
                        "WITH now AS (SELECT clock_timestamp() AS at)"
                        " SELECT w.balance, w.held,"
                        " (SELECT coalesce(sum(amount), 0) FROM holds h"
                        "   WHERE h.wallet_id = w.id AND h.status = 'HELD') AS marked,"
                        " (SELECT coalesce(sum(amount), 0) FROM holds h, now"
                        "   WHERE h.wallet_id = w.id AND h.status = 'HELD'"
                        "     AND h.expires_at > now.at) AS unexpired"
                        " FROM wallets w WHERE w.id = $1",
                        uuid.UUID(wallet_id),
                    )
                assert row is not None
                assert row["held"] == row["marked"], dict(row)
                assert 0 <= row["unexpired"] <= row["balance"], dict(row)
                table_reads += 1
                await asyncio.sleep(0.01)
        finally:
            await connection.close()

    readers = [asyncio.create_task(read_api()), asyncio.create_task(read_tables())]
    try:
        holds = asyncio.gather(*(place_and_settle(n) for n in range(150)))
        movements = asyncio.gather(*(move(n) for n in range(150)))
        settled, moved = await asyncio.gather(holds, movements)
    finally:
        running = False
        await asyncio.gather(*readers)

    kinds = Counter(kind for kind, _, _ in settled) + Counter(kind for kind, _ in moved)
    assert kinds["refused"] > 0, kinds  # it ran short of money
    assert min(kinds["capture"], kinds["void"], kinds["leave"]) > 0, kinds
    assert min(kinds["withdrawal"], kinds["transfer"], kinds["deposit"]) > 0, kinds
    assert min(api_reads, table_reads) > 20, (api_reads, table_reads)
    await until_past(max(short_expiries))  # no hold expires while the end is read
    paid = sum(c for kind, c in moved if kind == "transfer")
    paid += sum(c for kind, c, to_payee in settled if kind == "capture" and to_payee)
    balance = HOT_FUNDING + sum(c for kind, c in moved if kind == "deposit")
    balance -= sum(c for kind, c in moved if kind in ("withdrawal", "transfer"))
    balance -= sum(c for kind, c, _ in settled if kind == "capture")
    listed: list[Body] = []
    cursor: dict[str, str] = {}
    while True:
        page = await other.get(
            f"/api/v1/wallets/{wallet_id}/holds", status="HELD", limit="7", **cursor
        )
        listed += page["items"]
        if page["nextCursor"] is None:
            break
        cursor = {"cursor": page["nextCursor"]}
    rows = await service.fetch(
        "SELECT w.balance, w.held, (SELECT coalesce(sum(amount), 0) FROM holds"
        " WHERE wallet_id = w.id AND status = 'HELD' AND expires_at > clock_timestamp()) AS open"
        " FROM wallets w WHERE w.id = $1",
        uuid.UUID(wallet_id),
    )
    open_holds = sum(cents(hold["amount"]) for hold in listed)
    assert all(moment(hold["expiresAt"]) > datetime.now(UTC) for hold in listed)
    assert rows[0]["balance"] == balance >= open_holds == rows[0]["open"]
    for instance in instances:
        shown = tuple(map(cents, await instance.money(wallet_id)))
        assert shown == (balance, open_holds, balance - open_holds)
        assert tuple(map(cents, await instance.money(payee))) == (paid, 0, paid)
    await service.assert_audit_clean()
    if wrong_answers:  # every cent is where the right answers put it, but these were wrong
        raise ExpiryRaceBug(f"{len(wrong_answers)} wrong answers, e.g. {wrong_answers[0]}")


async def test_a_hold_past_its_expiry_and_not_yet_marked_ends_the_wallets_trust_at_once(
    migrated_url: str,
) -> None:
    """What a wallet reserves and until when are read with two clock readings; a hold that
    expires between them must not leave the wallet read as holding it with no end. So the
    moment returned is the earliest expiry of the holds still marked HELD, even one passed:
    a reader then goes back to the database until the job marks it."""
    connection = await asyncpg.connect(migrated_url)
    try:
        wallet_id = uuid.uuid4()
        await connection.execute(
            "INSERT INTO wallets (id, currency, minor_digits, created_at, updated_at, balance,"
            " held) VALUES ($1, 'USD', 2, now() - interval '1 hour', now(), 500, 300)",
            wallet_id,
        )
        for amount, expires_in in ((100, timedelta(seconds=-1)), (200, timedelta(hours=1))):
            await connection.execute(
                "INSERT INTO holds (id, wallet_id, currency, amount, expires_at, created_at,"
                " updated_at) VALUES ($1, $2, 'USD', $3, now() + $4,"
                " now() - interval '1 minute', now() - interval '1 minute')",
                uuid.uuid4(),
                wallet_id,
                amount,
                expires_in,
            )
        held_now, held_until, passed = await connection.fetchrow(
            "SELECT wallet_held_now(id, held), wallet_held_until(id, held),"
            " wallet_held_until(id, held) <= clock_timestamp() FROM wallets WHERE id = $1",
            wallet_id,
        )
    finally:
        await connection.close()
    assert (held_now, passed) == (200, True), held_until
