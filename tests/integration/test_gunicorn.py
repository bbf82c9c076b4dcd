"""gunicorn with aiohttp's worker on ``wallet.entrypoints.gunicorn``, for real: two workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.integration.servers import free_port

REQUEST_ID = "gunicorn-integration-test"


def call(url: str, method: str = "GET", body: object = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    request = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Request-ID": REQUEST_ID},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"gunicorn exited: {log.read_text()}"
        try:
            if call(f"{url}/health/ready")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"gunicorn never got ready: {log.read_text()}")


def access_lines(log: Path) -> list[dict[str, object]]:
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    return [entry for entry in entries if entry["logger"] == "wallet.access"]


def test_gunicorn_migrates_serves_logs_and_stops_cleanly(
    fresh_url: str, redis_url: str, tmp_path: Path
) -> None:
    port, log, metrics = free_port(), tmp_path / "gunicorn.log", tmp_path / "metrics"
    metrics.mkdir()
    env = {
        **os.environ,
        "WALLET_DATABASE_URL": fresh_url,  # not created yet: the workers create and migrate it
        "WALLET_REDIS_URL": redis_url,
        "WALLET_LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    command = [
        sys.executable, "-m", "gunicorn", "wallet.entrypoints.gunicorn:app",
        "-c", "python:wallet.entrypoints.gunicorn",
        "--worker-class", "aiohttp.GunicornUVLoopWebWorker",
        "--workers", "2", "--bind", f"127.0.0.1:{port}",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, log)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
        workers = [int(pid) for pid in children.split()]
        assert len(workers) == 2

        status, wallet = call(f"{url}/api/v1/wallets", "POST", {})
        assert status == 201
        body = {"operationType": "DEPOSIT", "amount": "12.50"}
        status, applied = call(f"{url}/api/v1/wallets/{wallet['id']}/operation", "POST", body)
        assert (status, applied["balance"]) == (200, "12.50")
        created = 'route="/api/v1/wallets",status="201"} 1.0'
        deadline = time.monotonic() + 10  # each worker writes its samples every second
        exposition = ""
        while created not in exposition and time.monotonic() < deadline:
            with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
                exposition = response.read().decode()
            time.sleep(0.1)
        assert created in exposition

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    ours = [entry for entry in access_lines(log) if entry["request_id"] == REQUEST_ID]
    assert {(entry["route"], entry["status"]) for entry in ours} >= {
        ("/api/v1/wallets", 201),
        ("/api/v1/wallets/{wallet_id}/operation", 200),
    }
    leftover = {path.name for path in metrics.iterdir()}
    live_gauges = {f"gauge_livesum_{pid}.db" for pid in workers}
    assert not live_gauges & leftover, "child_exit left a stopped worker's gauges behind"
