"""The benchmark's correctness gate: a lost update or a non-2xx answer fails it, whichever
driver measured our service; speed never does."""

from __future__ import annotations

import importlib.util
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PERF = Path(__file__).resolve().parents[2] / "perf"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, PERF / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench = load("bench")
wallet_load = load("wallet_load")


def hot_result(acked: int, delta: int, inflight: int, non_2xx: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = {
        "label": "ours",
        "scenario": "hot",
        "non_2xx": non_2xx,
        "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
    }
    wallet_load.deposit_check(result, Decimal(delta), acked, inflight)
    return result


def test_every_acknowledged_deposit_in_the_balance_passes() -> None:
    result = hot_result(acked=1000, delta=1003, inflight=64)
    assert result["balance_ok"]
    assert result["unacked_applied"] == 3
    assert wallet_load.failures(result) == []
    assert bench.gate_failures([result]) == []


def test_a_lost_update_fails_the_run() -> None:
    result = hot_result(acked=1000, delta=999, inflight=64)
    assert result["lost_updates"] == 1
    assert wallet_load.failures(result) == ["balance check failed"]
    assert bench.gate_failures([result]) == ["ours hot: balance check failed (BAD lost=1)"]


def test_more_applied_than_was_in_flight_fails_too() -> None:
    assert not hot_result(acked=1000, delta=1065, inflight=64)["balance_ok"]


@pytest.mark.parametrize("label", ["ours", "walletbench"])
def test_a_non_2xx_answer_fails_the_run_whichever_driver_saw_it(label: str) -> None:
    result = {**hot_result(acked=10, delta=10, inflight=0, non_2xx=2), "label": label}
    assert bench.gate_failures([result]) == [f"{label} hot: 2 non-2xx answers"]


def test_a_baseline_error_is_not_ours() -> None:
    result = {**hot_result(acked=10, delta=5, inflight=0, non_2xx=2), "label": "seed"}
    assert bench.gate_failures([result]) == []


def test_mixed_splits_the_connections_by_weight_and_keeps_all_of_them() -> None:
    assert wallet_load.split(64) == [29, 29, 6]
    assert wallet_load.split(2) == [1, 1, 1]
    assert sum(wallet_load.split(100)) == 100


def test_the_smoke_run_measures_ours_alone_without_the_shared_harness() -> None:
    args = bench.parse_args(["--smoke", "--shared", "/nonexistent"])
    assert args.only == ["ours"]
    assert args.redis_url is None, "a private redis-server, not a shared Redis DB"
    bench.preflight(args)  # no file under --shared is needed
