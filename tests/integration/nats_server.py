"""A nats-server of the test's own (JetStream on, on a free port), to kill and start again on
the same store; and a reader of what the stream WALLET_EVENTS holds."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from nats.js.errors import NotFoundError

from tests.integration.servers import free_port, wait_until_listening
from wallet.adapters.nats_stream import MSG_ID, STREAM

SEARCHED = ("/usr/sbin/nats-server", "/usr/bin/nats-server")


def nats_server() -> str:
    """The nats-server executable; its absence fails the run (``make test`` installs it)."""
    found = shutil.which("nats-server") or next((p for p in SEARCHED if Path(p).exists()), None)
    if found is None:
        raise RuntimeError(
            "nats-server is not installed; the relay tests need it (apt-get install nats-server,"
            " as `make test` and .ci/run do)"
        )
    return found


class PrivateNats:
    """nats-server -js on 127.0.0.1 and a free port, storing under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.executable = nats_server()
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        store = self.directory / "store"
        with (self.directory / "nats.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.executable,
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-sd",
                    str(store),
                ],
                stdout=log,
                stderr=log,
            )
        wait_until_listening(self.port)

    def kill(self) -> None:
        """SIGKILL: a crash, with whatever it had not written to its store lost."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@dataclass(frozen=True)
class Message:
    sequence: int
    subject: str
    msg_id: str
    body: bytes


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[Any]:
    """A JetStream context on ``url`` for the test to look with."""
    client = await nats.connect(url, connect_timeout=5, allow_reconnect=False)
    try:
        yield client.jetstream(timeout=5)
    finally:
        await client.close()


async def stored_messages(url: str) -> list[Message]:
    """Every message of WALLET_EVENTS, in stream order (none when it does not exist yet)."""
    async with connected(url) as js:
        try:
            info = await js.stream_info(STREAM)
        except NotFoundError:
            return []
        sequences = range(info.state.first_seq, info.state.last_seq + 1)
        found: list[Message] = []
        for start in range(0, len(sequences), 200):
            chunk = sequences[start : start + 200]
            raw = await asyncio.gather(*(js.get_msg(STREAM, seq=s) for s in chunk))
            found += [
                Message(m.seq, m.subject, (m.headers or {}).get(MSG_ID, ""), m.data) for m in raw
            ]
        return found


async def stored_count(url: str) -> int:
    """How many messages WALLET_EVENTS holds now (0 when unreachable or missing)."""
    with contextlib.suppress(OSError, TimeoutError, nats.errors.Error):
        async with connected(url) as js:
            return int((await js.stream_info(STREAM)).state.messages)
    return 0
