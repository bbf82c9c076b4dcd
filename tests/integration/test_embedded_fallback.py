"""``serve`` on a machine with no PostgreSQL and no Redis: the embedded PostgreSQL, durable.

The service runs in a network namespace of its own (``unshare --net``), where only a
loopback exists and nothing listens: not the PostgreSQL nor the Redis of this machine.
The test reaches it from inside that namespace (``nsenter``). Needs root, as the
namespace does; pgserver then runs PostgreSQL as a user of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PORT = 5000  # the namespace's own port space: nothing else is there
LISTENING = "0A"

CLIENT = """
import sys, urllib.request
method, url, body = sys.argv[1:]
request = urllib.request.Request(url, data=body.encode() or None, method=method)
request.add_header("Content-Type", "application/json")
with urllib.request.urlopen(request, timeout=10) as response:
    sys.stdout.write(response.read().decode())
"""


class IsolatedNetwork:
    """A network namespace holding only an (up) loopback, kept alive by a sleeping process."""

    def __init__(self) -> None:
        self._holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && echo up && exec sleep infinity"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._holder.stdout is not None
        assert self._holder.stdout.readline() == "up\n", "could not make a network namespace"
        self.enter = ["nsenter", f"--net=/proc/{self._holder.pid}/ns/net"]

    def request(self, method: str, path: str, body: object = None) -> dict[str, object]:
        data = "" if body is None else json.dumps(body)
        result = subprocess.run(
            [*self.enter, sys.executable, "-c", CLIENT, method, f"http://127.0.0.1:{PORT}{path}",
             data],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        answer: dict[str, object] = json.loads(result.stdout)
        return answer

    def close(self) -> None:
        self._holder.kill()
        self._holder.wait(timeout=10)


class EmbeddedService:
    """``python -m wallet serve`` in the namespace, in ``directory``, with nothing configured."""

    def __init__(self, network: IsolatedNetwork, directory: Path) -> None:
        self.network = network
        self.directory = directory
        self.log_path = directory / "service.log"
        self.data_dir = directory / "var" / "postgres"
        unset = ("WALLET_DATABASE_URL", "WALLET_REDIS_URL", "XDG_RUNTIME_DIR")
        self.env = {name: value for name, value in os.environ.items() if name not in unset}
        self.env |= {"WALLET_LOG_FORMAT": "human", "WALLET_WORKERS": "2"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [*self.network.enter, sys.executable, "-m", "wallet", "serve"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=self.directory, env=self.env, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        self._wait_until_listening()

    def stop(self) -> int:
        """SIGTERM, as an operator stops it; its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def log(self) -> str:
        return self.log_path.read_text()

    def kill_leftovers(self) -> None:
        """After a failed test: the service's processes and the embedded server, if left."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            postmaster = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGQUIT)

    def _wait_until_listening(self) -> None:
        """Until the workers listen, read from the namespace's own /proc/<pid>/net/tcp."""
        assert self.process is not None
        table = Path(f"/proc/{self.process.pid}/net/tcp")
        deadline = time.monotonic() + 90  # initdb and a first start take a while on a busy machine
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited: {self.log()[-3000:]}"
            rows = [row.split() for row in table.read_text().splitlines()[1:]]
            if any(r[1].endswith(f":{PORT:04X}") and r[3] == LISTENING for r in rows):
                return
            time.sleep(0.1)
        raise AssertionError(f"serve never listened: {self.log()[-3000:]}")


@pytest.fixture
def network() -> Iterator[IsolatedNetwork]:
    if os.geteuid() != 0:
        pytest.fail("this test makes a network namespace, which needs root", pytrace=False)
    network = IsolatedNetwork()
    yield network
    network.close()


@pytest.fixture
def service(network: IsolatedNetwork, tmp_path: Path) -> Iterator[EmbeddedService]:
    service = EmbeddedService(network, tmp_path)
    yield service
    service.kill_leftovers()


def test_with_no_database_reachable_the_embedded_one_serves_and_keeps_the_data(
    network: IsolatedNetwork, service: EmbeddedService
) -> None:
    service.start()
    wallet = network.request("POST", "/api/v1/wallets")
    wallet_id = wallet["id"]
    deposit = {"operationType": "DEPOSIT", "amount": "1234567.89"}
    network.request("POST", f"/api/v1/wallets/{wallet_id}/operation", deposit)
    assert service.stop() == 0, service.log()[-3000:]
    assert not (service.data_dir / "postmaster.pid").exists()  # it stopped with the service

    service.start()
    again = network.request("GET", f"/api/v1/wallets/{wallet_id}")
    ledger = network.request("GET", f"/api/v1/wallets/{wallet_id}/operations")
    assert service.stop() == 0, service.log()[-3000:]

    assert again["balance"] == "1234567.89"
    operations = ledger["items"]
    assert isinstance(operations, list)
    assert [(op["operationType"], op["amount"]) for op in operations] == [("DEPOSIT", "1234567.89")]


def test_the_embedded_start_is_named_in_one_line_and_is_otherwise_quiet(
    service: EmbeddedService,
) -> None:
    service.start()
    assert service.stop() == 0, service.log()[-3000:]
    log = service.log()

    assert (
        f"database: embedded PostgreSQL in {service.data_dir};"
        " cache: off (no Redis answers on 127.0.0.1:6379)"
    ) in log
    assert "pgserver" not in log  # its INFO lines: each command it runs, with the output
    assert "XDG_RUNTIME_DIR" not in log  # platformdirs' warning
