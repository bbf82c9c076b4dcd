"""The command line: ``serve`` on real processes, one or several sharing the port."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import free_port


def children_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def get(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


@pytest.fixture
def serve(database_url: str, redis_url: str) -> Iterator[object]:
    started: list[subprocess.Popen[str]] = []

    def start(
        *args: str, port: int | None = None, **settings: str
    ) -> tuple[subprocess.Popen[str], int]:
        port = port or free_port()
        env = {
            **os.environ,
            "WALLET_DATABASE_URL": database_url,
            "WALLET_REDIS_URL": redis_url,
            **settings,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "wallet", "serve", "--port", str(port), *args],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process, port

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=20)
        assert process.stderr is not None
        process.stderr.close()


def wait_for_log_line(process: subprocess.Popen[str], needle: str) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if needle in line:
            return line
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"serve never logged {needle!r}")


def log_until(process: subprocess.Popen[str], needle: str) -> list[str]:
    """The lines ``serve`` logged up to and with the first that holds ``needle``."""
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if needle in line:
            return lines
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"serve never logged {needle!r}: {''.join(lines)[-2000:]}")


def wait_until_live(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if get(f"http://127.0.0.1:{port}/health/live")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered on port {port}")


def test_serve_logs_its_address_and_answers(serve: object) -> None:
    process, port = serve()  # type: ignore[operator]
    line = wait_for_log_line(process, "listening on")
    assert f"http://127.0.0.1:{port}" in line
    wait_until_live(port)
    status, body = get(f"http://127.0.0.1:{port}/health/ready")
    assert (status, body["database"], body["cache"]) == (200, "ok", "ok")


def worker_processes(pid: int) -> list[int]:
    """The serving children of ``pid`` (not multiprocessing's resource tracker)."""
    return [
        child
        for child in children_of(pid)
        if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text()
    ]


def listeners_on(port: int) -> int:
    """How many sockets listen on ``port`` (each worker has its own, via SO_REUSEPORT)."""
    listening = "0A"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    fields = [row.split() for row in rows]
    return sum(1 for f in fields if f[1].endswith(f":{port:04X}") and f[3] == listening)


def wait_for_listeners(port: int, count: int) -> None:
    """Wait (30 s at most) until ``count`` workers listen on ``port``; the caller asserts."""
    deadline = time.monotonic() + 30
    while listeners_on(port) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_serve_with_workers_runs_that_many_processes_on_one_port(serve: object) -> None:
    process, port = serve("--workers", "3")  # type: ignore[operator]
    wait_for_log_line(process, "listening on")
    wait_until_live(port)
    wait_for_listeners(port, 3)

    assert len(worker_processes(process.pid)) == 3
    assert listeners_on(port) == 3
    for _ in range(20):
        assert get(f"http://127.0.0.1:{port}/health/live")[0] == 200


def test_serve_logs_json_lines_with_one_line_per_request(serve: object) -> None:
    process, port = serve("--workers", "2", WALLET_LOG_FORMAT="json")  # type: ignore[operator]
    assert json.loads(wait_for_log_line(process, "listening on"))["level"] == "INFO"
    wait_until_live(port)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/health/ready", headers={"X-Request-ID": "cli-log-test"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200

    line = wait_for_log_line(process, "cli-log-test")
    entry = json.loads(line)
    assert entry["logger"] == "wallet.access"
    assert (entry["route"], entry["status"], entry["method"]) == ("/health/ready", 200, "GET")
    assert entry["duration_ms"] >= 0


def test_each_worker_logs_its_stop_before_it_exits(serve: object) -> None:
    """Lines wait for a loop timer to be written; the last ones must not go with the loop."""
    process, port = serve("--workers", "2", WALLET_LOG_FORMAT="json")  # type: ignore[operator]
    wait_for_log_line(process, "listening on")
    wait_for_listeners(port, 2)
    process.terminate()
    assert process.stderr is not None
    _, output = process.communicate(timeout=30)
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    stopped = [entry for entry in entries if entry["message"] == "stopped"]
    assert process.returncode == 0, output[-2000:]
    assert len({entry["pid"] for entry in stopped}) == 2


def test_a_server_stopped_while_its_workers_start_leaves_none_behind(serve: object) -> None:
    process, port = serve("--workers", "2")  # type: ignore[operator]
    deadline = time.monotonic() + 30
    while not worker_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.005)
    workers = worker_processes(process.pid)
    assert workers
    assert listeners_on(port) < 2  # still starting
    process.terminate()
    _, output = process.communicate(timeout=30)
    assert process.returncode == 0, output[-2000:]
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_serve_logs_which_database_and_cache_it_uses_without_their_passwords(
    serve: object, database_url: str
) -> None:
    with_password = database_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@")
    assert "s3cret" in with_password  # the server trusts local connections: any password does
    process, _ = serve(WALLET_DATABASE_URL=with_password)  # type: ignore[operator]
    log = "".join(log_until(process, "listening on"))
    database = database_url.rsplit("@", 1)[1]  # 127.0.0.1:5432/wallet_test_…

    assert f"database: PostgreSQL at {database} (WALLET_DATABASE_URL)" in log
    assert "cache: Redis at 127.0.0.1:6379/15 (WALLET_REDIS_URL)" in log
    assert "s3cret" not in log


def run_second_serve(port: int, database_url: str, *args: str) -> tuple[int, str]:
    """Run a second ``serve`` on ``port`` to its end: its exit status and its stderr."""
    env = {**os.environ, "WALLET_DATABASE_URL": database_url, "WALLET_REDIS_URL": ""}
    command = [sys.executable, "-m", "wallet", "serve", "--port", str(port), *args]
    process = subprocess.Popen(
        command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # it joined the port and serves: stop it and its workers
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError(f"a second serve on port {port} started serving") from None
    return process.returncode, stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_second_serve_on_a_port_in_use_refuses_to_start(
    serve: object, database_url: str, workers: str
) -> None:
    first, port = serve("--workers", "2")  # type: ignore[operator]
    wait_for_log_line(first, "listening on")
    wait_for_listeners(port, 2)

    status, stderr = run_second_serve(port, database_url, "--workers", workers)

    assert status == 1, stderr[-2000:]
    assert stderr.strip() == (
        f"wallet: something listens on 127.0.0.1:{port} already: stop it, choose another"
        " --port, or pass --share-port to serve beside it"
    )
    assert listeners_on(port) == 2
    assert first.poll() is None


def test_a_second_serve_with_share_port_joins_the_port(serve: object) -> None:
    first, port = serve("--workers", "2")  # type: ignore[operator]
    wait_for_log_line(first, "listening on")
    wait_for_listeners(port, 2)

    second, _ = serve("--workers", "1", "--share-port", port=port)  # type: ignore[operator]
    wait_for_log_line(second, "listening on")
    wait_for_listeners(port, 3)

    assert listeners_on(port) == 3
    assert (first.poll(), second.poll()) == (None, None)


RST_MARKUP = re.compile(r"``|:(?:func|class|meth|mod|attr|ref|doc):`|`_")


@pytest.mark.parametrize("command", [[], ["serve"], ["migrate"], ["audit"]])
def test_help_is_plain_text(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wallet", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "usage: python -m wallet" in result.stdout
    assert not RST_MARKUP.search(result.stdout), result.stdout
