"""Finding a PostgreSQL to use when none is configured: the local one, else an embedded one."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

log = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432
LOCAL_URL = f"postgresql://postgres@{LOCAL_HOST}:{LOCAL_PORT}/wallet"
EMBEDDED_DATABASE = "wallet"


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def local_or_embedded_url(data_dir: Path) -> str:
    """The local server's URL when it answers, else an embedded server's in ``data_dir``.

    The embedded server (the ``pgserver`` package) keeps its data on disk, so the
    wallets survive restarts; it stops when this process exits.
    """
    if answers(LOCAL_HOST, LOCAL_PORT):
        return LOCAL_URL
    try:
        from pgserver import get_server  # type: ignore[attr-defined]
    except ImportError:
        raise RuntimeError(
            "No PostgreSQL answers on 127.0.0.1:5432 and the embedded one is not installed: "
            "set WALLET_DATABASE_URL or pip install 'wallet-service[embedded]'"
        ) from None
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode="stop")
    log.info("started an embedded PostgreSQL with its data in %s", data_dir)
    url: str = server.get_uri(EMBEDDED_DATABASE)
    return url
