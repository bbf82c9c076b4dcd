"""Relay lag under load: how long an event takes from its commit to a JetStream consumer.

    .venv/bin/python perf/relay_lag.py                      # hot deposits, 2 workers, 20 s
    .venv/bin/python perf/relay_lag.py --scenario mixed --duration 30
    .venv/bin/python perf/relay_lag.py --baseline-rev 24c12ca --rounds 3  # rps side by side
    .venv/bin/python perf/relay_lag.py --nats-after-load    # NATS down during the load

Starts, all of its own and all stopped at the end: a ``nats-server -js`` on a free port
(its store in a temporary directory), a redis-server, a database, and the service with
``WALLET_NATS_URL`` pointing at that NATS, so its relay publishes every event to stream
``WALLET_EVENTS``. It loads the service with ``perf/wallet_load.py`` (wrk) while a consumer
takes every message of the stream and notes when it arrived; the lag of an event is its
arrival less its ``createdAt`` (the moment its change was stamped, by the database's clock
on this same machine). After the load it waits for the relay to catch up, then checks the
stream against the database: every event once, in id order, duplicates only as the same
``Nats-Msg-Id`` (JetStream drops them). Prints the load's rps and the lag's p50, p99 and
max; exit 1 when an event is missing or out of order. With ``--baseline-rev REV`` the
service at REV (as ``bench.py --baseline-rev`` starts it, no NATS) runs the same load
before each of ``--rounds`` rounds, and the row adds both median rps and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import asyncpg
import nats

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # perf/ is not a package: its scripts import each other by path

CATCH_UP_SECONDS = 60.0


class Consumer:
    """Every message of the stream, with the moment it arrived, on a loop of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.arrived: list[tuple[int, float, float]] = []  # (event id, createdAt, arrival)
        self.msg_ids: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._subscribe(), self._loop).result(timeout=30)

    async def _subscribe(self) -> None:
        self._nc = await nats.connect(self.url)
        js = self._nc.jetstream()
        for _ in range(300):  # the relay makes the stream when it first connects
            try:
                await js.stream_info("WALLET_EVENTS")
                break
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.1)
        await js.subscribe("wallet.events.>", cb=self._take, ordered_consumer=True)

    async def _take(self, msg: nats.aio.msg.Msg) -> None:
        arrival = time.time()
        event = json.loads(msg.data)
        created = datetime.fromisoformat(event["createdAt"].replace("Z", "+00:00")).timestamp()
        self.arrived.append((int(event["id"]), created, arrival))
        self.msg_ids.append((msg.headers or {}).get("Nats-Msg-Id", ""))

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _close(self) -> None:
        """Drain the connection, then end the client's own tasks before the loop stops."""
        await self._nc.drain()
        left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def stored_ids(url: str) -> list[int]:
    connection = await asyncpg.connect(url)
    try:
        return [row["id"] for row in await connection.fetch("SELECT id FROM events ORDER BY id")]
    finally:
        await connection.close()


def start_nats(run: bench.Run, stack: contextlib.ExitStack, port: int) -> str:
    server = shutil.which("nats-server") or "/usr/sbin/nats-server"
    store = Path(tempfile.mkdtemp(prefix="wallet-bench-nats-"))
    stack.callback(shutil.rmtree, store, True)
    cmd = [server, "-js", "-a", bench.HOST, "-p", str(port), "-sd", str(store)]
    server_process = bench.launch("nats", cmd, {}, port, run, stack)
    for _ in range(100):
        if bench.listening(port):
            return f"nats://{bench.HOST}:{port}"
        time.sleep(0.1)
    raise bench.HarnessError(f"nats-server did not listen: {bench.log_tail(server_process.log)}")


def measure(args: argparse.Namespace, run: bench.Run, stack: contextlib.ExitStack) -> int:
    nats_port = bench.free_port()
    nats_url = f"nats://{bench.HOST}:{nats_port}"
    if not args.nats_after_load:
        start_nats(run, stack, nats_port)
    redis_url = args.redis_url = bench.own_redis(run, stack)
    baseline = bench.start_baseline(args, run, stack) if args.baseline else None
    database = bench.own_database(run, args.pg, stack, "relay")
    port = bench.free_port()
    env = {
        "WALLET_DATABASE_URL": args.pg.url(database),
        "WALLET_REDIS_URL": redis_url,
        "WALLET_NATS_URL": nats_url,
    }
    cmd = [bench.python_for_services(), "-m", "wallet", "serve", "--host", bench.HOST]
    cmd += ["--port", str(port), "--workers", str(args.workers)]
    server = bench.launch("ours+nats", cmd, env, port, run, stack)
    bench.wait_ready(server, "/health/ready", want_200=True, timeout=120)
    consumer = Consumer(nats_url)
    if not args.nats_after_load:
        consumer.start()
    ours, theirs = [], []
    for _ in range(args.rounds):
        if baseline is not None:
            theirs.append(bench.run_load(args, run, baseline, args.scenario).get("rps") or 0.0)
        ours.append(bench.run_load(args, run, server, args.scenario))
    expected = asyncio.run(stored_ids(args.pg.url(database)))
    outage_over = time.monotonic()
    if args.nats_after_load:  # the load ran while NATS was down: the backlog goes now
        start_nats(run, stack, nats_port)
        consumer.start()
    stack.callback(consumer.stop)
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while len({i for i, _, _ in consumer.arrived}) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.05)
    caught_up = time.monotonic() - outage_over
    time.sleep(1)  # anything sent twice arrives by now
    ids = [i for i, _, _ in consumer.arrived]
    lags = [arrival - created for _, created, arrival in consumer.arrived]
    in_order = all(a < b for a, b in itertools.pairwise(ids))
    complete = sorted(set(ids)) == expected
    rps = bench.median(r.get("rps") or 0.0 for r in ours)
    row: dict[str, object] = {
        "label": "relay",
        "scenario": args.scenario,
        "rounds": args.rounds,
        "rps_with_nats": rps,
        "non_2xx_with_nats": sum(r.get("non_2xx") or 0 for r in ours),
    }
    if baseline is not None:
        row[f"rps_at_{args.baseline}"] = bench.median(theirs)
        row["ratio"] = round((rps or 0.0) / (bench.median(theirs) or 1.0), 3)
    row |= {
        "events": len(expected),
        "received": len(ids),
        "in_id_order": in_order,
        "every_event_once": complete and len(ids) == len(set(ids)),
        "msg_id_is_event_id": all(m == str(i) for m, i in zip(consumer.msg_ids, ids, strict=True)),
        "lag_p50_s": round(percentile(lags, 0.50), 4) if lags else None,
        "lag_p99_s": round(percentile(lags, 0.99), 4) if lags else None,
        "lag_max_s": round(max(lags), 4) if lags else None,
    }
    if args.nats_after_load and consumer.arrived:  # lags measure the outage, not the relay
        arrivals = [arrival for _, _, arrival in consumer.arrived]
        row["catch_up_s"] = round(caught_up, 2)  # with the relay's wait before it retried
        row["backlog_events_per_s"] = round(len(arrivals) / (max(arrivals) - min(arrivals)))
    with run.jsonl.open("a") as out:
        out.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=2))
    print("\ncommands:\n  " + "\n  ".join(run.commands))
    sound = row["every_event_once"] and in_order and row["msg_id_is_event_id"]
    return 0 if sound and not row["non_2xx_with_nats"] else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="hot", help="a wallet_load.py scenario")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline-rev", dest="baseline", metavar="REV")
    parser.add_argument(
        "--nats-after-load",
        action="store_true",
        help="start NATS only after the load: time the relay's catch-up from the backlog",
    )
    parser.add_argument("--pg", default=f"postgresql://postgres@{bench.HOST}:5432")
    parser.add_argument("--out", default=str(bench.REPO / "artifacts" / "relay"))
    args = parser.parse_args()
    args.pg = bench.Postgres.from_url(args.pg)
    out = Path(args.out) / time.strftime("run-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    run = bench.Run(out)
    with contextlib.ExitStack() as stack:
        return measure(args, run, stack)


if __name__ == "__main__":
    sys.exit(main())
