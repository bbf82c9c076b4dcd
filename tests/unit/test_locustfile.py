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
