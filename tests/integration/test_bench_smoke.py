"""``perf/bench.py --smoke`` runs from this repository alone, on a database and a Redis of
its own: nothing another run may be using is dropped or written. The load driver's transfer
scenarios run against the real service and find every balance as they should."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from tests.integration.conftest import DEFAULT_DATABASE_URL
from tests.integration.servers import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
SERVER_URL = os.environ.get("WALLET_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
# A name an earlier benchmark used for its database: another run's data, as far as this one knows.
OTHER_RUNS_DATABASE = "wallet_bench"
MARKER = "bench_smoke_marker"


async def execute(database: str, sql: str) -> list[asyncpg.Record]:
    parts = urlsplit(SERVER_URL)
    connection = await asyncpg.connect(parts._replace(path=f"/{database}").geturl())
    try:
        return await connection.fetch(sql)
    finally:
        await connection.close()


def query(database: str, sql: str) -> list[asyncpg.Record]:
    return asyncio.run(execute(database, sql))


def database_exists(name: str) -> bool:
    return bool(query("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"))


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_smoke_runs_without_shared_and_touches_nothing_of_another_run(tmp_path: Path) -> None:
    created_here = not database_exists(OTHER_RUNS_DATABASE)
    if created_here:
        query("postgres", f"CREATE DATABASE {OTHER_RUNS_DATABASE}")
    query(OTHER_RUNS_DATABASE, f"CREATE TABLE IF NOT EXISTS {MARKER} (id int)")
    try:
        command = [sys.executable, str(ROOT / "perf" / "bench.py"), "--smoke", "--duration", "1"]
        command += ["--pause", "0.5", "--shared", str(tmp_path / "no-shared"), "--pg", SERVER_URL]
        command += ["--out", str(tmp_path / "bench")]
        done = subprocess.run(
            command,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        rows = re.findall(r"^\s*ours\s+(hot|mixed|spread)\s.*\s(ok\b.*)$", done.stdout, re.M)
        assert [scenario for scenario, _ in rows] == ["hot", "mixed", "spread"], output

        assert query(OTHER_RUNS_DATABASE, f"SELECT to_regclass('{MARKER}') AS t")[0]["t"]
        own = re.findall(r"CREATE DATABASE (wallet_bench_\w+)", output)
        assert own, output
        assert OTHER_RUNS_DATABASE not in own
        assert not [name for name in own if database_exists(name)], "left behind"

        redis_urls = re.findall(r"WALLET_REDIS_URL=(redis://\S+)", output)
        assert redis_urls, output
        redis_port = urlsplit(redis_urls[0]).port
        assert redis_port is not None
        assert redis_port != 6379, "the shared Redis"
        assert not listening(redis_port), "its private redis-server is still running"
    finally:
        if created_here:
            query("postgres", f"DROP DATABASE IF EXISTS {OTHER_RUNS_DATABASE} WITH (FORCE)")
        else:
            query(OTHER_RUNS_DATABASE, f"DROP TABLE IF EXISTS {MARKER}")


def test_transfer_scenarios_move_money_and_make_none(migrated_url: str, tmp_path: Path) -> None:
    """The load driver's transfer scenarios against the real service, a second of each:
    every transfer answered 2xx, the sum of the balances unchanged, the payee paid exactly."""
    env = {"WALLET_DATABASE_URL": migrated_url, "WALLET_REDIS_URL": "", "WALLET_WORKERS": "1"}
    service = ServiceProcess(env, tmp_path / "service.log")
    service.start()
    try:
        command = [sys.executable, str(ROOT / "perf" / "wallet_load.py"), service.url]
        command += ["transfer-hot", "transfer-spread", "-d", "1", "-c", "8", "--pause", "0"]
        command += ["--transfer-wallets", "16"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    finally:
        service.stop()
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    hot, spread = [json.loads(line) for line in done.stdout.splitlines() if line[:1] == "{"]
    assert hot["scenario"] == "transfer-hot"
    assert hot["status"]["s2xx"] > 0, output
    assert Decimal(hot["payee_delta"]) >= hot["status"]["s2xx"], output
    assert spread["scenario"] == "transfer-spread"
    assert spread["status"]["s2xx"] > 0, output
    for result in (hot, spread):
        assert (result["non_2xx"], result["sum_diff"], result["balance_ok"]) == (0, "0.00", True)


def test_hold_scenario_captures_what_it_places(migrated_url: str, tmp_path: Path) -> None:
    """hold-hot against the real service for a second: every request answered 2xx, holds
    placed (201) and captured (200) in pairs, and the money taken plus the money still held
    is exactly the holds placed."""
    env = {"WALLET_DATABASE_URL": migrated_url, "WALLET_REDIS_URL": "", "WALLET_WORKERS": "1"}
    service = ServiceProcess(env, tmp_path / "service.log")
    service.start()
    try:
        command = [sys.executable, str(ROOT / "perf" / "wallet_load.py"), service.url]
        command += ["hold-hot", "-d", "1", "-c", "8"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    finally:
        service.stop()
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    (result,) = [json.loads(line) for line in done.stdout.splitlines() if line[:1] == "{"]
    assert (result["scenario"], result["non_2xx"], result["balance_ok"]) == ("hold-hot", 0, True)
    placed, captured = result["holds_placed"], result["holds_captured"]
    assert placed > 0, output
    assert placed - 2 * 8 <= captured <= placed, "holds left at the stop: in flight or queued"
    assert result["pairs_per_s"] > 0
    taken, held = Decimal(result["balance_taken"]), Decimal(result["held_final"])
    assert taken >= captured
    assert taken + held >= placed
