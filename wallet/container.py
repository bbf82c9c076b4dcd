"""The composition root: the one place that decides which adapter serves which port."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from dependency_injector import containers, providers

from wallet.adapters.group_commit import GroupCommitLedger
from wallet.adapters.nats_stream import STREAM, open_event_stream
from wallet.adapters.no_cache import NoCache
from wallet.adapters.postgres.batch_store import PostgresBatchStore
from wallet.adapters.postgres.cache_fences import PostgresFences, listen_for_fences
from wallet.adapters.postgres.connections import PostgresHealth
from wallet.adapters.postgres.events import PostgresEventFeed
from wallet.adapters.postgres.holds import PostgresHolds
from wallet.adapters.postgres.idempotency_records import PostgresIdempotencyRecords
from wallet.adapters.postgres.ledger import PostgresHistory, PostgresLedger
from wallet.adapters.postgres.pool import open_pool
from wallet.adapters.postgres.relay import PostgresRelayLeases
from wallet.adapters.postgres.wallets import PostgresWallets
from wallet.adapters.redis_cache import RedisBalanceCache, open_redis
from wallet.config import Settings
from wallet.domain.pagination import CursorCodec
from wallet.domain.relay import Relay
from wallet.domain.services import WalletService
from wallet.entrypoints.http.render import event_body
from wallet.metrics import RelayMetrics

CURSOR_KEY_NAME = "cursor"


async def resolved(value: Any) -> Any:
    """dependency-injector answers with an awaitable only when an async resource is involved."""
    return await value if inspect.isawaitable(value) else value


async def _cursor_secret(settings: Settings, wallets: PostgresWallets) -> bytes:
    """The configured secret, else the one the migrations stored for every process."""
    if settings.cursor_secret:
        return settings.cursor_secret.encode("utf-8")
    return await wallets.load_secret(CURSOR_KEY_NAME)


async def _fence_listener(settings: Settings, cache: object) -> AsyncIterator[None]:
    """Only the Redis cache needs to hear fences: it alone is shared between processes."""
    if not isinstance(cache, RedisBalanceCache):
        yield
        return
    url = settings.db_listen_url or settings.database_url
    assert url is not None
    listening = asynccontextmanager(listen_for_fences)
    async with listening(url, settings.db_timeout, cache):
        yield


class Container(containers.DeclarativeContainer):
    """Pools are Resources: ``init_resources()`` on app startup, ``shutdown_resources()`` after."""

    settings = providers.Dependency(instance_of=Settings)

    db_pool = providers.Resource(
        open_pool,
        dsn=settings.provided.database_url,
        min_size=settings.provided.db_pool_min_size,
        max_size=settings.provided.db_pool_max_size,
        connect_timeout=settings.provided.db_timeout,
        pgbouncer=settings.provided.db_pgbouncer,
    )
    redis_client = providers.Resource(
        open_redis,
        url=settings.provided.redis_url,
        command_timeout=settings.provided.redis_timeout,
    )

    db_timeout = settings.provided.db_timeout
    wallets = providers.Singleton(PostgresWallets, pool=db_pool, timeout=db_timeout)
    history = providers.Singleton(PostgresHistory, pool=db_pool, timeout=db_timeout)
    idempotency_records = providers.Singleton(
        PostgresIdempotencyRecords, pool=db_pool, timeout=db_timeout
    )
    health = providers.Singleton(PostgresHealth, pool=db_pool, timeout=db_timeout)
    # Every change's event, read back in commit order.
    event_feed = providers.Singleton(PostgresEventFeed, pool=db_pool, timeout=db_timeout)
    # Holds change under their wallets' row locks, beside the batches (not in them).
    holds = providers.Singleton(PostgresHolds, pool=db_pool, timeout=db_timeout)
    # The one write port; group commit (the default) batches it, and only it.
    single_ledger = providers.Singleton(PostgresLedger, pool=db_pool, timeout=db_timeout)
    batch_store = providers.Singleton(PostgresBatchStore, pool=db_pool, timeout=db_timeout)
    ledger = providers.Selector(
        providers.Callable(lambda s: "batched" if s.group_commit else "single", settings),
        batched=providers.Singleton(
            GroupCommitLedger,
            store=batch_store,
            timeout=db_timeout,
            max_batch=settings.provided.batch_max_size,
        ),
        single=single_ledger,
    )
    balance_cache = providers.Selector(
        providers.Callable(lambda s: "redis" if s.cache_enabled else "none", settings),
        redis=providers.Singleton(
            RedisBalanceCache,
            client=redis_client,
            fences=providers.Singleton(PostgresFences, pool=db_pool, timeout=db_timeout),
            ttl=settings.provided.cache_ttl,
            timeout=settings.provided.redis_timeout,
            retry_interval=settings.provided.cache_retry_interval,
        ),
        none=providers.Singleton(NoCache),
    )
    cache_fence_listener = providers.Resource(_fence_listener, settings, balance_cache)

    cursor_secret = providers.Resource(_cursor_secret, settings, wallets)
    cursor_codec = providers.Singleton(CursorCodec, secret=cursor_secret)

    wallet_service = providers.Singleton(
        WalletService,
        wallets=wallets,
        ledger=ledger,
        history=history,
        records=idempotency_records,
        health=health,
        cache=balance_cache,
        cursors=cursor_codec,
        holds=holds,
        hold_book=holds,
        hold_expiry=holds,
        events=event_feed,
        default_currency=settings.provided.default_currency,
    )

    # The event relay, run when WALLET_NATS_URL is set: JetStream (connected when first
    # used), the lease on a session of its own (straight to PostgreSQL, as LISTEN is), and
    # the loop. The stream keeps events as long as the feed does.
    event_stream = providers.Resource(
        open_event_stream,
        url=settings.provided.nats_url,
        body=providers.Object(event_body),
        max_age=providers.Callable(lambda s: s.events_retention_days * 86400, settings),
    )
    relay_leases = providers.Singleton(
        PostgresRelayLeases,
        dsn=providers.Callable(lambda s: s.db_listen_url or s.database_url, settings),
        stream=STREAM,
        timeout=db_timeout,
    )
    relay_meter = providers.Singleton(RelayMetrics)
    event_relay = providers.Singleton(
        Relay,
        feed=event_feed,
        stream=event_stream,
        leases=relay_leases,
        meter=relay_meter,
        batch=settings.provided.relay_batch,
        idle_wait=settings.provided.relay_interval,
    )
