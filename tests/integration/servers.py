"""Private servers for fault tests: a redis-server and a PostgreSQL of our own, a TCP proxy."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class PrivateRedis:
    """A redis-server on a free port, in its own directory; stop and start it at will.

    With ``persistent=True`` it keeps its data across restarts (append-only file,
    fsync always), so an outage can leave old entries behind, as a real one can.
    """

    def __init__(self, directory: Path, persistent: bool = False) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed; the fault tests need it")
        self.executable = executable
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else []
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--enable-debug-command", "local",  # DEBUG SLEEP plays a slow server
                *persistence,
                "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until_listening(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; ``cut()`` plays a dead server, ``mend()`` heals.

    While cut, it closes every open connection and refuses new ones, as a stopped
    server does. ``blackhole()`` instead accepts and then never answers, as a
    server behind a dead network does.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._blackholed = False
        self.delay = 0.0  # seconds each chunk waits before it is passed on

    async def start(self) -> None:
        self._blackholed = False
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def blackhole(self) -> None:
        await self.cut()
        self._blackholed = True
        self._server = await asyncio.start_server(self._swallow, "127.0.0.1", self.port)

    async def mend(self) -> None:
        await self.cut()
        await self.start()

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await reader.read()  # read and drop until the client gives up

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.delay:  # a slow network or server: every chunk arrives late
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)


class ServiceProcess:
    """``python -m wallet serve`` in a session of its own, on a free port, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "wallet", "serve", "--port", str(self.port), *self.args]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        wait_until_listening(self.port, timeout=30)

    def kill(self) -> None:
        """SIGKILL to every process of the service: a crash, with no chance to clean up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


POSTGRES_LIB = Path("/usr/lib/postgresql")


def postgres_bin_dir(environ: Mapping[str, str] = os.environ, lib: Path = POSTGRES_LIB) -> Path:
    """Where initdb and pg_ctl are: ``WALLET_TEST_PG_BIN`` when set, else the highest major
    version installed under Debian's ``/usr/lib/postgresql/<major>/bin`` (the major follows
    the distribution: 15 on bookworm, 17 on trixie), else the directory of an ``initdb`` on
    the PATH. A directory without initdb when there is none: PrivatePostgres says so."""
    if environ.get("WALLET_TEST_PG_BIN"):
        return Path(environ["WALLET_TEST_PG_BIN"])
    majors = [d for d in lib.glob("*/bin") if d.parent.name.isdigit() and (d / "initdb").exists()]
    if majors:
        return max(majors, key=lambda d: int(d.parent.name))
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else lib / "<major>" / "bin"


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb on a temporary directory), to stop and start.

    As root it runs as the ``postgres`` user, since PostgreSQL refuses to run as root.
    """

    BIN = postgres_bin_dir()

    def __init__(self) -> None:
        if not (self.BIN / "initdb").exists():
            raise RuntimeError(
                f"PostgreSQL server binaries not found in {self.BIN} (set WALLET_TEST_PG_BIN)"
            )
        self.directory = Path(tempfile.mkdtemp(prefix="wallet-pg-"))
        self.port = free_port()
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        directory = str(self.directory)
        self._run("initdb", "-D", directory, "-A", "trust", "-U", "postgres", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.directory), "-o", options, "-l",
                  str(self.directory / "server.log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory), "-m", "fast", "-w", "stop")

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of the cluster stopped (SIGSTOP), as on a hung host: connections
        stay open and nothing answers, neither queries nor new connections; SIGCONT after."""
        self._signal_cluster(signal.SIGSTOP)
        try:
            yield
        finally:
            self._signal_cluster(signal.SIGCONT)

    def _signal_cluster(self, signal_number: signal.Signals) -> None:
        """The postmaster first, so that it starts no process once its children are listed."""
        postmaster = int((self.directory / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal_number)
        for pid in _children(postmaster):
            with contextlib.suppress(ProcessLookupError):  # a backend that just exited
                os.kill(pid, signal_number)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self._signal_cluster(signal.SIGCONT)  # a frozen cluster would never stop
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self._as_postgres, str(self.BIN / program), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )


def _children(parent: int) -> list[int]:
    """The processes whose parent is ``parent``, read from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (command) state ppid ...": the command may hold spaces and parentheses.
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == parent:
                children.append(int(stat.parent.name))
    return children
