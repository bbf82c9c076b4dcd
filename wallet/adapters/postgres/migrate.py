"""Numbered ``.sql`` migrations, applied once each, safe when several processes run them."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x77616C6C6574  # "wallet": one advisory lock serialises all migrators
CREATE_ATTEMPTS = 20
_FILE_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")

CREATE_HISTORY = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
APPLIED_VERSIONS = "SELECT version FROM schema_migrations"
RECORD_MIGRATION = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """The migrations shipped in the package, in version order."""
    folder = resources.files("wallet.adapters.postgres") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    return sorted(found, key=lambda migration: migration.version)


async def prepare_database(dsn: str) -> list[str]:
    """Create the database if missing and migrate it; what runs before the service serves."""
    await ensure_database(dsn)
    applied = await migrate(dsn)
    log.info(
        "database is up to date (%d migration%s applied now)",
        len(applied),
        "s"[: len(applied) != 1],
    )
    return applied


async def migrate(dsn: str, connect_timeout: float = 30.0) -> list[str]:
    """Apply every pending migration, each in its own transaction; return their names.

    A session advisory lock makes concurrent runs wait for each other, and the
    history table makes each later run skip what is already applied.
    """
    connection = await asyncpg.connect(dsn, timeout=connect_timeout)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            return await _apply_pending(connection)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    finally:
        await connection.close()


async def _apply_pending(connection: asyncpg.Connection) -> list[str]:
    await connection.execute(CREATE_HISTORY)
    applied = {row["version"] for row in await connection.fetch(APPLIED_VERSIONS)}
    names = []
    for migration in available_migrations():
        if migration.version in applied:
            continue
        async with connection.transaction():
            await connection.execute(migration.sql)
            await connection.execute(RECORD_MIGRATION, migration.version, migration.name)
        log.info("applied migration %s", migration.name)
        names.append(migration.name)
    return names


async def ensure_database(dsn: str, connect_timeout: float = 10.0) -> bool:
    """Create the database that ``dsn`` names when it is missing; True when created.

    Connects to the server's ``postgres`` database to do so, which needs the
    CREATEDB privilege; a database that exists is left alone.
    """
    name = database_name(dsn)
    if not name:
        return False
    try:
        connection = await asyncpg.connect(dsn, timeout=connect_timeout)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await connection.close()
        return False
    admin = await asyncpg.connect(with_database(dsn, "postgres"), timeout=connect_timeout)
    try:
        return await _create_database(admin, name)
    finally:
        await admin.close()


async def _create_database(admin: asyncpg.Connection, name: str) -> bool:
    """CREATE DATABASE, tolerating a racing creator (and its hold on the template)."""
    quoted = '"' + name.replace('"', '""') + '"'
    for attempt in range(CREATE_ATTEMPTS):
        try:
            await admin.execute(f"CREATE DATABASE {quoted}")
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            return False  # a racing creator won (the latter when both inserted at once)
        except asyncpg.ObjectInUseError:  # another CREATE DATABASE is copying the template
            await asyncio.sleep(0.1 * (attempt + 1))
            continue
        log.info("created database %s", name)
        return True
    raise RuntimeError(f"could not create database {name}: the template stayed busy")


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def with_database(dsn: str, name: str) -> str:
    """The same server URL naming another database (query options kept)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))
