"""The command line: ``serve``, ``migrate`` and ``audit``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from wallet.adapters.postgres.audit import audit
from wallet.adapters.postgres.embedded import LOCAL_HOST, answers, local_or_embedded_url
from wallet.adapters.postgres.migrate import prepare_database
from wallet.config import Settings, SettingsError
from wallet.entrypoints.logs import configure_logging
from wallet.entrypoints.serving import run_worker, run_workers

log = logging.getLogger("wallet")

EMBEDDED_DATA_DIR = Path("var") / "postgres"
LOCAL_REDIS_URL = f"redis://{LOCAL_HOST}:6379/0"


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
    parser = argparse.ArgumentParser(prog="python -m wallet", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="command")

    serve = commands.add_parser("serve", help="migrate (unless disabled) and serve HTTP")
    serve.add_argument("--host", help="address to listen on (WALLET_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (WALLET_PORT, 5000)")
    serve.add_argument(
        "--workers",
        type=int,
        help="processes sharing the port; 0 for one per CPU core (WALLET_WORKERS, 0)",
    )
    serve.set_defaults(run=_serve)

    migrate_command = commands.add_parser("migrate", help="create the database if missing, migrate")
    migrate_command.set_defaults(run=_migrate)

    audit_command = commands.add_parser(
        "audit", help="check every balance against its ledger; exit 1 on any discrepancy"
    )
    audit_command.set_defaults(run=_audit)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    settings = _resolved(settings).with_overrides(
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=_worker_count(settings.workers if args.workers is None else args.workers),
    )
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
        run_worker(settings)
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
    print(f"audited {report.wallets} wallets and {report.operations} operations (amounts in cents)")
    for problem, rows in report.findings.items():
        print(f"  {'FAIL' if rows else 'ok  '} {problem}" + (f": {len(rows)}+" if rows else ""))
        for row in rows:
            print("       " + ", ".join(f"{key}={value}" for key, value in row.items()))
    if not report.clean:
        sys.exit(1)


def _resolved(settings: Settings) -> Settings:
    """Fill in the defaults that depend on what runs on this machine."""
    database_url = settings.database_url or local_or_embedded_url(EMBEDDED_DATA_DIR.resolve())
    redis_url = settings.redis_url
    if redis_url is None:
        redis_url = LOCAL_REDIS_URL if answers(LOCAL_HOST, 6379) else ""
    return settings.with_overrides(database_url=database_url, redis_url=redis_url)


def _run_migrations(settings: Settings) -> None:
    assert settings.database_url is not None
    asyncio.run(prepare_database(settings.database_url))
