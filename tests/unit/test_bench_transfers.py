"""The load driver's transfer scenarios (perf/wallet_load.py, perf/wallet_load.lua) and the
benchmark's PostgreSQL ceiling beside them (perf/bench.py, perf/pgbench_hot_transfer.sql):
money moved and never made or lost, each request's payer picked by wrk's script."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import shutil
import sys
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web

PERF = Path(__file__).resolve().parents[2] / "perf"


def load(name: str) -> ModuleType:
    if name in sys.modules:  # another test module of the bench loaded it already
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PERF / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench = load("bench")
wallet_load = load("wallet_load")

ONE = Decimal("1.00")


# --- the balance checks ----------------------------------------------------------------


def checked(
    start: list[str], final: list[str], acked: int, inflight: int = 0, *, payee: bool = True
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "label": "ours",
        "scenario": "transfer-hot" if payee else "transfer-spread",
        "non_2xx": 0,
        "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
    }
    before, after = [Decimal(b) for b in start], [Decimal(b) for b in final]
    wallet_load.transfer_check(result, ONE, before, after, acked, inflight, payee=payee)
    return result


def test_transfers_that_only_moved_money_pass() -> None:
    result = checked(["100.00", "100.00", "0.00"], ["97.00", "98.00", "5.00"], acked=5)
    assert result["balance_ok"]
    assert (result["sum_diff"], result["payee_delta"]) == ("0.00", "5.00")
    assert result["lost_updates"] == 0
    assert wallet_load.failures(result) == []
    assert bench.gate_failures([result]) == []


def test_transfers_applied_but_unacknowledged_are_tolerated_up_to_those_in_flight() -> None:
    result = checked(["100.00", "0.00"], ["93.00", "7.00"], acked=5, inflight=2)
    assert result["balance_ok"]
    assert result["unacked_applied"] == 2
    assert bench.balance_check(result) == "ok unacked=2"
    assert not checked(["100.00", "0.00"], ["92.00", "8.00"], acked=5, inflight=2)["balance_ok"]


def test_money_made_or_lost_fails_even_when_the_payee_looks_right() -> None:
    made = checked(["100.00", "0.00"], ["96.00", "5.00"], acked=5)
    assert not made["balance_ok"]
    assert made["sum_diff"] == "1.00"
    assert bench.gate_failures([made]) == [
        "ours transfer-hot: balance check failed (BAD lost=1 sum=1.00)"
    ]
    lost = checked(["50.00", "50.00"], ["49.00", "49.00"], acked=40, payee=False)
    assert (lost["balance_ok"], lost["lost_updates"]) == (False, 2)
    assert wallet_load.check_column(lost) == "BAD lost=2 sum=-2.00"


def test_an_acknowledged_transfer_the_payee_does_not_show_fails() -> None:
    result = checked(["100.00", "0.00"], ["96.00", "4.00"], acked=5, inflight=64)
    assert not result["balance_ok"]
    assert result["lost_updates"] == 1


def test_each_payer_must_have_paid_its_acknowledged_transfers() -> None:
    start, final = ["100.00", "100.00", "0.00"], ["97.00", "98.00", "5.00"]
    result: dict[str, Any] = {"non_2xx": 0}
    balances = [[Decimal(b) for b in side] for side in (start, final)]
    wallet_load.transfer_check(result, ONE, *balances, 5, 0, payee=True, payers={0: 3, 1: 2})
    assert (result["balance_ok"], result["payers_short"]) == (True, 0)
    # the same balances, but the answers said the second payer paid three: it paid two
    wallet_load.transfer_check(result, ONE, *balances, 5, 0, payee=True, payers={0: 2, 1: 3})
    assert (result["balance_ok"], result["payers_short"], result["lost_updates"]) == (False, 1, 1)
    assert wallet_load.check_column(result) == "BAD lost=1 short=1"


def test_payers_are_checked_only_when_every_2xx_answer_named_one() -> None:
    wallets = ["A-1", "b-2", "payee"]
    assert wallet_load.by_position(wallets, {"a-1": 4, "b-2": 1}, acked=5) == {0: 4, 1: 1}
    assert wallet_load.by_position(wallets, {"a-1": 4}, acked=5) == {}, "one answer named none"
    assert wallet_load.by_position(wallets, {"a-1": 4, "c-3": 1}, acked=5) == {}, "a stranger"


def test_a_wallet_below_zero_fails() -> None:
    result = checked(["1.00", "1.00"], ["-1.00", "3.00"], acked=2, payee=False)
    assert not result["balance_ok"]
    assert bench.balance_check(result) == "BAD negative=1"


def test_the_body_leaves_the_payer_and_payee_to_the_script() -> None:
    assert json.loads(wallet_load.transfer_body("1.00")) == {
        "fromWalletId": "{from}",
        "toWalletId": "{to}",
        "amount": "1.00",
    }
    assert json.loads(wallet_load.transfer_body("2.50", payee="p"))["toWalletId"] == "p"


@pytest.mark.parametrize("amount", ["0", "-1.00", "abc", "NaN", "inf"])
def test_a_transfer_amount_must_be_a_positive_decimal(amount: str) -> None:
    with pytest.raises(SystemExit):
        wallet_load.parse_args(["http://x", "transfer-hot", "--transfer-amount", amount])


def test_the_transfer_scenarios_run_only_when_named() -> None:
    args = wallet_load.parse_args(["http://x"])
    assert [name for name, _ in args.scenarios] == list(wallet_load.SCENARIOS)
    args = wallet_load.parse_args(["http://x", "transfer-hot:8", "transfer-spread"])
    assert args.scenarios == [("transfer-hot", 8), ("transfer-spread", None)]
    assert (args.transfer_wallets, args.transfer_amount) == (256, "1.00")


# --- the bench: scenarios of ours, the pgbench ceiling, the ratio ---------------------


def test_ours_runs_the_transfer_scenarios_and_no_unknown_one() -> None:
    args = bench.parse_args(["--only", "ours,pgbench", "--ours-scenarios", "transfer-hot"])
    assert bench.plan(args) == [("ours", "transfer-hot")]
    assert bench.pgbench_plan(args) == ["transfer-hot"]
    default = bench.parse_args([])
    assert {"transfer-hot", "transfer-spread"} <= set(default.ours_scenarios)
    assert bench.pgbench_plan(default) == ["hot", "transfer-hot"]
    assert set(bench.LOAD_SCENARIOS) == {*wallet_load.SCENARIOS, *wallet_load.TRANSFER_SCENARIOS}
    with pytest.raises(SystemExit) as stopped:
        bench.parse_args(["--ours-scenarios", "hot,transfer-hots"])
    assert stopped.value.code == 2


def test_smoke_stays_on_deposits() -> None:
    args = bench.parse_args(["--smoke"])
    assert args.ours_scenarios == ["hot", "mixed", "spread"]
    assert bench.pgbench_plan(args) == []


def test_the_transfer_ceiling_moves_one_unit_from_a_random_payer_to_the_payee() -> None:
    script = (PERF / "pgbench_hot_transfer.sql").read_text()
    assert ":payers" in script
    assert "random(1, :payers)" in script
    ceiling = bench.PGBENCH["transfer-hot"]
    assert ceiling.script.name == "pgbench_hot_transfer.sql"
    assert f"payers={bench.TRANSFER_PAYERS}" in ceiling.options
    assert bench.TRANSFER_PAYERS == 256


def test_the_ratio_to_the_transfer_ceiling_shows_ours_p99() -> None:
    results = [
        {"label": "pgbench", "scenario": "transfer-hot", "connections": 8, "rps": 4000.0},
        {"label": "ours", "scenario": "transfer-hot", "rps": 6000.0, "p99_ms": 12.34},
    ]
    text = bench.render_ratios(results, ["ours", "pgbench"])
    assert "ours-hot" not in text, "neither side of it ran"
    (line,) = text.splitlines()[1:]
    assert " ".join(line.split()) == (
        "ours-transfer-hot / pgbench tps 1.50x (6000 / 4000), ours p99 12.3 ms"
    )
    row = bench.table_row({**results[0], "latency_avg_ms": 2.0})
    assert row[:4] == ["pgbench", "transfer 256->1", "8", "4000"]


# --- end to end: wrk and the Lua script against a small in-memory wallet service -------


class Ledger:
    """Wallets in a dictionary; transfers checked as the contract says, and recorded."""

    def __init__(self) -> None:
        self.balances: dict[str, Decimal] = {}
        self.created: list[str] = []
        self.transfers: list[tuple[str, str, str]] = []
        self.refused: Counter[str] = Counter()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/wallets", self.create)
        app.router.add_get("/api/v1/wallets/{id}", self.get)
        app.router.add_post("/api/v1/wallets/{id}/operation", self.operate)
        app.router.add_post("/api/v1/transfers", self.transfer)
        return app

    def wallet(self, wallet_id: str) -> web.Response:
        return web.json_response({"id": wallet_id, "balance": f"{self.balances[wallet_id]:.2f}"})

    async def create(self, request: web.Request) -> web.Response:
        wallet_id = str(uuid.uuid4())
        self.balances[wallet_id] = Decimal(0)
        self.created.append(wallet_id)
        return web.json_response({"id": wallet_id, "balance": "0.00"}, status=201)

    async def get(self, request: web.Request) -> web.Response:
        return self.wallet(request.match_info["id"])

    async def operate(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert body["operationType"] == "DEPOSIT"
        self.balances[request.match_info["id"]] += Decimal(str(body["amount"]))
        return self.wallet(request.match_info["id"])

    def refuse(self, code: str) -> web.Response:
        self.refused[code] += 1
        return web.json_response({"code": code}, status=400)

    async def transfer(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/json"
        body = await request.json()
        payer, payee, amount = body.get("fromWalletId"), body.get("toWalletId"), body["amount"]
        if set(body) != {"fromWalletId", "toWalletId", "amount"} or payer == payee:
            return self.refuse("VALIDATION_ERROR")
        if payer not in self.balances or payee not in self.balances:
            return self.refuse("WALLET_NOT_FOUND")
        if self.balances[payer] < Decimal(amount):
            return self.refuse("INSUFFICIENT_FUNDS")
        self.balances[payer] -= Decimal(amount)
        self.balances[payee] += Decimal(amount)
        self.transfers.append((payer, payee, amount))
        return web.json_response({"fromWalletId": payer, "toWalletId": payee}, status=201)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (make test-unit installs it)")
async def test_each_request_carries_a_random_payer_and_the_checks_pass(
    aiohttp_server: Any,
) -> None:
    ledger = Ledger()
    server = await aiohttp_server(ledger.app())
    command = [sys.executable, str(PERF / "wallet_load.py"), f"http://127.0.0.1:{server.port}"]
    command += ["transfer-hot", "transfer-spread:3", "-d", "1", "-c", "4", "--pause", "0"]
    command += ["--transfer-wallets", "8", "--fund", "1000000"]
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, out.decode() + err.decode()
    hot, spread = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]

    assert not ledger.refused
    payers, payee, wallets = ledger.created[:8], ledger.created[8], ledger.created[9:]
    to_payee = [t for t in ledger.transfers if t[1] == payee]
    among = [t for t in ledger.transfers if t[1] != payee]
    assert {t[0] for t in to_payee} == set(payers), "every payer paid the payee"
    assert len(wallets) == 8
    assert {t[0] for t in among} == set(wallets)
    assert {t[1] for t in among} == set(wallets)
    assert all(payer != to for payer, to, _ in among)
    assert {amount for _, _, amount in ledger.transfers} == {"1.00"}

    assert (hot["wallets"], hot["connections"], hot["non_2xx"]) == (8, 4, 0)
    acked, inflight = hot["acked_transfers"], hot["inflight_at_stop"]
    assert acked <= len(to_payee) <= acked + inflight
    assert Decimal(hot["payee_delta"]) == len(to_payee) * ONE
    assert hot["payers_short"] == 0, "the script counted each 2xx answer's payer"
    assert "payers_short" not in spread, "a wallet of transfer-spread is paid too"
    assert (spread["wallets"], spread["connections"], spread["non_2xx"]) == (8, 3, 0)
    for result in (hot, spread):
        assert result["balance_ok"]
        assert (result["sum_diff"], result["negative_wallets"]) == ("0.00", 0)
    assert sum(ledger.balances.values()) == 16 * 1_000_000


def test_each_ceiling_runs_right_before_ours_first_run_of_its_scenario(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, str]] = []

    def server(name: str) -> Any:
        return bench.Server(name, "http://127.0.0.1:9", None, tmp_path / f"{name}.log")

    monkeypatch.setattr(bench, "preflight", lambda args: None)
    monkeypatch.setattr(bench, "own_redis", lambda run, stack: "redis://127.0.0.1:9/0")
    monkeypatch.setattr(bench.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(bench, "start_servers", lambda args, run, stack: {"ours": server("ours")})
    monkeypatch.setattr(
        bench, "run_pgbench", lambda args, run, scenario: calls.append(("pgbench", scenario))
    )
    monkeypatch.setattr(
        bench,
        "run_load",
        lambda args, run, srv, spec, driver=bench.LOAD_DRIVER: calls.append((driver.stem, spec)),
    )
    argv = ["--only", "ours,pgbench", "--ours-scenarios", "read,transfer-hot:32,hot"]
    run = bench.Run(tmp_path)
    bench.measure(bench.parse_args(argv), run, contextlib.ExitStack())
    assert calls == [
        ("wallet_load", "read"),
        ("pgbench", "transfer-hot"),
        ("wallet_load", "transfer-hot:32"),
        ("pgbench", "hot"),
        ("wallet_load", "hot"),
    ]
    calls.clear()
    bench.measure(bench.parse_args(["--only", "pgbench"]), run, contextlib.ExitStack())
    assert calls == [("pgbench", "hot"), ("pgbench", "transfer-hot")]
    calls.clear()
    argv = ["--only", "ours,pgbench", "--ours-scenarios", "read"]
    bench.measure(bench.parse_args(argv), run, contextlib.ExitStack())
    assert calls == [("wallet_load", "read")]
    assert "pgbench" in run.skipped
    calls.clear()
    (tmp_path / "shared" / "bench").mkdir(parents=True)
    (tmp_path / "shared" / "bench" / "walletbench.py").touch()
    argv = ["--only", "ours,walletbench", "--shared", str(tmp_path / "shared")]
    bench.measure(
        bench.parse_args([*argv, "--ours-scenarios", "transfer-hot,read,hot"]),
        run,
        contextlib.ExitStack(),
    )
    assert calls == [
        ("wallet_load", "transfer-hot"),
        ("walletbench", "transfer-hot"),
        ("wallet_load", "read"),
        ("wallet_load", "hot"),
        ("walletbench", "hot"),
    ], "the shared driver right after ours, scenario by scenario"
