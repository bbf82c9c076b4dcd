"""Finding a PostgreSQL to use when none is configured: the local one, else an embedded one."""

from __future__ import annotations

import logging
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432
EMBEDDED_DATABASE = "wallet"
LOCAL_URL = f"postgresql://postgres@{LOCAL_HOST}:{LOCAL_PORT}/{EMBEDDED_DATABASE}"


@dataclass(frozen=True, slots=True)
class FoundDatabase:
    url: str
    where: str  # for the start-up log line


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def local_or_embedded(data_dir: Path) -> FoundDatabase:
    """The local server when it answers, else an embedded server with its data in ``data_dir``.

    The embedded server (the ``pgserver`` package) keeps its data on disk, so the
    wallets survive restarts; it stops when this process exits.
    """
    if answers(LOCAL_HOST, LOCAL_PORT):
        return FoundDatabase(LOCAL_URL, f"local PostgreSQL at {LOCAL_HOST}:{LOCAL_PORT}")
    url = _start_embedded(data_dir)
    return FoundDatabase(url, f"embedded PostgreSQL in {data_dir}")


def _start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded server, without its chatter.

    pgserver logs every command it runs, with its whole output, at INFO; only its
    warnings and errors are kept. platformdirs warns when XDG_RUNTIME_DIR is unset,
    as it is for most services; pgserver then keeps its lock file under
    /tmp/runtime-<uid>, which serves as well.
    """
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        try:
            from pgserver import get_server  # type: ignore[attr-defined]
        except ImportError:
            raise RuntimeError(
                f"No PostgreSQL answers on {LOCAL_HOST}:{LOCAL_PORT} and the embedded one is"
                " not installed: set WALLET_DATABASE_URL or"
                " pip install 'wallet-service[embedded]'"
            ) from None
        data_dir.mkdir(parents=True, exist_ok=True)
        server = get_server(data_dir, cleanup_mode="stop")
    url: str = server.get_uri(EMBEDDED_DATABASE)
    return url
