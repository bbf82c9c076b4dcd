"""The framework ceiling: a bare aiohttp app shaped like the wallet API, with no storage.

It answers just enough of the API for walletbench's ``read`` and ``hot`` scenarios to
run against it; every balance is the constant ``"1.00"``, so the harness's balance checks
report nonsense -- only the throughput means something: the most requests/s that aiohttp
(on uvloop, like the service) can serve on this machine for these request shapes.

    python perf/bare_app.py --port 5100 --workers 2

Routes:

* ``POST /api/v1/wallets``                  -- 201, a constant wallet with a constant id
* ``GET  /api/v1/wallets/{id}``             -- 200, a constant wallet
* ``POST /api/v1/wallets/{id}/operation``   -- reads and JSON-parses the body, 200
* ``GET  /health/ready``                    -- 200
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.connection
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvloop
from aiohttp import web

WALLET_ID = "00000000-0000-4000-8000-000000000001"
STAMP = "2026-01-01T00:00:00.000000Z"


def _wallet(wallet_id: str) -> dict[str, str]:
    return {"id": wallet_id, "balance": "1.00", "createdAt": STAMP, "updatedAt": STAMP}


async def create_wallet(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response(_wallet(WALLET_ID), status=201)


async def get_wallet(request: web.Request) -> web.Response:
    return web.json_response(_wallet(request.match_info["wallet_id"]))


async def operation(request: web.Request) -> web.Response:
    try:
        json.loads(await request.read())
    except ValueError:
        return web.json_response({"error": "malformed JSON"}, status=400)
    return web.json_response({"walletId": request.match_info["wallet_id"], "balance": "1.00"})


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/api/v1/wallets", create_wallet)
    app.router.add_get("/api/v1/wallets/{wallet_id}", get_wallet)
    app.router.add_post("/api/v1/wallets/{wallet_id}/operation", operation)
    app.router.add_get("/health/ready", ready)
    return app


def run_worker(host: str, port: int, reuse_port: bool) -> None:
    """Serve until SIGTERM/SIGINT, on uvloop."""
    loop = uvloop.new_event_loop()
    web.run_app(
        make_app(),
        host=host,
        port=port,
        reuse_port=reuse_port,
        print=None,
        access_log=None,
        loop=loop,
    )


def run_workers(host: str, port: int, workers: int) -> None:
    """N processes on one port (SO_REUSEPORT); stop them all when one stops or on a signal."""
    run_processes(run_worker, (host, port, True), workers, "bare-worker")


def run_processes(
    target: Callable[..., None], args: tuple[Any, ...], count: int, name: str
) -> None:
    """``count`` processes running ``target(*args)``; all stop when one stops or on a signal."""
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=target, args=args, name=f"{name}-{n}") for n in range(count)]
    for proc in procs:
        proc.start()

    def stop(signum: int, frame: FrameType | None) -> None:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    multiprocessing.connection.wait([p.sentinel for p in procs])
    stop(signal.SIGTERM, None)
    for proc in procs:
        proc.join()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5100)
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    args = parser.parse_args()
    print(
        f"bare_app: http://{args.host}:{args.port} ({args.workers} workers, uvloop)",
        file=sys.stderr,
        flush=True,
    )
    if args.workers == 1:
        run_worker(args.host, args.port, reuse_port=False)
    else:
        run_workers(args.host, args.port, args.workers)


if __name__ == "__main__":
    main()
