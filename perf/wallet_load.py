"""Closed-loop load on the wallet API and a balance check after each run: wrk drives the
requests (perf/wallet_load.lua), the standard library sets up wallets and reads balances.

    python perf/wallet_load.py http://127.0.0.1:5000                    # hot mixed spread read
    python perf/wallet_load.py http://127.0.0.1:5000 hot hot:256 -d 10 --label ours --json r.jsonl
    python perf/wallet_load.py http://127.0.0.1:5000 transfer-hot transfer-spread -d 10

Scenarios (``name:C`` runs one with C connections instead of ``--connections``):

* hot     every connection DEPOSITs 1 on one fresh wallet;
* mixed   one funded wallet: DEPOSIT 1, WITHDRAW 1 and GET streams, three wrk processes
          sharing the connections 45/45/10;
* spread  DEPOSIT 1 on a random one of ``--wallets`` fresh wallets;
* read    GET the balance of one wallet;
* transfer-hot     ``--transfer-wallets`` payers (256), each funded with one DEPOSIT of
          ``--fund``, and ONE payee (a merchant): every request transfers
          ``--transfer-amount`` (1.00) from a random payer to the payee;
* transfer-spread  ``--transfer-wallets`` funded wallets: every request transfers from a
          random one of them to a random other one.
* hold-hot  one wallet funded with ``--fund``: every connection places holds of
          ``--transfer-amount`` on it and captures each hold it placed (wrk's thread queues
          the ids of the holds answered and captures them next): pairs of two requests.
(The transfer and hold scenarios are not in the default list: contract v2.
wrk's script puts a random payer, and a random other payee, into each request's body.)

After each run the balance must show exactly what was acknowledged: for deposits, a delta
equal to the 2xx count (``lost_updates``: acknowledged deposits it does not show). A request
still in flight when wrk stops may be applied without wrk seeing its answer; up to that
many (``inflight_at_stop``) are tolerated and reported as ``unacked_applied``. The read
scenario's balance must not move. A transfer moves money and makes none: the sum of the
scenario's balances must come back exactly (``sum_diff``), no wallet may go below zero
(``negative_wallets``), and in transfer-hot the payee's delta must be the acknowledged
transfers times the amount, plus at most the ones in flight, as for deposits; there, when
the 2xx answers name their payer (``fromWalletId``, counted by the Lua script), each payer
must also have paid at least its acknowledged transfers, exactly (``payers_short``).

Output: one JSON line per scenario on stdout (also appended to ``--json FILE``), then a
table. Exit status 1 when a scenario had a non-2xx answer, a socket error or a failed
balance check; 2 when it could not run. Standard library only (and wrk), so any Python runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib import error, request

SCRIPT = Path(__file__).resolve().with_suffix(".lua")
SCENARIOS = ("hot", "mixed", "spread", "read")  # the default list
TRANSFER_SCENARIOS = ("transfer-hot", "transfer-spread", "hold-hot")  # v2, run when named
CREATE_PATH = "/api/v1/wallets"
WALLET_PATH = "/api/v1/wallets/{id}"
OPERATION_PATH = "/api/v1/wallets/{id}/operation"
TRANSFER_PATH = "/api/v1/transfers"
HOLDS_PATH = "/api/v1/wallets/{id}/holds"
CAPTURE_PATH = "/api/v1/holds/{id}/capture"
PAYER, PAYEE = "{from}", "{to}"  # filled per request by wallet_load.lua
PAYER_KEY = "fromWalletId"  # where a 2xx transfer names its payer, counted by the Lua script
UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
MIX = (45, 45, 10)  # deposit, withdraw, read: shares of the mixed scenario's connections
SETUP_THREADS = 8

Result = dict[str, Any]


class LoadError(Exception):
    """The load could not be run (no wrk, a set-up request refused, wrk failed)."""


def operation_body(operation_type: str, amount: int) -> str:
    return json.dumps({"operationType": operation_type, "amount": amount})


def transfer_body(amount: str, payee: str = PAYEE, payer: str = PAYER) -> str:
    """A transfer's body; the Lua script fills the {from} and {to} left in it per request."""
    return json.dumps({"fromWalletId": payer, "toWalletId": payee, "amount": amount})


@dataclass
class Api:
    """The few calls that set a scenario up and check it, one HTTP request each."""

    base: str
    timeout: float = 30.0

    def send(self, method: str, path: str, body: str | None = None) -> tuple[int, bytes]:
        data = body.encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        req = request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with request.urlopen(req, timeout=self.timeout) as response:
                return response.status, response.read()
        except error.HTTPError as answer:
            return answer.code, answer.read()

    def call(self, method: str, path: str, body: str | None = None) -> tuple[int, Any]:
        status, raw = self.send(method, path, body)
        try:
            return status, json.loads(raw, parse_float=Decimal)
        except ValueError:
            return status, None

    def create(self) -> str:
        """A fresh wallet's id: the first UUID in the answer (``id`` or ``walletId``)."""
        status, raw = self.send("POST", CREATE_PATH)
        found = UUID.search(raw.decode(errors="replace"))
        if status // 100 != 2 or found is None:
            raise LoadError(f"creating a wallet answered {status}: {raw[:200]!r}")
        return found.group(0)

    def operate(self, wallet: str, operation_type: str, amount: int) -> None:
        path = OPERATION_PATH.format(id=wallet)
        status, doc = self.call("POST", path, operation_body(operation_type, amount))
        if status // 100 != 2:
            raise LoadError(f"{operation_type} {amount} on {wallet} answered {status}: {doc!r}")

    def balance(self, wallet: str, field: str = "balance") -> Decimal:
        status, doc = self.call("GET", WALLET_PATH.format(id=wallet))
        if status != 200 or not isinstance(doc, dict) or field not in doc:
            raise LoadError(f"reading wallet {wallet} answered {status}: {doc!r}")
        return Decimal(str(doc[field]))

    def wallets(self, count: int) -> list[str]:
        with ThreadPoolExecutor(SETUP_THREADS) as pool:
            return list(pool.map(lambda _: self.create(), range(count)))

    def funded(self, count: int, amount: int) -> list[str]:
        """`count` fresh wallets, each given one DEPOSIT of `amount`."""
        wallets = self.wallets(count)
        with ThreadPoolExecutor(SETUP_THREADS) as pool:
            list(pool.map(lambda wallet: self.operate(wallet, "DEPOSIT", amount), wallets))
        return wallets

    def balances(self, wallets: Sequence[str]) -> tuple[Decimal, ...]:
        with ThreadPoolExecutor(SETUP_THREADS) as pool:
            return tuple(pool.map(self.balance, wallets))

    def total(self, wallets: Sequence[str]) -> Decimal:
        return sum(self.balances(wallets), Decimal(0))


T = TypeVar("T")


def settle(read: Callable[[], T], timeout: float = 30.0, interval: float = 0.5) -> T:
    """Read until two reads in a row agree: requests still queued in the server drain."""
    previous, deadline = read(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        current = read()
        if current == previous:
            return current
        previous = current
    return previous


@dataclass
class Load:
    """How to load: the server, the connections and seconds of each run."""

    url: str
    duration: int
    threads: int
    timeout: int
    workdir: Path

    def start(
        self,
        connections: int,
        wallets: Sequence[str],
        method: str,
        path: str,
        body: str = "",
        track: str = "",
        follow: str = "",
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """One wrk process; its JSON summary lands in the returned file when it exits. With
        `track`, the summary counts 2xx answers by the string under that key of their body;
        with `follow`, each 201's id is POSTed to that path next (``{id}`` in it)."""
        ids = Path(tempfile.mkstemp(dir=self.workdir, suffix=".ids")[1])
        ids.write_text("\n".join(wallets) + "\n")
        out = ids.with_suffix(".json")
        env = {
            **os.environ,
            "WL_IDS": str(ids),
            "WL_METHOD": method,
            "WL_PATH": path,
            "WL_BODY": body,
            "WL_OUT": str(out),
            "WL_TRACK": track,
            "WL_FOLLOW": follow,
            "WL_SEED": str(random.SystemRandom().randrange(1, 2**31)),
        }
        cmd = ["wrk", f"-t{min(self.threads, connections)}", f"-c{connections}"]
        cmd += [f"-d{self.duration}s", f"--timeout={self.timeout}s", "-s", str(SCRIPT), self.url]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL), out

    def finish(self, started: Sequence[tuple[subprocess.Popen[bytes], Path]]) -> list[Result]:
        """Wait for every wrk process; their summaries, with the requests left in flight."""
        summaries = []
        try:
            for proc, out in started:
                if proc.wait() != 0 or not out.exists():
                    raise LoadError(f"wrk exited with {proc.returncode}")
                summary: Result = json.loads(out.read_text())
                summary["inflight"] = max(0, summary["sent"] - summary["requests"])
                summaries.append(summary)
        finally:
            for proc, _ in started:  # an error, Ctrl-C: no wrk left running
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return summaries

    def run(
        self,
        connections: int,
        wallets: Sequence[str],
        method: str,
        path: str,
        body: str = "",
        track: str = "",
        follow: str = "",
    ) -> Result:
        started = self.start(connections, wallets, method, path, body, track, follow)
        return self.finish([started])[0]


def summarise(
    name: str, connections: int, load: Load, runs: list[Result], latency: Result
) -> Result:
    """One scenario's figures; `latency` is the run whose percentiles speak for it."""
    requests = sum(r["requests"] for r in runs)
    seconds = max(r["duration_us"] for r in runs) / 1e6
    status = {key: sum(r[key] for r in runs) for key in ("s2xx", "s4xx", "s5xx", "sother")}
    errors = {key: sum(r[key] for r in runs) for key in ("connect", "read", "write", "timeout")}
    return {
        "scenario": name,
        "connections": connections,
        "threads": load.threads,
        "duration_s": round(seconds, 2),
        "requests": requests,
        "rps": round(requests / seconds, 1) if seconds else 0.0,
        "p50_ms": latency["p50_us"] / 1000,
        "p90_ms": latency["p90_us"] / 1000,
        "p99_ms": latency["p99_us"] / 1000,
        "max_ms": latency["max_us"] / 1000,
        "status": status,
        "non_2xx": status["s4xx"] + status["s5xx"] + status["sother"],
        "socket_errors": errors,
        "inflight_at_stop": sum(r["inflight"] for r in runs),
    }


def deposit_check(result: Result, delta: Decimal, acked: int, inflight: int) -> None:
    """Deposits of 1: the balance grew by the acknowledged ones, plus at most `inflight`."""
    result.update(
        balance_delta=str(delta),
        acked_deposits=acked,
        lost_updates=max(0, acked - int(delta)),
        unacked_applied=max(0, int(delta) - acked),
        balance_ok=acked <= delta <= acked + inflight and delta == int(delta),
    )


def hot(api: Api, load: Load, connections: int, _: argparse.Namespace) -> Result:
    wallet = api.create()
    start = api.balance(wallet)
    run = load.run(connections, [wallet], "POST", OPERATION_PATH, operation_body("DEPOSIT", 1))
    result = summarise("hot", connections, load, [run], run)
    delta = settle(lambda: api.balance(wallet)) - start
    deposit_check(result, delta, run["s2xx"], run["inflight"])
    return result


def spread(api: Api, load: Load, connections: int, args: argparse.Namespace) -> Result:
    wallets = api.wallets(args.wallets)
    start = api.total(wallets)
    run = load.run(connections, wallets, "POST", OPERATION_PATH, operation_body("DEPOSIT", 1))
    result = summarise("spread", connections, load, [run], run)
    result["wallets"] = len(wallets)
    delta = settle(lambda: api.total(wallets)) - start
    deposit_check(result, delta, run["s2xx"], run["inflight"])
    return result


def split(connections: int, weights: Sequence[int] = MIX) -> list[int]:
    """Connections per stream, by weight, at least one each."""
    shares = [max(1, round(connections * w / sum(weights))) for w in weights[:-1]]
    return [*shares, max(1, connections - sum(shares))]


def mixed(api: Api, load: Load, connections: int, args: argparse.Namespace) -> Result:
    wallet = api.create()
    api.operate(wallet, "DEPOSIT", args.fund)
    start = api.balance(wallet)
    deposits, withdrawals, reads = split(connections)
    started = [
        load.start(deposits, [wallet], "POST", OPERATION_PATH, operation_body("DEPOSIT", 1)),
        load.start(withdrawals, [wallet], "POST", OPERATION_PATH, operation_body("WITHDRAW", 1)),
        load.start(reads, [wallet], "GET", WALLET_PATH),
    ]
    runs = load.finish(started)
    deposit, withdraw, _ = runs
    result = summarise("mixed", deposits + withdrawals + reads, load, runs, deposit)
    expected = start + deposit["s2xx"] - withdraw["s2xx"]
    final = settle(lambda: api.balance(wallet))
    result.update(
        split_connections=[deposits, withdrawals, reads],
        latency_note="p50/p90/p99/max of the deposit stream",
        balance_expected=str(expected),
        balance_final=str(final),
        balance_diff=str(final - expected),
        balance_ok=expected - withdraw["inflight"] <= final <= expected + deposit["inflight"],
    )
    return result


def read(api: Api, load: Load, connections: int, _: argparse.Namespace) -> Result:
    wallet = api.create()
    api.operate(wallet, "DEPOSIT", 100)
    start = api.balance(wallet)
    run = load.run(connections, [wallet], "GET", WALLET_PATH)
    result = summarise("read", connections, load, [run], run)
    result["balance_ok"] = api.balance(wallet) == start
    return result


def transfer_check(
    result: Result,
    amount: Decimal,
    start: Sequence[Decimal],
    final: Sequence[Decimal],
    acked: int,
    inflight: int,
    *,
    payee: bool,
    payers: Mapping[int, int] | None = None,
) -> None:
    """Transfers of `amount` between the wallets whose balances were `start` and are `final`
    (with `payee`, the last one is transfer-hot's payee, paid by every transfer): the sum
    comes back exactly, no wallet is below zero, and the payee got the acknowledged
    transfers plus at most `inflight` more (`lost_updates`: at least that many went wrong).
    `payers`, when given, maps a wallet's position to its acknowledged transfers out: each
    such wallet must have paid at least those, exactly (`payers_short`: how many did not)."""
    sum_diff = sum(final, Decimal(0)) - sum(start, Decimal(0))
    negative = sum(1 for balance in final if balance < 0)
    result.update(
        sum_diff=str(sum_diff),
        negative_wallets=negative,
        acked_transfers=acked,
        transfer_amount=str(amount),
    )
    lost, unacked, payee_ok = math.ceil(abs(sum_diff) / amount), 0, True
    if payee:
        paid = (final[-1] - start[-1]) / amount  # transfers the payee shows
        result["payee_delta"] = str(final[-1] - start[-1])
        lost = max(lost, acked - math.floor(paid))
        unacked = max(0, math.floor(paid) - acked)
        payee_ok = paid == int(paid) and acked <= paid <= acked + inflight
    short = 0
    if payers is not None:
        owed = {i: n * amount - (start[i] - final[i]) for i, n in payers.items()}
        short = sum(1 for missing in owed.values() if missing > 0)
        result["payers_short"] = short
        lost = max(lost, math.ceil(sum(max(m, Decimal(0)) for m in owed.values()) / amount))
    result.update(
        lost_updates=lost,
        unacked_applied=unacked,
        balance_ok=sum_diff == 0 and negative == 0 and payee_ok and short == 0,
    )


def by_position(wallets: Sequence[str], tracked: Mapping[str, int], acked: int) -> dict[int, int]:
    """Acknowledged transfers by the payer's position in `wallets`, from the payers the 2xx
    answers named; an empty map when they did not name one each (nothing to check then)."""
    position = {wallet.lower(): i for i, wallet in enumerate(wallets)}
    named = {position.get(wallet.lower(), -1): n for wallet, n in tracked.items()}
    if sum(tracked.values()) != acked or -1 in named:
        return {}
    return named


def transfers(
    name: str, api: Api, load: Load, connections: int, args: argparse.Namespace
) -> Result:
    """transfer-hot (payers, then the payee last) or transfer-spread (all pay and are paid)."""
    hot = name == "transfer-hot"
    if args.transfer_wallets < 2 - hot:
        raise LoadError(f"{name}: --transfer-wallets {args.transfer_wallets} is too few")
    payers = api.funded(args.transfer_wallets, args.fund)
    if hot:
        payee = api.create()
        wallets, body = [*payers, payee], transfer_body(args.transfer_amount, payee=payee)
    else:
        wallets, body = payers, transfer_body(args.transfer_amount)
    start = api.balances(wallets)
    run = load.run(connections, payers, "POST", TRANSFER_PATH, body, PAYER_KEY if hot else "")
    result = summarise(name, connections, load, [run], run)
    result["wallets"] = len(payers)
    final = settle(lambda: api.balances(wallets))
    acked, inflight = run["s2xx"], run["inflight"]
    amount = Decimal(args.transfer_amount)
    named = by_position(wallets, run.get("tracked", {}), acked)
    transfer_check(result, amount, start, final, acked, inflight, payee=hot, payers=named or None)
    if hot and not named:
        result["payers_short"] = None  # the answers did not name their payers: not checked
    return result


def transfer_hot(api: Api, load: Load, connections: int, args: argparse.Namespace) -> Result:
    return transfers("transfer-hot", api, load, connections, args)


def transfer_spread(api: Api, load: Load, connections: int, args: argparse.Namespace) -> Result:
    return transfers("transfer-spread", api, load, connections, args)


def hold_hot(api: Api, load: Load, connections: int, args: argparse.Namespace) -> Result:
    """Holds placed and captured on one wallet. Every hold placed is captured whole or still
    held at the end: what the balance lost plus what is still held is the amount of the
    holds placed, the acknowledged ones and at most those in flight."""
    wallet = api.create()
    api.operate(wallet, "DEPOSIT", args.fund)
    start = api.balance(wallet)
    body = json.dumps({"amount": args.transfer_amount})
    run = load.run(connections, [wallet], "POST", HOLDS_PATH, body, follow=CAPTURE_PATH)
    result = summarise("hold-hot", connections, load, [run], run)
    final = settle(lambda: (api.balance(wallet), api.balance(wallet, "heldBalance")))
    balance, held = final
    amount = Decimal(args.transfer_amount)
    placed, captured = run["s201"], run["s2xx"] - run["s201"]
    reserved = (start - balance + held) / amount  # holds placed, by the money they moved
    result.update(
        holds_placed=placed,
        holds_captured=captured,
        pairs_per_s=round(captured / result["duration_s"], 1) if result["duration_s"] else 0.0,
        balance_taken=str(start - balance),
        held_final=str(held),
        balance_ok=placed <= reserved <= placed + run["inflight"]
        and start - balance >= captured * amount
        and held >= 0
        and balance >= held,
    )
    return result


RUNNERS = {
    "hot": hot,
    "mixed": mixed,
    "spread": spread,
    "read": read,
    "transfer-hot": transfer_hot,
    "transfer-spread": transfer_spread,
    "hold-hot": hold_hot,
}


def failures(result: Result) -> list[str]:
    """What was wrong with one scenario's run, if anything."""
    problems = []
    if result["non_2xx"]:
        problems.append(f"{result['non_2xx']} non-2xx answers")
    if sum(result["socket_errors"].values()):
        problems.append(f"socket errors {result['socket_errors']}")
    if not result["balance_ok"]:
        problems.append("balance check failed")
    return problems


def check_column(result: Result) -> str:
    verdict = "ok" if result["balance_ok"] else "BAD"
    if "lost_updates" in result:
        verdict += f" lost={result['lost_updates']}" if result["lost_updates"] else ""
        verdict += f" unacked={result['unacked_applied']}" if result["unacked_applied"] else ""
    elif "balance_diff" in result:
        verdict += f" diff={result['balance_diff']}"
    return verdict + transfer_notes(result)


def transfer_notes(result: Result) -> str:
    """What a transfer scenario's check found beside lost and unacknowledged transfers."""
    notes = ""
    if Decimal(result.get("sum_diff", 0)):
        notes += f" sum={result['sum_diff']}"
    if result.get("negative_wallets"):
        notes += f" negative={result['negative_wallets']}"
    if result.get("payers_short"):
        notes += f" short={result['payers_short']}"
    return notes


def table(results: Sequence[Result]) -> str:
    head = ["label", "scenario", "conns", "rps", "p50 ms", "p99 ms", "2xx", "non-2xx", "sock err"]
    rows = [[*head, "balance"]]
    for r in results:
        rows.append(
            [
                r["label"],
                r["scenario"],
                str(r["connections"]),
                f"{r['rps']:.0f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                str(r["status"]["s2xx"]),
                str(r["non_2xx"]),
                str(sum(r["socket_errors"].values())),
                check_column(r),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join([*(cell.rjust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    )


def scenario_spec(text: str) -> tuple[str, int | None]:
    name, _, connections = text.partition(":")
    if name not in RUNNERS:
        known = (*SCENARIOS, *TRANSFER_SCENARIOS)
        raise argparse.ArgumentTypeError(f"unknown scenario {name!r} (choose from {known})")
    return name, int(connections) if connections else None


def transfer_amount(text: str) -> str:
    """A positive decimal, kept as written: the body sends it as the contract's string."""
    try:
        ok = Decimal(text).is_finite() and Decimal(text) > 0
    except ArithmeticError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"not a positive amount: {text!r}")
    return text


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", help="the service, e.g. http://127.0.0.1:5000")
    parser.add_argument(
        "scenarios",
        nargs="*",
        type=scenario_spec,
        help=", ".join((*SCENARIOS, *TRANSFER_SCENARIOS)) + " (default: the first four)",
    )
    parser.add_argument("-c", "--connections", type=int, default=64)
    parser.add_argument("-d", "--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("-t", "--threads", type=int, default=1, help="wrk threads per process")
    parser.add_argument("--timeout", type=int, default=5, help="wrk's request timeout, seconds")
    parser.add_argument("--wallets", type=int, default=1000, help="wallets of 'spread'")
    parser.add_argument(
        "--fund", type=int, default=1_000_000, help="first deposit of 'mixed', of each payer"
    )
    parser.add_argument(
        "--transfer-wallets",
        type=int,
        default=256,
        help="payers of 'transfer-hot' (and one payee), wallets of 'transfer-spread'",
    )
    parser.add_argument(
        "--transfer-amount", type=transfer_amount, default="1.00", help="of each transfer"
    )
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between scenarios")
    parser.add_argument("--label", default="", help="the system under test, for the output")
    parser.add_argument("--json", type=Path, help="append the JSON lines to this file")
    args = parser.parse_args(argv)
    args.scenarios = args.scenarios or [(name, None) for name in SCENARIOS]
    args.url = args.url.rstrip("/")
    args.label = args.label or args.url
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wallet_load: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    api, results = Api(args.url), []
    with tempfile.TemporaryDirectory(prefix="wallet-load-") as workdir:
        load = Load(args.url, args.duration, args.threads, args.timeout, Path(workdir))
        for i, (name, connections) in enumerate(args.scenarios):
            if i:
                time.sleep(args.pause)
            try:
                result = RUNNERS[name](api, load, connections or args.connections, args)
            except (LoadError, OSError) as problem:
                print(f"wallet_load: {name}: {problem}", file=sys.stderr)
                return 2
            result = {"label": args.label, **result}
            results.append(result)
            line = json.dumps(result)
            print(line, flush=True)
            if args.json:
                with args.json.open("a") as out:
                    out.write(line + "\n")
    print(table(results))
    bad = [f"{r['scenario']}: {p}" for r in results for p in failures(r)]
    for line in bad:
        print(f"wallet_load: FAIL {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
