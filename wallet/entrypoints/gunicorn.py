"""The service under gunicorn: the app factory and the hook its config needs.

    gunicorn wallet.entrypoints.gunicorn:app -c python:wallet.entrypoints.gunicorn \\
        --worker-class aiohttp.GunicornUVLoopWebWorker --workers 4 --bind 0.0.0.0:5000
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from wallet.adapters.postgres.migrate import prepare_database
from wallet.config import Settings, SettingsError
from wallet.container import Container
from wallet.entrypoints.http.app import create_app
from wallet.entrypoints.logs import configure_logging
from wallet.entrypoints.serving import app_runner
from wallet.metrics import forget_process


async def app() -> web.AppRunner:
    """One worker's server, set up as ``serve`` sets up its own; called after the fork.

    A runner, not an Application: aiohttp's worker then runs it as it is, with our
    request log and WALLET_SHUTDOWN_TIMEOUT, instead of one built from gunicorn's
    access-log settings. Nothing is looked for here, so the database must be named.
    """
    settings = Settings.from_env()
    if settings.database_url is None:
        raise SettingsError("WALLET_DATABASE_URL must be set under gunicorn")
    configure_logging(settings.log_level, settings.log_format)
    if settings.migrate_on_start:
        await prepare_database(settings.database_url)  # an advisory lock orders the workers
    return app_runner(create_app(Container(settings=settings)), settings)


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's hook, read with ``-c python:wallet.entrypoints.gunicorn``.

    Drops a dead worker's live gauges from the metrics summed under
    PROMETHEUS_MULTIPROC_DIR, as ``serve`` does for its own workers.
    """
    forget_process(worker.pid)
