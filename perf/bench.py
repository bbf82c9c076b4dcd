"""Side-by-side benchmark: our service against a bare aiohttp app, PostgreSQL's own
single-row ceiling and, where it is present, the seed baseline, all measured in one run on
this machine. Everything it needs is in this repository; ``../shared`` is optional.

    make bench                                   # = .venv/bin/python perf/bench.py
    make bench-smoke                             # = .venv/bin/python perf/bench.py --smoke
    .venv/bin/python perf/bench.py --duration 5 --workers 2
    .venv/bin/python perf/bench.py --only ours,bare --ours-scenarios hot,read
    .venv/bin/python perf/bench.py --only ours,pgbench --ours-scenarios transfer-hot
    .venv/bin/python perf/bench.py --only ours --ours-scenarios hot,read --baseline-rev dedf1ef

What it runs (the machine is small and noisy, so every figure is read as a ratio between
systems measured in the same run, scenario by scenario, back to back):

* ours     ``python -m wallet serve --workers N`` on a database of its own, created by the
           run as ``wallet_bench_<random>`` and dropped at its end, and a redis-server of
           its own on a free port, stopped at the end (no database or Redis DB that
           another run may be using is touched);
* seed     the seed's Flask stack, ``<shared>/bench/seed_baseline/run.sh PORT``, on a database
           of its own and the private Redis; skipped with a note when it is not there;
* bare     ``perf/bare_app.py --workers N``: aiohttp with no storage, the framework ceiling;
* pgbench  ``perf/pgbench_hot_update.sql`` (one ``UPDATE`` of one row) from 8 clients on a
           scratch database of its own: the single-row update ceiling of this PostgreSQL,
           run right before ours' ``hot``; and ``perf/pgbench_hot_transfer.sql`` (one
           transfer a transaction: a random payer of 256 pays one payee, two ledger rows),
           the same way right before ours' ``transfer-hot``. Each runs when ours'
           scenarios (``--ours-scenarios``) have its scenario;
* fixed    ``perf/fixed_rate.py``: an open-loop 1000 DEPOSIT/s on one wallet of ours;
* walletbench  ``<shared>/bench/walletbench.py hot`` (and ``transfer-hot``) against ours,
           right after ours' own run of it, a cross-check of our load driver; skipped with
           a note when it is not there;
* ours@REV with ``--baseline-rev REV``: the same service at another git revision of this
           repository, from a ``git worktree`` of REV in a temporary directory (removed at
           the end), run by the same interpreter with the worktree first on its path, on a
           database of its own and db 2 of the Redis. Each of ours' scenarios then runs
           ``--rounds`` times as REV, HEAD, REV, HEAD, ... and the report adds, scenario by
           scenario, the median rps of each, their ratio (HEAD / REV) and the median p99s.
           HEAD means this working tree, uncommitted edits included.

Ours' scenarios are wallet_load.py's: hot, mixed, spread, read and the transfers of contract
v2, transfer-hot and transfer-spread (the seed and bare have no transfers: their defaults
leave them out).

Load comes from ``perf/wallet_load.py`` (wrk with ``perf/wallet_load.lua``). The output is
one table (rps, p50, p99, non-2xx, socket errors and the balance check of every run), the
ratios between systems, and every command that ran; the raw JSON lines, the table and the
servers' logs go to ``--out DIR/run-<timestamp>/``.

Exit status: 0 when every run of ours answered only 2xx, had no socket error and passed its
balance check; 1 when one did not (the correctness gate -- timings never fail a run);
2 when the harness could not run something; 130 when interrupted. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib import error, parse, request

REPO = Path(__file__).resolve().parent.parent
PERF = REPO / "perf"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"

SYSTEMS = ("ours", "seed", "bare")
PARTS = (*SYSTEMS, "pgbench", "fixed", "walletbench")
OURS = ("ours", "walletbench")  # the labels of runs against our service: the gate's
HEAD = "HEAD"  # ours as this working tree has it, beside a --baseline-rev
BASELINE_REDIS_DB = 2  # ours uses db 0 of the Redis, the seed db 1
DATABASE_PREFIX = "wallet_bench"
LOAD_DRIVER = PERF / "wallet_load.py"
PGBENCH_CLIENTS = 8
TRANSFER_PAYERS = 256  # transfer-hot's payers: wallet_load.py's --transfer-wallets default
LOAD_SCENARIOS = ("hot", "mixed", "spread", "read", "transfer-hot", "transfer-spread", "hold-hot")
OURS_SCENARIOS = ",".join(LOAD_SCENARIOS)
DEPOSIT_SCENARIOS = "hot,mixed,spread,read"  # the seed's: it has no transfers
HOST = "127.0.0.1"
NO_WALLET = "00000000-0000-4000-8000-000000000000"
CROSSCHECKED = ("hot", "transfer-hot")
CEILING_OF = {"hold-hot": "hot"}  # pgbench's ceiling a scenario of ours is held to, if not its own
MEASURED_IN = {
    "hold-hot": "pairs_per_s"
}  # a hold placed and captured: two requests  # scenarios walletbench repeats right after ours

RATIOS = (
    ("ours-hot / pgbench tps", ("ours", "hot"), ("pgbench", "hot")),
    ("ours-transfer-hot / pgbench tps", ("ours", "transfer-hot"), ("pgbench", "transfer-hot")),
    ("ours-hold-hot pairs / pgbench tps", ("ours", "hold-hot"), ("pgbench", "hot")),
    ("ours-hot / seed-hot", ("ours", "hot"), ("seed", "hot")),
    ("ours-hot / bare-hot", ("ours", "hot"), ("bare", "hot")),
    ("ours-mixed / seed-mixed", ("ours", "mixed"), ("seed", "mixed")),
    ("ours-spread / seed-spread", ("ours", "spread"), ("seed", "spread")),
    ("ours-read / bare-read", ("ours", "read"), ("bare", "read")),
    ("ours-hot / walletbench-hot", ("ours", "hot"), ("walletbench", "hot")),
    (
        "ours-transfer-hot / walletbench",
        ("ours", "transfer-hot"),
        ("walletbench", "transfer-hot"),
    ),
)

Result = dict[str, Any]


@dataclass(frozen=True)
class Ceiling:
    """A pgbench workload: PostgreSQL alone doing the storage work of one of ours' scenarios."""

    script: Path
    setup: str  # SQL run on the scratch database first
    options: tuple[str, ...]
    what: str  # the table's scenario column


PGBENCH = {
    "hot": Ceiling(
        PERF / "pgbench_hot_update.sql",
        "CREATE TABLE acct(id int primary key, balance bigint not null); "
        "INSERT INTO acct VALUES (1, 0)",
        (),
        "update 1 row",
    ),
    "transfer-hot": Ceiling(
        PERF / "pgbench_hot_transfer.sql",
        # wallet 0 is the payee, 1..TRANSFER_PAYERS the payers, funded for any run; cents
        "CREATE TABLE wallet (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0)); "
        "CREATE TABLE ledger (id bigserial PRIMARY KEY, wallet_id int NOT NULL, "
        "amount bigint NOT NULL, balance_after bigint NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now()); "
        "CREATE INDEX ON ledger (wallet_id, id); "
        "INSERT INTO wallet SELECT n, CASE n WHEN 0 THEN 0 ELSE 100000000000000 END "
        f"FROM generate_series(0, {TRANSFER_PAYERS}) n",
        ("-D", f"payers={TRANSFER_PAYERS}"),
        f"transfer {TRANSFER_PAYERS}->1",
    ),
}


class HarnessError(Exception):
    """Something the benchmark needs could not be started or run."""


@dataclass
class Postgres:
    """Where the PostgreSQL server is, as libpq command-line arguments."""

    host: str
    port: int
    user: str

    @classmethod
    def from_url(cls, url: str) -> Postgres:
        parts = parse.urlsplit(url)
        return cls(parts.hostname or HOST, parts.port or 5432, parts.username or "postgres")

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user]


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Run:
    """One benchmark run: its output directory, the commands it ran, what it measured."""

    out: Path
    commands: list[str] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    harness_errors: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def jsonl(self) -> Path:
        return self.out / "results.jsonl"

    def note(
        self, cmd: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path = REPO
    ) -> None:
        prefix = [f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()]
        line = " ".join([*prefix, shlex.join(cmd)])
        self.commands.append(line if cwd == REPO else f"(cd {shlex.quote(str(cwd))} && {line})")

    def record(self, result: Result, *, write: bool) -> Result:
        """Keep a result; `write` it to results.jsonl unless its tool already did."""
        self.results.append(result)
        if write:
            with self.jsonl.open("a") as f:
                f.write(json.dumps(result) + "\n")
        return result

    def skip(self, part: str, why: str) -> None:
        """A part the run leaves out because what it needs is not there: a note, no error."""
        self.skipped[part] = why
        print(f"bench: skipping {part}: {why}", file=sys.stderr, flush=True)

    def failed(self, label: str, scenario: str, message: str) -> Result:
        self.harness_errors.append(f"{label} {scenario}: {message}")
        return self.record({"label": label, "scenario": scenario, "error": message}, write=True)


# --- processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def python_for_services() -> str:
    """The venv's python (aiohttp, the service) when there is one."""
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


def spawn(
    cmd: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path = REPO
) -> subprocess.Popen[bytes]:
    """Start `cmd` in a process group of its own, output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def group_alive(pgid: int) -> bool:
    """Whether a process group still has a live (not zombie) member."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: zombies count as alive
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            state, _ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
            if int(pgrp) == pgid and state not in ("Z", "X"):
                return True
    return False


def stop(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM the whole process group; SIGKILL whatever is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_tool(cmd: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a load tool in its own process group, which is stopped whatever happens."""
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:  # timeout, Ctrl-C, SIGTERM: no wrk left behind
        stop(proc, grace=2)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except error.HTTPError as answer:
        return answer.code
    except (error.URLError, OSError):
        return None


def log_tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_ready(server: Server, path: str, *, want_200: bool, timeout: float) -> None:
    """Poll `path` until it answers (200, or any HTTP status); fail if the process dies."""
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise HarnessError(
                f"{server.name} exited with {server.proc.returncode}; "
                f"{server.log}:\n{log_tail(server.log)}"
            )
        status = http_status(server.url + path)
        if status == 200 or (status is not None and not want_200):
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"{server.name} not ready after {timeout:.0f} s; see {server.log}")
        time.sleep(0.3)


# --- databases -----------------------------------------------------------------------


def psql(run: Run, pg: Postgres, database: str, sql: str) -> None:
    cmd = ["psql", *pg.args(), "-d", database, "-v", "ON_ERROR_STOP=1", "-qc", sql]
    run.note(cmd)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HarnessError(f"{shlex.join(cmd)} failed: {done.stderr.strip()}")


def own_database(run: Run, pg: Postgres, stack: contextlib.ExitStack, purpose: str) -> str:
    """A database created for this run under a name no other run uses, dropped when `stack`
    closes (after the servers registered later have stopped). CREATE fails on a name taken,
    so nothing that was there before is ever dropped."""
    name = f"{DATABASE_PREFIX}_{purpose}_{secrets.token_hex(4)}"
    psql(run, pg, "postgres", f"CREATE DATABASE {name}")
    stack.callback(drop_database, run, pg, name)
    return name


def drop_database(run: Run, pg: Postgres, name: str) -> None:
    try:
        psql(run, pg, "postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    except HarnessError as problem:
        run.harness_errors.append(f"could not drop {name}: {problem}")


def own_redis(run: Run, stack: contextlib.ExitStack) -> str:
    """A redis-server of this run's own on a free port, no persistence: its URL (db 0)."""
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="wallet-bench-redis-"))
    stack.callback(shutil.rmtree, directory, ignore_errors=True)
    cmd = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly"]
    cmd += ["no", "--dir", str(directory)]
    server = launch("redis", cmd, {}, port, run, stack)
    deadline = time.monotonic() + 30
    while not listening(port):
        if server.proc.poll() is not None or time.monotonic() > deadline:
            raise HarnessError(f"redis-server did not start; {server.log}:\n{log_tail(server.log)}")
        time.sleep(0.05)
    return f"redis://{HOST}:{port}/0"


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


# --- the systems under test ----------------------------------------------------------


def start_ours(args: argparse.Namespace, run: Run, stack: contextlib.ExitStack) -> Server:
    database = own_database(run, args.pg, stack, "ours")
    port = free_port()
    env = {"WALLET_DATABASE_URL": args.pg.url(database), "WALLET_REDIS_URL": args.redis_url}
    cmd = [python_for_services(), "-m", "wallet", "serve", "--host", HOST, "--port", str(port)]
    cmd += ["--workers", str(args.workers)]
    server = launch(ours_label(args, HEAD), cmd, env, port, run, stack)
    wait_ready(server, "/health/ready", want_200=True, timeout=120)
    return server


def start_baseline(args: argparse.Namespace, run: Run, stack: contextlib.ExitStack) -> Server:
    """Ours at `--baseline-rev`: its worktree's package, the same interpreter and settings."""
    tree = worktree(run, args.baseline, stack)
    env = {"PYTHONPATH": str(tree)}  # spawned workers too import the worktree's package
    imported = package_source(tree, env)
    if not imported.is_relative_to(tree):
        raise HarnessError(f"the baseline imports {imported}, not the worktree at {tree}")
    database = own_database(run, args.pg, stack, "baseline")
    port = free_port()
    env |= {"WALLET_DATABASE_URL": args.pg.url(database)}
    env |= {"WALLET_REDIS_URL": args.redis_url.rpartition("/")[0] + f"/{BASELINE_REDIS_DB}"}
    cmd = [python_for_services(), "-m", "wallet", "serve", "--host", HOST, "--port", str(port)]
    cmd += ["--workers", str(args.workers)]
    server = launch(ours_label(args, args.baseline), cmd, env, port, run, stack, cwd=tree)
    wait_ready(server, "/health/ready", want_200=True, timeout=120)
    return server


def ours_label(args: argparse.Namespace, revision: str) -> str:
    """`ours`, or `ours@REV` when the run sets ours at two revisions side by side."""
    return f"ours@{revision}" if args.baseline else "ours"


def system_of(label: str) -> str:
    return label.partition("@")[0]


# --- another revision of this repository ---------------------------------------------


def git(*argv: str) -> list[str]:
    return ["git", "-C", str(REPO), *argv]


def resolve_revision(revision: str) -> str:
    """The short hash of `revision`, a commit of this repository, or a HarnessError."""
    cmd = git("rev-parse", "--verify", "--quiet", "--short", f"{revision}^{{commit}}")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise HarnessError(f"--baseline-rev {revision}: not a commit of {REPO}")
    return done.stdout.strip()


def worktree_commands(path: Path, revision: str) -> tuple[list[str], list[str]]:
    """The commands that check `revision` out at `path` and remove that checkout again."""
    add = git("worktree", "add", "--detach", str(path), revision)
    return add, git("worktree", "remove", "--force", str(path))


def worktree(run: Run, revision: str, stack: contextlib.ExitStack) -> Path:
    """A checkout of `revision` in a temporary directory, removed when `stack` closes (after
    the servers registered later have stopped), the removal registered before the checkout
    starts so that an interrupted or failed one is removed too."""
    parent = Path(tempfile.mkdtemp(prefix="wallet-bench-rev-"))
    path = parent / revision
    add, remove = worktree_commands(path, revision)
    stack.callback(remove_worktree, run, remove, parent)
    run.note(add)
    done = subprocess.run(add, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HarnessError(f"{shlex.join(add)} failed: {done.stderr.strip()}")
    return path


def remove_worktree(run: Run, remove: list[str], parent: Path) -> None:
    run.note(remove)
    done = subprocess.run(remove, capture_output=True, text=True, check=False)
    if done.returncode != 0 and Path(remove[-1]).exists():
        run.harness_errors.append(f"{shlex.join(remove)} failed: {done.stderr.strip()}")
    shutil.rmtree(parent, ignore_errors=True)


def package_source(tree: Path, env: Mapping[str, str]) -> Path:
    """Where `python -m wallet` run in `tree` with `env` imports the package from (the
    editable install of this checkout must not shadow the worktree's)."""
    cmd = [python_for_services(), "-c", "import wallet; print(wallet.__file__)"]
    done = subprocess.run(
        cmd, cwd=tree, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise HarnessError(f"the baseline cannot import wallet: {done.stderr.strip()}")
    return Path(done.stdout.strip()).resolve()


def start_seed(args: argparse.Namespace, run: Run, stack: contextlib.ExitStack) -> Server:
    script = seed_script(args)
    database = own_database(run, args.pg, stack, "seed")
    port = free_port()
    env = {"DB_NAME": database, "PGHOST": args.pg.host, "PGPORT": str(args.pg.port)}
    env |= {"PGUSER": args.pg.user, "REDIS_URL": args.redis_url.rpartition("/")[0] + "/1"}
    server = launch("seed", [str(script), str(port)], env, port, run, stack)
    # the first start installs Flask & co. into a venv under /tmp
    wait_ready(server, f"/api/v1/wallets/{NO_WALLET}", want_200=False, timeout=900)
    return server


def seed_script(args: argparse.Namespace) -> Path:
    return Path(args.shared) / "bench" / "seed_baseline" / "run.sh"


def walletbench_script(args: argparse.Namespace) -> Path:
    return Path(args.shared) / "bench" / "walletbench.py"


def start_bare(args: argparse.Namespace, run: Run, stack: contextlib.ExitStack) -> Server:
    port = free_port()
    cmd = [python_for_services(), str(PERF / "bare_app.py"), "--host", HOST, "--port", str(port)]
    cmd += ["--workers", str(args.workers)]
    server = launch("bare", cmd, {}, port, run, stack)
    wait_ready(server, "/health/ready", want_200=True, timeout=60)
    return server


def launch(
    name: str,
    cmd: list[str],
    env: dict[str, str],
    port: int,
    run: Run,
    stack: contextlib.ExitStack,
    cwd: Path = REPO,
) -> Server:
    """Spawn a server and register its stop with `stack` before anything can fail."""
    print(f"bench: starting {name} on port {port}", file=sys.stderr, flush=True)
    run.note(cmd, env, cwd)
    log = run.out / f"{name}.log"
    proc = spawn(cmd, env, log, cwd)
    stack.callback(stop, proc)
    return Server(name, f"http://{HOST}:{port}", proc, log)


# --- the load ------------------------------------------------------------------------


def pgbench_plan(args: argparse.Namespace) -> list[str]:
    """The scenarios whose pgbench ceiling the run measures: those ours runs, or would."""
    if "pgbench" not in args.only:
        return []
    ours = {
        CEILING_OF.get(name, name) for name in (s.partition(":")[0] for s in args.scenarios["ours"])
    }
    return [scenario for scenario in PGBENCH if scenario in ours]


def run_pgbench(args: argparse.Namespace, run: Run, scenario: str = "hot") -> Result:
    ceiling = PGBENCH[scenario]
    print(f"bench: pgbench ceiling of {scenario}", file=sys.stderr, flush=True)
    with contextlib.ExitStack() as scratch:
        database = own_database(run, args.pg, scratch, "pgbench")
        psql(run, args.pg, database, ceiling.setup)
        cmd = ["pgbench", "-n", "-M", "prepared", "-c", str(PGBENCH_CLIENTS), "-j", "2"]
        cmd += ["-T", str(args.duration), *ceiling.options, "-f", str(ceiling.script)]
        cmd += [*args.pg.args(), database]
        run.note(cmd)
        try:
            done = run_tool(cmd, timeout=args.duration + 120)
        except subprocess.TimeoutExpired:
            return run.failed("pgbench", scenario, "pgbench timed out")
    with (run.out / "pgbench.log").open("a") as log:
        log.write(f"$ {shlex.join(cmd)}\n{done.stdout}{done.stderr}\n")
    tps = re.search(r"^tps = ([\d.]+)", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not tps:
        return run.failed("pgbench", scenario, f"exit {done.returncode}: {done.stderr.strip()}")
    latency = re.search(r"^latency average = ([\d.]+) ms", done.stdout, re.MULTILINE)
    result: Result = {
        "label": "pgbench",
        "scenario": scenario,
        "connections": PGBENCH_CLIENTS,
        "duration_s": args.duration,
        "rps": float(tps.group(1)),
        "latency_avg_ms": float(latency.group(1)) if latency else None,
    }
    return run.record(result, write=True)


def json_lines(text: str) -> list[Result]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def run_load(
    args: argparse.Namespace, run: Run, server: Server, spec: str, driver: Path = LOAD_DRIVER
) -> Result:
    """One scenario of `driver` against `server`; a row even when its checks failed."""
    label = server.name if driver == LOAD_DRIVER else driver.stem
    print(f"bench: {driver.name} {label} {spec}", file=sys.stderr, flush=True)
    cmd = [sys.executable, str(driver), server.url, spec, "-d", str(args.duration)]
    cmd += ["-c", str(args.connections), "--label", label, "--json", str(run.jsonl)]
    run.note(cmd)
    scenario = spec.partition(":")[0]
    try:
        done = run_tool(cmd, timeout=4 * args.duration + 600)
    except subprocess.TimeoutExpired:
        return run.failed(label, scenario, f"{driver.name} timed out")
    with (run.out / f"{driver.stem}.log").open("a") as log:
        log.write(f"$ {shlex.join(cmd)}\n{done.stdout}{done.stderr}\n")
    rows = json_lines(done.stdout)
    if not rows:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return run.failed(label, scenario, f"{driver.name} exit {done.returncode}: {tail}")
    return run.record(rows[0], write=False)


def run_fixed_rate(args: argparse.Namespace, run: Run, server: Server) -> Result:
    print(f"bench: fixed rate {args.rate:g}/s on {server.name}", file=sys.stderr, flush=True)
    cmd = [python_for_services(), str(PERF / "fixed_rate.py"), server.url]
    cmd += ["--rate", f"{args.rate:g}", "--duration", str(args.duration)]
    cmd += ["--label", server.name, "--json", str(run.jsonl)]
    run.note(cmd)
    try:
        done = run_tool(cmd, timeout=2 * args.duration + 120)
    except subprocess.TimeoutExpired:
        return run.failed(server.name, "fixed_rate", "fixed_rate.py timed out")
    (run.out / "fixed_rate.log").write_text(done.stdout + done.stderr)
    rows = json_lines(done.stdout)
    if not rows:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return run.failed(server.name, "fixed_rate", f"exit {done.returncode}: {tail}")
    return run.record(rows[0], write=False)


def plan(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(system, scenario spec) pairs, scenario by scenario, the systems back to back; with a
    baseline, each of ours' scenarios `--rounds` times as baseline, ours, baseline, ours..."""
    specs = {name: args.scenarios[name] for name in SYSTEMS if name in args.only}
    order: list[str] = []
    for name_specs in specs.values():
        order += [s.partition(":")[0] for s in name_specs if s.partition(":")[0] not in order]
    pairs = [(name, spec) for name, name_specs in specs.items() for spec in name_specs]
    pairs.sort(key=lambda p: (order.index(p[1].partition(":")[0]), SYSTEMS.index(p[0])))
    if not args.baseline:
        return pairs
    expanded: list[tuple[str, str]] = []
    for name, spec in pairs:
        expanded += (
            [("baseline", spec), (name, spec)] * args.rounds if name == "ours" else [(name, spec)]
        )
    return expanded


def start_servers(
    args: argparse.Namespace, run: Run, stack: contextlib.ExitStack
) -> dict[str, Server]:
    """Start what the run needs; a baseline that fails to start is reported and skipped."""
    starters = {"ours": start_ours, "seed": start_seed, "bare": start_bare}
    servers = {}
    for name in SYSTEMS:
        if name == "seed" and "seed" in args.only and not seed_script(args).exists():
            run.skip("seed", f"no seed baseline at {seed_script(args)} (--shared)")
            continue
        if name in args.only or (
            name == "ours" and ("fixed" in args.only or "walletbench" in args.only)
        ):
            try:
                servers[name] = starters[name](args, run, stack)
            except HarnessError as problem:
                if name == "ours":
                    raise
                run.failed(name, "start", str(problem))
    if args.baseline and "ours" in args.only:
        servers["baseline"] = start_baseline(args, run, stack)
    return servers


def preflight(args: argparse.Namespace) -> None:
    """Fail early, and clearly, when a tool is missing (the shared files are optional)."""
    tools = ["psql", "wrk"] + ([] if args.redis_url else ["redis-server"])
    tools += ["pgbench"] if "pgbench" in args.only else []
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        raise HarnessError(
            f"missing: {', '.join(missing)} (e.g. apt-get install {' '.join(missing)})"
        )


def measure(args: argparse.Namespace, run: Run, stack: contextlib.ExitStack) -> None:
    preflight(args)
    args.redis_url = args.redis_url or own_redis(run, stack)
    servers = start_servers(args, run, stack)
    time.sleep(1)  # let every worker of every server come up
    ceilings = pgbench_plan(args)
    if "pgbench" in args.only and not ceilings:
        run.skip("pgbench", f"ours runs none of {', '.join(PGBENCH)} (--ours-scenarios)")
    if "ours" not in args.only:  # nothing of ours to run them beside
        for scenario in ceilings:
            run_pgbench(args, run, scenario)
        ceilings = []
    crosscheck = list(CROSSCHECKED) if "walletbench" in args.only else []
    if crosscheck and not walletbench_script(args).exists():
        run.skip("walletbench", f"no shared harness at {walletbench_script(args)} (--shared)")
        crosscheck = []
    crosschecked = False
    for name, spec in plan(args):
        if spec.partition(":")[0] in ceilings:  # right before ours' first run of it
            ceilings.remove(spec.partition(":")[0])
            run_pgbench(args, run, spec.partition(":")[0])
        if name in servers:
            time.sleep(args.pause)
            run_load(args, run, servers[name], spec)
        if name == "ours" and spec.partition(":")[0] in crosscheck:
            crosscheck.remove(spec.partition(":")[0])
            crosschecked = True
            time.sleep(args.pause)  # right after our own driver's run, for a fair comparison
            run_load(args, run, servers["ours"], spec, walletbench_script(args))
    if crosscheck and not crosschecked:  # ours ran neither scenario of its own
        time.sleep(args.pause)
        run_load(args, run, servers["ours"], "hot", walletbench_script(args))
    if "fixed" in args.only:
        time.sleep(args.pause)
        run_fixed_rate(args, run, servers["ours"])


# --- the report ----------------------------------------------------------------------


def socket_errors(result: Result) -> int:
    if "socket_errors" in result:
        return sum(result["socket_errors"].values())
    return int(result.get("errors", 0))


def server_errors(result: Result) -> int:
    if "status" in result:
        return int(result["status"]["s5xx"])
    return sum(n for status, n in result.get("statuses", {}).items() if int(status) >= 500)


def balance_check(result: Result) -> str:
    if result["label"] == "bare":
        return "n/a (constant balance)"
    ok = "ok" if result.get("balance_ok") else "BAD"
    if "lost_updates" in result:  # hot, spread, fixed_rate, transfer-*
        ok += f" lost={result['lost_updates']}" if result["lost_updates"] else ""
        ok += f" unacked={result['unacked_applied']}" if result["unacked_applied"] else ""
        ok += f" sum={result['sum_diff']}" if Decimal(result.get("sum_diff", 0)) else ""
        ok += f" negative={result['negative_wallets']}" if result.get("negative_wallets") else ""
        ok += f" short={result['payers_short']}" if result.get("payers_short") else ""
    elif "balance_diff" in result:  # mixed
        ok += f" diff={result['balance_diff']}"
    elif not result.get("balance_ok"):  # read
        ok = "CHANGED"
    if "send_lag_max_ms" in result:
        ok += f" (client lag max {result['send_lag_max_ms']:.0f} ms)"
    return ok


def table_row(r: Result) -> list[str]:
    label, scenario = r["label"], r["scenario"]
    if "error" in r:
        return [label, scenario, *["-"] * 7, f"ERROR {r['error'].replace(chr(10), ' | ')[:100]}"]
    if label == "pgbench":
        avg = r.get("latency_avg_ms")
        note = f"n/a (latency avg {avg:.1f} ms)" if avg is not None else "n/a"
        what = PGBENCH[scenario].what if scenario in PGBENCH else scenario
        return [label, what, str(r["connections"]), f"{r['rps']:.0f}", *["-"] * 5, note]
    if scenario == "fixed_rate":
        scenario, conns, rps = f"fixed {r['target_rps']:g}/s", "open", r["achieved_rps"]
    else:
        conns, rps = str(r["connections"]), r["rps"]
    return [
        label,
        scenario,
        conns,
        f"{rps:.0f}",
        f"{r['p50_ms']:.1f}",
        f"{r['p99_ms']:.1f}",
        str(r["non_2xx"]),
        str(server_errors(r)),
        str(socket_errors(r)),
        balance_check(r),
    ]


def render_table(results: list[Result]) -> str:
    head = ["system", "scenario", "conns", "rps", "p50 ms", "p99 ms", "non-2xx", "5xx"]
    head += ["sock err", "balance"]
    rows = [head] + [table_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
    return "\n".join(
        "  ".join([*(cell.rjust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    )


def throughput(results: list[Result], label: str, scenario: str, key: str = "rps") -> float | None:
    """The median rps (or `key`) of `label`'s runs of `scenario` (ours: at HEAD)."""
    labels = (label, f"{label}@{HEAD}")
    return median(
        r[key] for r in results if r["label"] in labels and r["scenario"] == scenario and key in r
    )


def median(values: Iterable[float]) -> float | None:
    found = [float(v) for v in values if v is not None]
    return statistics.median(found) if found else None


@dataclass
class Comparison:
    """One scenario of ours at HEAD against ours at the baseline: medians over rounds."""

    scenario: str
    runs: tuple[int, int]
    rps: tuple[float | None, float | None]
    p99_ms: tuple[float | None, float | None]

    @property
    def ratio(self) -> float | None:
        head, base = self.rps
        return head / base if head is not None and base else None


def compare(results: list[Result], head: str, base: str) -> list[Comparison]:
    """Scenario by scenario, in the order they ran: the median rps and p99 of the runs of
    `head` and of `base` that measured something (a failed run is left out, and gated)."""
    scenarios = list(dict.fromkeys(r["scenario"] for r in results if r["label"] in (head, base)))
    comparisons = []
    for scenario in scenarios:
        sides = [
            [r for r in results if r["label"] == label and r["scenario"] == scenario and "rps" in r]
            for label in (head, base)
        ]
        comparisons.append(
            Comparison(
                scenario,
                (len(sides[0]), len(sides[1])),
                (median(r["rps"] for r in sides[0]), median(r["rps"] for r in sides[1])),
                (median(r["p99_ms"] for r in sides[0]), median(r["p99_ms"] for r in sides[1])),
            )
        )
    return comparisons


def render_comparison(results: list[Result], revision: str) -> str:
    head, base = f"ours@{HEAD}", f"ours@{revision}"
    lines = [f"{HEAD} against {revision} (medians over the rounds of one run; ratio = HEAD / REV):"]
    rows = [["scenario", "runs", f"rps {HEAD}", f"rps {revision}", "ratio"]]
    rows[0] += [f"p99 ms {HEAD}", f"p99 ms {revision}"]
    for c in compare(results, head, base):
        cells = [c.scenario, f"{c.runs[0]}+{c.runs[1]}"]
        cells += [f"{v:.0f}" if v is not None else "n/a" for v in c.rps]
        cells += [f"{c.ratio:.2f}x" if c.ratio is not None else "n/a"]
        cells += [f"{v:.1f}" if v is not None else "n/a" for v in c.p99_ms]
        rows.append(cells)
    if len(rows) == 1:
        return lines[0] + "\n  none: ours ran no scenario"
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += [
        "  " + "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
    ]
    return "\n".join(lines)


def render_ratios(results: list[Result], parts: Sequence[str]) -> str:
    lines = ["ratios (same run):"]
    width = max(len(title) for title, _, _ in RATIOS)
    for title, (a_label, a_scen), (b_label, b_scen) in RATIOS:
        if a_label not in parts or b_label not in parts:
            continue
        key = MEASURED_IN.get(a_scen, "rps")
        a, b = throughput(results, a_label, a_scen, key), throughput(results, b_label, b_scen)
        if a is None and b is None and not any(r["scenario"] == a_scen for r in results):
            continue  # neither side ran it: not in this run's plan
        value = f"{a / b:6.2f}x  ({a:.0f} / {b:.0f})" if a is not None and b else "   n/a"
        p99 = throughput(results, a_label, a_scen, "p99_ms") if b_label == "pgbench" else None
        value += f", {a_label} p99 {p99:.1f} ms" if p99 is not None else ""
        lines.append(f"  {title:<{width}} {value}")
    if len(lines) == 1:
        lines.append("  none: they need two systems in the run")
    for r in results:
        if r["scenario"] == "fixed_rate" and "error" not in r:
            lines.append(
                f"  fixed rate: {r['label']} offered {r['target_rps']:g}/s, achieved "
                f"{r['achieved_rps']:.0f}/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                f"max {r['max_ms']:.1f} ms, non-2xx {r['non_2xx']}, errors {r['errors']}, "
                f"balance {balance_check(r)}"
            )
    return "\n".join(lines)


def gate_failures(results: list[Result]) -> list[str]:
    """Why our runs were not correct: any non-2xx, socket error or failed balance check."""
    failures = []
    for r in (r for r in results if system_of(r["label"]) in OURS):
        what = f"{r['label']} {r['scenario']}"
        if "error" in r:
            failures.append(f"{what}: did not run: {r['error']}")
            continue
        if r["non_2xx"]:
            failures.append(f"{what}: {r['non_2xx']} non-2xx answers")
        if socket_errors(r):
            failures.append(f"{what}: {socket_errors(r)} socket errors")
        if not r.get("balance_ok"):
            failures.append(f"{what}: balance check failed ({balance_check(r)})")
    return failures


LOG_LINE = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+) \d+: (.*)$")
EXCEPTION_LINE = re.compile(r"^(\w+(Error|Exception|Interrupt)\b|wallet: ).*")  # or sys.exit


def log_findings(log: Path) -> list[str]:
    """Warnings, errors and exceptions in a server's log: counts of the 5 commonest."""
    if not log.exists():
        return []
    seen: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        if match := LOG_LINE.match(line):
            seen[f"{match[1]} {match[2]}: {match[3][:120]}"] += 1
        elif EXCEPTION_LINE.match(line):
            seen[f"exception: {line[:120]}"] += 1
    if not seen:
        return []
    total = sum(seen.values())
    return [f"{log.name}: {total} lines", *(f"  {n:>6} x {msg}" for msg, n in seen.most_common(5))]


def report(args: argparse.Namespace, run: Run, started: float) -> str:
    parts = [
        render_table(run.results),
        "",
        render_ratios(run.results, [part for part in args.only if part not in run.skipped]),
        "",
        *([render_comparison(run.results, args.baseline), ""] if args.baseline else []),
        f"workers={args.workers} duration={args.duration}s connections={args.connections} "
        + (f"rounds={args.rounds} " if args.baseline else "")
        + f"run time {time.monotonic() - started:.0f} s; raw results in {run.jsonl}",
    ]
    names = dict.fromkeys([*SYSTEMS, ours_label(args, HEAD), ours_label(args, args.baseline)])
    findings = [line for name in names for line in log_findings(run.out / f"{name}.log")]
    if findings:
        parts += ["", "server logs (warnings, errors, exceptions):", *findings]
    if run.skipped:
        notes = (f"  {part}: {why}" for part, why in run.skipped.items())
        parts += ["", "skipped (not there; optional):", *notes]
    parts += ["", "commands:", *(f"  {cmd}" for cmd in run.commands)]
    return "\n".join(parts)


# --- the command line ----------------------------------------------------------------


def scenario_list(text: str) -> list[str]:
    return [s for s in text.split(",") if s]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="processes of ours and bare")
    parser.add_argument("--duration", type=int, help="seconds per scenario (10; --smoke: 5)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument(
        "--only", type=scenario_list, default=list(PARTS), help=f"comma list of {','.join(PARTS)}"
    )
    parser.add_argument(
        "--ours-scenarios", type=scenario_list, default=OURS_SCENARIOS, help=OURS_SCENARIOS
    )
    parser.add_argument("--seed-scenarios", type=scenario_list, default=DEPOSIT_SCENARIOS)
    parser.add_argument("--bare-scenarios", type=scenario_list, default="hot,read")
    parser.add_argument("--rate", type=float, default=1000, help="fixed-rate requests/s")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between runs")
    parser.add_argument("--smoke", action="store_true", help="ours only: hot,mixed,spread, 5 s")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "bench")
    parser.add_argument("--pg", default=f"postgresql://postgres@{HOST}:5432", help="server URL")
    parser.add_argument(
        "--redis-url",
        help="a Redis for ours (db n), the seed (db 1) and the baseline (db 2); "
        "default: a private one",
    )
    parser.add_argument(
        "--baseline-rev",
        metavar="REV",
        help="also run ours at git revision REV of this repository, alternating with HEAD",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="with --baseline-rev: runs of each scenario (2)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds: at least 1")
    unknown = set(args.only) - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))} (choose from {PARTS})")
    if args.smoke:
        args.only, args.ours_scenarios = ["ours"], ["hot", "mixed", "spread"]
    args.duration = args.duration or (5 if args.smoke else 10)
    args.scenarios = {n: getattr(args, f"{n}_scenarios") for n in SYSTEMS}
    for system, specs in args.scenarios.items():
        unknown = {spec.partition(":")[0] for spec in specs} - set(LOAD_SCENARIOS)
        if unknown:
            parser.error(
                f"--{system}-scenarios: unknown {', '.join(sorted(unknown))} "
                f"(choose from {OURS_SCENARIOS})"
            )
    args.pg = Postgres.from_url(args.pg)
    args.shared = args.shared.resolve()
    args.baseline = None
    if args.baseline_rev:
        try:
            args.baseline = resolve_revision(args.baseline_rev)
        except HarnessError as problem:
            parser.error(str(problem))
    return args


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    run = Run(args.out.resolve() / time.strftime("run-%Y%m%d-%H%M%S"))
    run.out.mkdir(parents=True, exist_ok=True)
    try:
        with sigterm_as_interrupt(), contextlib.ExitStack() as stack:
            measure(args, run, stack)
    except KeyboardInterrupt:
        print("bench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except (HarnessError, OSError, subprocess.SubprocessError) as problem:
        run.harness_errors.append(str(problem))
    if run.results:
        text = report(args, run, started)
        (run.out / "table.txt").write_text(text + "\n")
        print(text)
    else:
        with contextlib.suppress(OSError):  # nothing ran: leave no empty run directory
            run.out.rmdir()
    failures = gate_failures(run.results)
    for line in failures + [f"harness: {e}" for e in run.harness_errors]:
        print(f"bench: FAIL {line}", file=sys.stderr)
    if failures:
        return 1
    return 2 if run.harness_errors else 0


if __name__ == "__main__":
    sys.exit(main())
