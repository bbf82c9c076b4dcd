"""Integration fixtures: the real PostgreSQL and Redis, a fresh database for each run.

``WALLET_TEST_DATABASE_URL`` names a server (and a user that may create databases);
``WALLET_TEST_REDIS_URL`` a Redis. Both default to 127.0.0.1. A missing service
fails the run loudly: these tests are never skipped.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.integration.servers import PrivateRedis
from wallet.adapters.postgres.migrate import ensure_database, migrate, with_database
from wallet.config import Settings
from wallet.container import Container
from wallet.entrypoints.http.app import create_app

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]
AppFactory = Callable[..., Awaitable[Client]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def server_url() -> str:
    return os.environ.get("WALLET_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A new, migrated database for this test run, dropped at the end."""
    name = f"wallet_test_{uuid.uuid4().hex[:12]}"
    url = with_database(server_url, name)
    asyncio.run(_create_database(server_url, name))
    try:
        asyncio.run(migrate(url))
        yield url
    finally:
        asyncio.run(_drop_database(server_url, name))


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("WALLET_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    asyncio.run(_require_redis(url))
    return url


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own, to stop, slow or flush without touching others'."""
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """As ``private_redis``, keeping its data across a restart, as a real outage may."""
    server = PrivateRedis(tmp_path, persistent=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def fresh_url(server_url: str) -> AsyncIterator[str]:
    """The URL of a database that does not exist yet; dropped afterwards."""
    name = f"wallet_migrate_{uuid.uuid4().hex[:12]}"
    yield with_database(server_url, name)
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def migrated_url(fresh_url: str) -> str:
    """A database of its own, created and migrated, for a test that must not share one."""
    await ensure_database(fresh_url)
    await migrate(fresh_url)
    return fresh_url


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(database_url=database_url, redis_url=redis_url, db_timeout=5.0)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool for checking what the service wrote, straight from the tables."""
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
        yield pool


@pytest.fixture
def make_client(aiohttp_client: ClientFactory, settings: Settings) -> AppFactory:
    """Start the real app, wired by the real container, with settings overridden as given."""

    async def start(**overrides: object) -> Client:
        container = Container(settings=settings.with_overrides(**overrides))
        return await aiohttp_client(create_app(container))

    return start


@pytest.fixture
async def client(make_client: AppFactory) -> Client:
    return await make_client()


async def _create_database(server_url: str, name: str) -> None:
    try:
        connection = await asyncpg.connect(server_url, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        pytest.fail(
            f"PostgreSQL is required at {server_url} (set WALLET_TEST_DATABASE_URL): {error}",
            pytrace=False,
        )
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(server_url: str, name: str) -> None:
    connection = await asyncpg.connect(server_url, timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _require_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as error:
        pytest.fail(
            f"Redis is required at {url} (set WALLET_TEST_REDIS_URL): {error}", pytrace=False
        )
    finally:
        await client.aclose()
