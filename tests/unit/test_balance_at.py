"""A wallet's balance at a moment, on the default path: group commit over the in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]
WALLETS = "/api/v1/wallets"


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


async def new_wallet(client: Client, currency: str = "USD") -> Any:
    response = await client.post(WALLETS, json={"currency": currency})
    assert response.status == 201
    return await response.json()


async def operate(client: Client, wallet_id: str, kind: str, amount: str) -> Any:
    body = {"operationType": kind, "amount": amount}
    response = await client.post(f"{WALLETS}/{wallet_id}/operation", json=body)
    assert response.status == 200, await response.text()
    return (await response.json())["operation"]


async def balance_at(client: Client, wallet_id: str, at: str | None = None) -> Any:
    params = {} if at is None else {"at": at}
    return await client.get(f"{WALLETS}/{wallet_id}/balance", params=params)


async def test_the_balance_at_each_entry_is_its_balance_after_and_zero_before_the_first(
    client: Client,
) -> None:
    wallet = await new_wallet(client)
    entries = [
        await operate(client, wallet["id"], kind, amount)
        for kind, amount in [("DEPOSIT", "10.00"), ("WITHDRAW", "2.50"), ("DEPOSIT", "0.01")]
    ]

    before_any = moment(entries[0]["createdAt"]) - timedelta(microseconds=1)
    answer = await balance_at(client, wallet["id"], rfc3339(before_any))
    assert answer.status == 200
    assert await answer.json() == {
        "walletId": wallet["id"],
        "currency": "USD",
        "balance": "0.00",
        "at": rfc3339(before_any),
    }
    for entry in entries:  # an entry made at ``at`` counts; one a microsecond later does not
        at = (await (await balance_at(client, wallet["id"], entry["createdAt"])).json())["balance"]
        assert at == entry["balanceAfter"]
    just_before_last = moment(entries[2]["createdAt"]) - timedelta(microseconds=1)
    answer = await balance_at(client, wallet["id"], rfc3339(just_before_last))
    assert (await answer.json())["balance"] == "7.50"


async def test_an_offset_names_the_same_moment_and_the_answer_says_it_in_utc(
    client: Client,
) -> None:
    wallet = await new_wallet(client)
    entry = await operate(client, wallet["id"], "DEPOSIT", "5.00")
    made = moment(entry["createdAt"])
    elsewhere = made.astimezone(timezone(timedelta(hours=-3, minutes=-30)))

    answer = await (await balance_at(client, wallet["id"], elsewhere.isoformat())).json()
    lower_case = rfc3339(made).replace("T", "t").replace("Z", "z")
    again = await (await balance_at(client, wallet["id"], lower_case)).json()

    assert (
        answer
        == again
        == {
            "walletId": wallet["id"],
            "currency": "USD",
            "balance": "5.00",
            "at": entry["createdAt"],
        }
    )


async def test_a_plus_sent_unescaped_in_the_query_is_read_as_the_offset_sign(
    client: Client,
) -> None:
    wallet = await new_wallet(client)
    entry = await operate(client, wallet["id"], "DEPOSIT", "5.00")
    ahead = moment(entry["createdAt"]).astimezone(timezone(timedelta(hours=1, minutes=30)))

    raw = await client.get(f"{WALLETS}/{wallet['id']}/balance?at={ahead.isoformat()}")
    escaped = await balance_at(client, wallet["id"], ahead.isoformat())

    assert "+01:30" in ahead.isoformat()
    assert await raw.json() == await escaped.json()
    assert (await raw.json())["at"] == entry["createdAt"]


async def test_digits_past_the_microsecond_move_no_entry_across_the_moment(
    client: Client,
) -> None:
    wallet = await new_wallet(client)
    entry = await operate(client, wallet["id"], "DEPOSIT", "5.00")
    at = entry["createdAt"].replace("Z", "999Z")  # 999 nanoseconds after the entry

    answer = await (await balance_at(client, wallet["id"], at)).json()

    assert (answer["balance"], answer["at"]) == ("5.00", entry["createdAt"])


async def test_without_a_moment_it_is_the_balance_now(client: Client) -> None:
    wallet = await new_wallet(client, "JPY")
    await operate(client, wallet["id"], "DEPOSIT", "1500")
    asked = datetime.now(UTC)

    answer = await (await balance_at(client, wallet["id"])).json()

    assert (answer["currency"], answer["balance"]) == ("JPY", "1500")
    assert asked <= moment(answer["at"]) <= datetime.now(UTC)


async def test_a_transfer_counts_on_both_sides_at_its_moment(client: Client) -> None:
    payer, payee = await new_wallet(client), await new_wallet(client)
    await operate(client, payer["id"], "DEPOSIT", "10.00")
    body = {"fromWalletId": payer["id"], "toWalletId": payee["id"], "amount": "4.00"}
    made = await (await client.post("/api/v1/transfers", json=body)).json()

    at = made["createdAt"]
    paid = await (await balance_at(client, payer["id"], at)).json()
    received = await (await balance_at(client, payee["id"], at)).json()

    assert (paid["balance"], received["balance"]) == ("6.00", "4.00")


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"at": "2026-01-01T00:00:00"}, "RFC 3339"),
        ({"at": "2026-01-01 00:00:00Z"}, "RFC 3339"),
        ({"at": "2026-01-01"}, "RFC 3339"),
        ({"at": "yesterday"}, "RFC 3339"),
        ({"at": ""}, "RFC 3339"),
        ({"at": "2026-02-30T00:00:00Z"}, "RFC 3339"),
        ({"at": "2026-01-01T24:00:00Z"}, "RFC 3339"),
        ({"at": "2026-01-01T00:00:00+24:00"}, "RFC 3339"),
        ({"at": "2026-01-01T00:00:00.1234567890Z"}, "RFC 3339"),
        ({"at": "2026-01-01T00:00:00 "}, "RFC 3339"),
        ({"at": "2026-01-01T00:00:00 Z"}, "RFC 3339"),
        ({"at": "2999-01-01T00:00:00Z"}, "later than"),
    ],
)
async def test_a_malformed_or_future_moment_is_refused(
    client: Client, params: dict[str, str], detail: str
) -> None:
    wallet = await new_wallet(client)

    response = await client.get(f"{WALLETS}/{wallet['id']}/balance", params=params)

    assert response.status == 400
    problem = await response.json()
    assert problem["code"] == "VALIDATION_ERROR"
    assert [error["field"] for error in problem["errors"]] == ["at"]
    assert detail in problem["errors"][0]["message"]


async def test_a_moment_given_twice_is_refused(client: Client) -> None:
    wallet = await new_wallet(client)
    query = "at=2026-01-01T00:00:00Z&at=2026-01-02T00:00:00Z"

    response = await client.get(f"{WALLETS}/{wallet['id']}/balance?{query}")

    assert response.status == 400
    assert (await response.json())["errors"][0]["field"] == "at"


async def test_a_future_moment_is_refused_before_the_wallet_is_looked_up(client: Client) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    future = rfc3339(datetime.now(UTC) + timedelta(minutes=5))

    refused = await client.get(f"{WALLETS}/{unknown}/balance", params={"at": future})
    missing = await client.get(
        f"{WALLETS}/{unknown}/balance", params={"at": "2026-01-01T00:00:00Z"}
    )

    assert (refused.status, missing.status) == (400, 404)
    assert (await missing.json())["code"] == "WALLET_NOT_FOUND"
