"""Unit fixtures: the real container and app, with every port served in memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from dependency_injector import providers

from tests.unit.fakes import TEST_SECRET, in_memory_service, serve_from
from wallet.adapters.memory import InMemoryBalanceCache, InMemoryDatabase
from wallet.config import Settings
from wallet.container import Container
from wallet.domain.pagination import CursorCodec
from wallet.domain.services import WalletService
from wallet.entrypoints.http.app import create_app

ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def repository() -> InMemoryDatabase:
    return InMemoryDatabase()


@pytest.fixture
def cache() -> InMemoryBalanceCache:
    return InMemoryBalanceCache()


@pytest.fixture
def service(repository: InMemoryDatabase, cache: InMemoryBalanceCache) -> WalletService:
    return in_memory_service(repository, cache, CursorCodec(TEST_SECRET))


@pytest.fixture
def container(repository: InMemoryDatabase, cache: InMemoryBalanceCache) -> Container:
    """The production container with the in-memory adapters overriding the real ones;
    the ledger is group-committed, as in production, over the in-memory batch store."""
    container = Container(settings=Settings(database_url="postgresql://unused", redis_url=""))
    container.db_pool.override(providers.Object(None))
    container.redis_client.override(providers.Object(None))
    serve_from(container, repository)
    container.balance_cache.override(providers.Object(cache))
    container.cursor_secret.override(providers.Object(TEST_SECRET))
    return container


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, container: Container
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(create_app(container))
