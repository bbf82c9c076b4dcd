"""Running the HTTP app: one process, or several sharing one port."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
from types import FrameType

import uvloop
from aiohttp import web

from wallet.config import Settings
from wallet.container import Container
from wallet.entrypoints.http.app import create_app
from wallet.entrypoints.http.edge import EdgeAppRunner
from wallet.entrypoints.logs import ACCESS_LOGGER, RequestLogger, configure_logging
from wallet.metrics import MULTIPROCESS_DIR, forget_process

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class PortInUse(Exception):
    """Something listens on the address ``serve`` was told to listen on."""


def ensure_port_free(host: str, port: int) -> None:
    """Raise PortInUse when a socket listens on host:port already.

    The workers bind with SO_REUSEPORT, which lets any process of the same user
    join a listening port and take a share of its connections: a second service,
    perhaps on another database, would answer half the requests. A bind without
    SO_REUSEPORT fails when anything listens there. SO_REUSEADDR, as the workers'
    own binds have it, keeps closed connections (TIME_WAIT) from counting.
    Any other failure is left to the real bind to report.
    """
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise PortInUse(f"something listens on {host}:{port} already") from None


def run_worker(settings: Settings, reuse_port: bool = False) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (however often the signal comes)."""
    configure_logging(settings.log_level, settings.log_format)
    uvloop.run(_serve(settings, reuse_port))


def app_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """The app's server as ``serve`` and gunicorn both run it: our request log, our grace,
    problem answers where aiohttp answers itself, and what start-up made kept out of the
    garbage collector's way."""
    app.on_startup.append(freeze_startup_objects)
    return EdgeAppRunner(
        app,
        access_log=logging.getLogger(ACCESS_LOGGER) if settings.log_requests else None,
        access_log_class=RequestLogger,
        shutdown_timeout=settings.shutdown_timeout,
    )


# Containers allocated between two young collections. Python's default, 700, runs one every
# few requests; each request's objects are gone by its answer, so a larger nursery costs a
# little memory and saves most of those passes.
YOUNG_COLLECTION_THRESHOLD = 20_000


async def freeze_startup_objects(app: web.Application) -> None:
    """Hide what start-up made from the collector's full passes (``gc.freeze``), and
    collect the young generation less often.

    A full collection walks every tracked object. The tens of thousands made at
    start-up (modules, the app, the pools) live as long as the process, yet walking
    them took 25-40 ms per full pass, about once a second under load: a pause that
    every request in flight waited out. Without them a full pass takes 1-2 ms.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, oldest)


async def _serve(settings: Settings, reuse_port: bool) -> None:
    stop = _stop_signalled()  # from the start: a stop during start-up waits for its end
    runner = app_runner(create_app(Container(settings=settings)), settings)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port)
        await site.start()
        await stop.wait()
        _ignore_stop_signals()
        grace = settings.shutdown_timeout
        log.info("stopping: finishing the requests in flight (at most %.0f s)", grace)
    finally:
        await runner.cleanup()
        log.info("stopped")


def _stop_signalled() -> asyncio.Event:
    """An event set by the first stop signal."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    return stop


def _ignore_stop_signals() -> None:
    """Ignore the stop signals that follow the first, during shutdown.

    Removing the loop's handler restores the default action (exit) until SIG_IGN is
    set; a second signal then (a process group stopped together: ours, then the
    parent's) would kill the worker mid-shutdown. Blocked meanwhile, it waits for
    SIG_IGN and is dropped.
    """
    loop = asyncio.get_running_loop()
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    for signum in STOP_SIGNALS:
        loop.remove_signal_handler(signum)
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def run_workers(settings: Settings) -> None:
    """Run N worker processes on one port (SO_REUSEPORT); stop them all when one stops.

    A stop signal to this process is passed on to every worker; when any worker
    exits on its own, the others are stopped too and the exit status says so.
    """
    metrics_dir = tempfile.mkdtemp(prefix="wallet-metrics-")
    os.environ[MULTIPROCESS_DIR] = metrics_dir  # the workers inherit it: they share metrics
    context = multiprocessing.get_context("spawn")
    workers: list[multiprocessing.context.SpawnProcess] = []
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive():
                worker.terminate()

    for signum in STOP_SIGNALS:  # before any worker starts: a stop leaves none behind
        signal.signal(signum, stop)
    for n in range(settings.workers):
        if stopping:
            break
        worker = context.Process(
            target=run_worker, args=(settings, True), name=f"wallet-worker-{n}"
        )
        worker.start()
        workers.append(worker)
    if not stopping:
        multiprocessing.connection.wait([worker.sentinel for worker in workers])
    unexpected = not stopping
    stop(signal.SIGTERM, None)
    for worker in workers:
        worker.join()
        if worker.pid is not None:
            forget_process(worker.pid)
    shutil.rmtree(metrics_dir, ignore_errors=True)
    # A worker still starting when told to stop has no handler yet and ends by the signal.
    stopped = (0, -signal.SIGTERM) if stopping else (0,)
    failed = [f"{w.name} (exit {w.exitcode})" for w in workers if w.exitcode not in stopped]
    if unexpected or failed:
        sys.exit(f"wallet: workers stopped unexpectedly or with an error: {', '.join(failed)}")
