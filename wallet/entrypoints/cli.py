"""The command line: ``serve``, ``migrate``, ``audit`` and ``relay``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from wallet.adapters.postgres.audit import audit, summary
from wallet.adapters.postgres.embedded import (
    LOCAL_HOST,
    FoundDatabase,
    answers,
    local_or_embedded,
)
from wallet.adapters.postgres.migrate import prepare_database
from wallet.config import Settings, SettingsError
from wallet.container import Container, resolved
from wallet.entrypoints.logs import configure_logging
from wallet.entrypoints.serving import PortInUse, ensure_port_free, run_worker, run_workers

log = logging.getLogger("wallet")

EMBEDDED_DATA_DIR = Path("var") / "postgres"
LOCAL_REDIS_PORT = 6379
LOCAL_REDIS_URL = f"redis://{LOCAL_HOST}:{LOCAL_REDIS_PORT}/0"
DESCRIPTION = (
    "The wallet service: serve its HTTP API and page, migrate its database, audit its ledger,"
    " relay its events to NATS."
)


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        parser.exit(2, f"wallet: {error}\n")
    configure_logging(settings.log_level, settings.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        args.run(args, settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wallet", description=DESCRIPTION)
    commands = parser.add_subparsers(required=True, metavar="command")

    serve = commands.add_parser("serve", help="migrate (unless disabled) and serve HTTP")
    serve.add_argument("--host", help="address to listen on (WALLET_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (WALLET_PORT, 5000)")
    serve.add_argument(
        "--workers",
        type=int,
        help="processes sharing the port; 0 for one per CPU core (WALLET_WORKERS, 0)",
    )
    serve.add_argument(
        "--share-port",
        action="store_true",
        help="listen beside a server already on the port and split its connections with it"
        " (a deliberate replica, or a rolling restart); without it, a port in use stops serve",
    )
    serve.set_defaults(run=_serve)

    migrate_command = commands.add_parser("migrate", help="create the database if missing, migrate")
    migrate_command.set_defaults(run=_migrate)

    audit_command = commands.add_parser(
        "audit", help="check every balance against its ledger; exit 1 on any discrepancy"
    )
    audit_command.set_defaults(run=_audit)

    relay_command = commands.add_parser(
        "relay",
        help="only publish events to NATS JetStream (WALLET_NATS_URL), beside or instead of"
        " serve's relay: one relay at a time publishes, the others wait for the lease",
    )
    relay_command.set_defaults(run=_relay)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    settings = settings.with_overrides(
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=_worker_count(settings.workers if args.workers is None else args.workers),
    )
    if not args.share_port:
        try:
            ensure_port_free(settings.host, settings.port)
        except PortInUse as error:
            sys.exit(
                f"wallet: {error}: stop it, choose another --port,"
                " or pass --share-port to serve beside it"
            )
    settings = _resolved(settings)
    if settings.migrate_on_start:
        _run_migrations(settings)
    log.info(
        "listening on http://%s:%d (%d worker%s, cache %s)",
        settings.host,
        settings.port,
        settings.workers,
        "" if settings.workers == 1 else "s",
        "on" if settings.cache_enabled else "off",
    )
    if settings.workers == 1:
        run_worker(settings, reuse_port=args.share_port)
    else:
        run_workers(settings)


def _worker_count(requested: int) -> int:
    return requested or os.cpu_count() or 1


def _migrate(args: argparse.Namespace, settings: Settings) -> None:
    _run_migrations(_resolved(settings))


def _audit(args: argparse.Namespace, settings: Settings) -> None:
    url = _resolved(settings).database_url
    assert url is not None
    report = asyncio.run(audit(url))
    print("\n".join(summary(report)))
    if not report.clean:
        sys.exit(1)


def _relay(args: argparse.Namespace, settings: Settings) -> None:
    nats_url = settings.nats_url
    if not nats_url:
        sys.exit("wallet: relay needs WALLET_NATS_URL, the NATS server to publish events to")
    settings = _resolved(settings)
    servers = ", ".join(location(server) for server in nats_url.split(","))
    log.info("relaying events to NATS at %s", servers)
    asyncio.run(_relay_until_stopped(settings))


async def _relay_until_stopped(settings: Settings) -> None:
    """Relay until SIGTERM or SIGINT; the lease goes with the process, however it ends."""
    loop = asyncio.get_running_loop()
    container = Container(settings=settings)
    try:
        relay = asyncio.create_task((await resolved(container.event_relay())).run())
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, relay.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await relay
    finally:
        await resolved(container.shutdown_resources())
    log.info("relay stopped")


def _resolved(settings: Settings) -> Settings:
    """Fill in the defaults that depend on what runs on this machine; log what was chosen."""
    database = _database(settings.database_url)
    redis_url, cache = _cache(settings.redis_url)
    log.info("database: %s; cache: %s", database.where, cache)
    return settings.with_overrides(database_url=database.url, redis_url=redis_url)


def _database(configured: str | None) -> FoundDatabase:
    if configured:
        return FoundDatabase(
            configured, f"PostgreSQL at {location(configured)} (WALLET_DATABASE_URL)"
        )
    return local_or_embedded(EMBEDDED_DATA_DIR.resolve())


def _cache(configured: str | None) -> tuple[str, str]:
    """The Redis URL to use ("" for no cache) and how it was chosen."""
    if configured:
        return configured, f"Redis at {location(configured)} (WALLET_REDIS_URL)"
    if configured == "":
        return "", "off (WALLET_REDIS_URL is empty)"
    if answers(LOCAL_HOST, LOCAL_REDIS_PORT):
        return LOCAL_REDIS_URL, f"local Redis at {LOCAL_HOST}:{LOCAL_REDIS_PORT}/0"
    return "", f"off (no Redis answers on {LOCAL_HOST}:{LOCAL_REDIS_PORT})"


def location(url: str) -> str:
    """Where a database URL points: its hosts, ports and path, never its user or password."""
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    if not hosts:  # a Unix socket, named in the query or the driver's default
        hosts = parse_qs(parts.query).get("host", ["(default host)"])[0]
    return hosts + parts.path


def _run_migrations(settings: Settings) -> None:
    assert settings.database_url is not None
    asyncio.run(prepare_database(settings.database_url))
