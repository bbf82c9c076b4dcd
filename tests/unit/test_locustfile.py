"""perf/locustfile.py: what its users send, and what it may import (it runs in locust's image)."""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

LOCUSTFILE = Path(__file__).resolve().parents[2] / "perf" / "locustfile.py"
USER_CLASSES = (
    "HotWalletUser",
    "ManyWalletsUser",
    "ReadHeavyUser",
    "FixedRateUser",
    "TransferUser",
    "HoldUser",
)

# In a process of its own: importing locust patches the standard library with gevent's.
AUTHORIZATION_OF_EACH_USER = """
import importlib.util, json, sys
from locust.env import Environment

spec = importlib.util.spec_from_file_location("locustfile", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
users = {}
for name in sys.argv[2:]:
    user_class = getattr(module, name)
    user_class.host = "http://127.0.0.1:9"  # what locust's --host does; nothing is sent
    users[name] = user_class(Environment())
print(json.dumps({name: user.client.headers.get("Authorization") for name, user in users.items()}))
"""


def authorization_headers(**environ: str) -> dict[str, str | None]:
    env = {k: v for k, v in os.environ.items() if k != "LOCUST_API_KEY"} | environ
    script = [sys.executable, "-c", AUTHORIZATION_OF_EACH_USER, str(LOCUSTFILE), *USER_CLASSES]
    done = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60, check=True)
    headers: dict[str, str | None] = json.loads(done.stdout.splitlines()[-1])
    return headers


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({"LOCUST_API_KEY": "k3y-for-load"}, "Bearer k3y-for-load"), ({}, None)],
    ids=["with-key", "without"],
)
def test_every_user_sends_the_api_key_only_when_given(
    environ: dict[str, str], expected: str | None
) -> None:
    assert authorization_headers(**environ) == dict.fromkeys(USER_CLASSES, expected)


# TransferUser's users, driven task by task through a client that records what they send
# and answers like the service (a transfer of more than 4.00 as INSUFFICIENT_FUNDS, one in
# every ten other answers as a 500): the requests and the verdict on each, as JSON.
TRANSFER_USERS = """
import importlib.util, itertools, json, sys
from locust.env import Environment

spec = importlib.util.spec_from_file_location("locustfile", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
ids, sent = itertools.count(1), []


class Answer:
    def __init__(self, record, status, body):
        self.record, self.status_code, self.body = record, status, body
        self.text = json.dumps(body)

    def json(self):
        return self.body

    def success(self):
        self.record["verdict"] = "success"

    def failure(self, message):
        self.record["verdict"] = "failure"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Client:
    headers = {}

    def request(self, method, path, json=None, **kwargs):
        record = {"method": method, "path": path, "json": json, "name": kwargs.get("name")}
        sent.append(record)
        if path == "/api/v1/wallets" and method == "POST":
            return Answer(record, 201, {"id": f"w{next(ids)}"})
        if path == "/api/v1/transfers" and float(json["amount"]) > 4:
            return Answer(record, 400, {"code": "INSUFFICIENT_FUNDS"})
        if len(sent) % 10 == 0:
            return Answer(record, 500, {"code": "INTERNAL_ERROR"})
        return Answer(record, 201 if path == "/api/v1/transfers" else 200, {})

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)


module.TransferUser.host = "http://127.0.0.1:9"
users = [module.TransferUser(Environment()) for _ in range(int(sys.argv[2]))]
for user in users:
    user.client = Client()
    user.on_start()
for _ in range(200):
    for user in users:
        user.pay_merchant()
        user.pay_peer()
users[0].top_up()
users[0].on_stop()
print(json.dumps({"sent": sent, "payers": module.TransferUser._payers}))
"""


@functools.cache
def transfer_users(count: int) -> dict[str, Any]:
    script = [sys.executable, "-c", TRANSFER_USERS, str(LOCUSTFILE), str(count)]
    done = subprocess.run(script, capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_transfer_users_fund_themselves_then_pay_the_merchant_and_each_other() -> None:
    result = transfer_users(3)
    sent = result["sent"]
    created = [r for r in sent if r["path"] == "/api/v1/wallets"]
    assert len(created) == 4, "a wallet each, and one merchant for them all"
    payers, merchant = ["w1", "w3", "w4"], "w2"
    assert [r["path"] for r in sent[:3]] == [
        "/api/v1/wallets",
        "/api/v1/wallets/w1/operation",
        "/api/v1/wallets",
    ]
    assert sent[1]["json"] == {"operationType": "DEPOSIT", "amount": "10000.00"}
    transfers = [r for r in sent if r["path"] == "/api/v1/transfers"]
    assert len(transfers) == 3 * 200 * 2
    assert {r["name"] for r in transfers} == {"/api/v1/transfers"}
    assert {tuple(r["json"]) for r in transfers} == {("fromWalletId", "toWalletId", "amount")}
    pairs = Counter((r["json"]["fromWalletId"], r["json"]["toWalletId"]) for r in transfers)
    assert {payer for payer, _ in pairs} == set(payers)
    assert all(payer != payee for payer, payee in pairs)
    to_peers = {pair for pair in pairs if pair[1] != merchant}
    assert to_peers == {(a, b) for a in payers for b in payers if a != b}, "each pays each"
    assert sum(n for (_, payee), n in pairs.items() if payee == merchant) == 3 * 200
    assert all(re.fullmatch(r"\d+\.\d\d", r["json"]["amount"]) for r in transfers)
    assert result["payers"] == ["w3", "w4"], "a stopped user is paid no more"


def test_a_spent_payer_is_no_failure_but_any_other_refusal_is() -> None:
    transfers = [r for r in transfer_users(3)["sent"] if r["path"] == "/api/v1/transfers"]
    spent = [r for r in transfers if float(r["json"]["amount"]) > 4]
    assert spent
    assert {r["verdict"] for r in spent} == {"success"}
    failed = [r for r in transfer_users(3)["sent"] if r["verdict"] == "failure"]
    assert failed, "one answer in ten was a 500"
    assert not [r for r in failed if r in spent]
    assert {r["path"] for r in failed} >= {"/api/v1/transfers"}


def test_alone_a_transfer_user_pays_only_the_merchant() -> None:
    transfers = [r for r in transfer_users(1)["sent"] if r["path"] == "/api/v1/transfers"]
    assert {r["json"]["toWalletId"] for r in transfers} == {"w2"}


# HoldUser's users, driven task by task through a client that records what they send and
# answers like the service: a hold of more than 4.00 as INSUFFICIENT_FUNDS, a capture or void
# of a hold no longer held as HOLD_NOT_ACTIVE, a capture of more than the hold as a
# VALIDATION_ERROR, one in every ten other answers as a 500.
HOLD_USERS = """
import importlib.util, itertools, json, random, sys
from locust.env import Environment

spec = importlib.util.spec_from_file_location("locustfile", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
random.seed(7)
ids, sent, holds = itertools.count(1), [], {}


class Answer:
    def __init__(self, record, status, body):
        self.record, self.status_code, self.body = record, status, body
        self.text = json.dumps(body)
        record["status"] = status

    def json(self):
        return self.body

    def success(self):
        self.record["verdict"] = "success"

    def failure(self, message):
        self.record["verdict"] = "failure"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def cents(amount):
    whole, _, fraction = amount.partition(".")
    return int(whole) * 100 + int(fraction.ljust(2, "0"))


class Client:
    headers = {}

    def request(self, method, path, json=None, **kwargs):
        record = {"method": method, "path": path, "json": json, "name": kwargs.get("name")}
        sent.append(record)
        parts = path.split("?")[0].split("/")
        if path == "/api/v1/wallets" and method == "POST":
            return Answer(record, 201, {"id": f"w{next(ids)}"})
        if method == "POST" and parts[-1] == "holds":
            if cents(json["amount"]) > 400:
                return Answer(record, 400, {"code": "INSUFFICIENT_FUNDS"})
            hold_id = f"h{next(ids)}"
            holds[hold_id] = {"amount": json["amount"], "status": "HELD", "wallet": parts[4]}
            record["placed"] = hold_id
            return Answer(record, 201, {"id": hold_id})
        if method == "POST" and parts[-1] in ("capture", "void"):
            hold = holds[parts[4]]
            if hold["status"] != "HELD":
                return Answer(record, 409, {"code": "HOLD_NOT_ACTIVE"})
            if "amount" in (json or {}) and cents(json["amount"]) > cents(hold["amount"]):
                return Answer(record, 400, {"code": "VALIDATION_ERROR"})
            hold["status"] = "SETTLED"
            if len(sent) % 10 == 0:
                return Answer(record, 500, {"code": "INTERNAL_ERROR"})  # settled, unheard of
            return Answer(record, 200, {})
        if len(sent) % 10 == 0:
            return Answer(record, 500, {"code": "INTERNAL_ERROR"})
        return Answer(record, 200, {})

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)


module.HoldUser.host = "http://127.0.0.1:9"
users = [module.HoldUser(Environment()) for _ in range(int(sys.argv[2]))]
# more placing than settling: the users reach their most open holds, and settle one first
tasks = ["place", "place", "capture", "place", "void", "place", "read_hold", "list_holds", "read"]
for user in users:
    user.client = Client()
    user.on_start()
most_open = {user.wallet_id: 0 for user in users}
for step in range(400):
    for user in users:
        getattr(user, tasks[step % len(tasks)])()
        most_open[user.wallet_id] = max(most_open[user.wallet_id], len(user.open_holds))
        if step % 50 == 0:
            user.top_up()
open_holds = {user.wallet_id: [hold for hold, _ in user.open_holds] for user in users}
print(json.dumps({"sent": sent, "holds": holds, "open": open_holds, "most_open": most_open}))
"""


@functools.cache
def hold_users(count: int) -> dict[str, Any]:
    script = [sys.executable, "-c", HOLD_USERS, str(LOCUSTFILE), str(count)]
    done = subprocess.run(script, capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def hold_of(record: dict[str, Any]) -> str:
    """The hold a capture, void or read names in its path."""
    return str(record["path"].split("/")[4])


def test_hold_users_fund_themselves_then_place_holds_on_their_own_wallets() -> None:
    result = hold_users(2)
    sent = result["sent"]
    assert [r["path"] for r in sent[:3]] == [
        "/api/v1/wallets",
        "/api/v1/wallets/w1/operation",
        "/api/v1/wallets",
    ]
    assert sent[1]["json"] == {"operationType": "DEPOSIT", "amount": "1000.00"}
    created = [r for r in sent if r["path"] == "/api/v1/wallets"]
    assert len(created) == 3, "a wallet each, and one merchant for them all"
    merchant = "w2"
    placed = [r for r in sent if r["path"].endswith("/holds") and r["method"] == "POST"]
    assert {r["name"] for r in placed} == {"/api/v1/wallets/[id]/holds"}
    assert {r["path"] for r in placed} == {"/api/v1/wallets/w1/holds", "/api/v1/wallets/w3/holds"}
    assert {tuple(r["json"]) for r in placed} == {("amount",), ("amount", "toWalletId")}
    assert {r["json"]["toWalletId"] for r in placed if "toWalletId" in r["json"]} == {merchant}
    assert all(re.fullmatch(r"\d+\.\d\d", r["json"]["amount"]) for r in placed)
    assert result["most_open"] == {"w1": 20, "w3": 20}, "MAX_OPEN_HOLDS reached, never passed"
    for wallet, still_held in result["open"].items():
        assert all(result["holds"][hold]["wallet"] == wallet for hold in still_held)


def test_hold_users_settle_each_of_their_holds_once_whole_or_in_part() -> None:
    result = hold_users(2)
    sent, holds = result["sent"], result["holds"]
    settled = [r for r in sent if r["path"].endswith(("/capture", "/void"))]
    captures = [r for r in settled if r["path"].endswith("/capture")]
    assert captures
    assert len(captures) < len(settled), "some are voided"
    assert {r["name"] for r in settled} == {
        "/api/v1/holds/[id]/capture",
        "/api/v1/holds/[id]/void",
    }
    assert Counter(hold_of(r) for r in settled).most_common(1)[0][1] == 1, "settled twice"
    assert {r["status"] for r in settled} == {200, 500}, "never a hold not held, nor too much"
    assert {r["json"] == {} for r in captures} == {True, False}, "whole and part"
    assert all(r["json"] == {} for r in settled if r["path"].endswith("/void"))
    parts = [r for r in captures if r["json"]]
    assert all(0 < float(r["json"]["amount"]) <= float(holds[hold_of(r)]["amount"]) for r in parts)
    still_held = {hold for held in result["open"].values() for hold in held}
    assert {hold_of(r) for r in settled} | still_held == set(holds), "settled once, or held"
    assert not {hold_of(r) for r in settled} & still_held


def test_hold_users_read_their_holds_and_wallets() -> None:
    result = hold_users(2)
    reads = [r for r in result["sent"] if r["method"] == "GET"]
    assert {r["name"] for r in reads} == {
        "/api/v1/holds/[id]",
        "/api/v1/wallets/[id]/holds",
        "/api/v1/wallets/[id]",
    }
    read_holds = {hold_of(r) for r in reads if r["name"] == "/api/v1/holds/[id]"}
    assert read_holds <= set(result["holds"]), "only holds they placed"
    listed = {r["path"] for r in reads if r["name"] == "/api/v1/wallets/[id]/holds"}
    assert listed == {"/api/v1/wallets/w1/holds?limit=10", "/api/v1/wallets/w3/holds?limit=10"}


def test_a_held_or_spent_wallet_is_no_failure_but_any_other_refusal_is() -> None:
    sent = hold_users(2)["sent"]
    refused = [r for r in sent if r["status"] == 400]
    assert refused
    assert all(r["path"].endswith("/holds") and float(r["json"]["amount"]) > 4 for r in refused)
    assert {r["verdict"] for r in refused} == {"success"}
    failed = [r for r in sent if r["verdict"] == "failure"]
    assert failed == [r for r in sent if r["status"] == 500]
    assert [r for r in failed if r["path"].endswith(("/capture", "/void"))], "an answer lost"


def imported_packages(source: str) -> set[str]:
    """The top-level package of every import in ``source``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {name.split(".")[0] for name in names}


def test_imports_only_the_standard_library_locust_and_gevent() -> None:
    packages = imported_packages(LOCUSTFILE.read_text(encoding="utf-8"))
    assert {"locust", "gevent"} <= packages
    assert packages - sys.stdlib_module_names - {"locust", "gevent"} == set()
