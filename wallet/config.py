"""Typed settings, read once from ``WALLET_*`` environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from wallet.domain.currency import USD, Currency, InvalidCurrency, parse_currency

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_FALSE = {"0", "false", "no", "off"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("auto", "json", "human")


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service can be told; defaults suit a developer's machine.

    ``database_url`` None means "find one": the local server on 127.0.0.1:5432, or
    an embedded one. ``redis_url`` None means "use the local Redis if it answers";
    an empty string turns the cache off.
    """

    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 0  # 0: one process per CPU core
    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    db_timeout: float = 2.0
    db_pgbouncer: bool = False  # behind PgBouncer's transaction pooling
    db_listen_url: str | None = None  # where the cache's fence listener connects, if not there
    redis_timeout: float = 0.05
    cache_ttl: float = 300.0
    cache_retry_interval: float = 1.0
    retry_after: int = 1
    shutdown_timeout: float = 10.0
    idempotency_ttl_hours: float = 24.0
    idempotency_cleanup_interval: float = 600.0
    hold_expiry_interval: float = 10.0  # seconds between runs of the job that marks expired holds
    events_retention_days: float = 30.0  # how long the event feed keeps an event
    events_cleanup_interval: float = 600.0  # seconds between runs of the job that drops old events
    nats_url: str | None = None  # where the event relay publishes; unset: no relay
    relay_interval: float = 0.05  # seconds the relay waits when it found nothing to publish
    relay_batch: int = 500  # events the relay reads and publishes at a time
    group_commit: bool = True
    batch_max_size: int = 256
    migrate_on_start: bool = True
    cursor_secret: str | None = field(default=None, repr=False)
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    log_level: str = "INFO"
    log_format: str = "auto"  # json, human, or auto: JSON unless stderr is a terminal
    log_requests: bool = True
    default_currency: Currency = USD  # of a wallet created without one

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        read = _Reader(env)
        default = cls()
        settings = cls(
            database_url=read.optional("WALLET_DATABASE_URL"),
            redis_url=read.blank_or_text("WALLET_REDIS_URL"),
            host=read.text("WALLET_HOST", default.host),
            port=read.number("WALLET_PORT", int, default.port, 1, 65535),
            workers=read.number("WALLET_WORKERS", int, default.workers, 0, 256),
            db_pool_min_size=read.number(
                "WALLET_DB_POOL_MIN_SIZE", int, default.db_pool_min_size, 0
            ),
            db_pool_max_size=read.number(
                "WALLET_DB_POOL_MAX_SIZE", int, default.db_pool_max_size, 1
            ),
            db_timeout=read.number("WALLET_DB_TIMEOUT", float, default.db_timeout, 0.01),
            db_pgbouncer=read.flag("WALLET_DB_PGBOUNCER", default.db_pgbouncer),
            db_listen_url=read.optional("WALLET_DB_LISTEN_URL"),
            redis_timeout=read.number("WALLET_REDIS_TIMEOUT", float, default.redis_timeout, 0.001),
            cache_ttl=read.number("WALLET_CACHE_TTL", float, default.cache_ttl, 1),
            cache_retry_interval=read.number(
                "WALLET_CACHE_RETRY_INTERVAL", float, default.cache_retry_interval, 0.01
            ),
            retry_after=read.number("WALLET_RETRY_AFTER", int, default.retry_after, 1),
            migrate_on_start=read.flag("WALLET_MIGRATE_ON_START", default.migrate_on_start),
            shutdown_timeout=read.number(
                "WALLET_SHUTDOWN_TIMEOUT", float, default.shutdown_timeout, 0
            ),
            idempotency_ttl_hours=read.number(
                "WALLET_IDEMPOTENCY_TTL_HOURS", float, default.idempotency_ttl_hours, 24
            ),
            idempotency_cleanup_interval=read.number(
                "WALLET_IDEMPOTENCY_CLEANUP_INTERVAL",
                float,
                default.idempotency_cleanup_interval,
                1,
            ),
            hold_expiry_interval=read.number(
                "WALLET_HOLD_EXPIRY_INTERVAL", float, default.hold_expiry_interval, 0.1, 30
            ),
            events_retention_days=read.number(
                "WALLET_EVENTS_RETENTION_DAYS", float, default.events_retention_days, 0.001
            ),
            events_cleanup_interval=read.number(
                "WALLET_EVENTS_CLEANUP_INTERVAL", float, default.events_cleanup_interval, 0.1
            ),
            nats_url=read.optional("WALLET_NATS_URL"),
            relay_interval=read.number(
                "WALLET_RELAY_INTERVAL", float, default.relay_interval, 0.001, 60
            ),
            relay_batch=read.number("WALLET_RELAY_BATCH", int, default.relay_batch, 1, 1000),
            group_commit=read.flag("WALLET_GROUP_COMMIT", default.group_commit),
            batch_max_size=read.number(
                "WALLET_BATCH_MAX_SIZE", int, default.batch_max_size, 1, 10_000
            ),
            cursor_secret=read.optional("WALLET_CURSOR_SECRET"),
            api_keys=read.keys("WALLET_API_KEYS"),
            log_level=read.choice("WALLET_LOG_LEVEL", default.log_level, LOG_LEVELS, upper=True),
            log_format=read.choice("WALLET_LOG_FORMAT", default.log_format, LOG_FORMATS),
            log_requests=read.flag("WALLET_LOG_REQUESTS", default.log_requests),
            default_currency=read.currency("WALLET_DEFAULT_CURRENCY", default.default_currency),
        )
        if settings.db_pool_min_size > settings.db_pool_max_size:
            raise SettingsError("WALLET_DB_POOL_MIN_SIZE must not exceed WALLET_DB_POOL_MAX_SIZE")
        if settings.db_pgbouncer and settings.redis_url != "" and not settings.db_listen_url:
            # A LISTEN through transaction pooling hears nothing: the cache would go stale.
            raise SettingsError(
                "WALLET_DB_PGBOUNCER is on and the cache may be: its fence listener needs a "
                "direct or session-pooled connection; set WALLET_DB_LISTEN_URL, or "
                "WALLET_REDIS_URL= (empty) to turn the cache off"
            )
        return settings

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def cache_enabled(self) -> bool:
        return bool(self.redis_url)


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def words(self, name: str) -> tuple[str, ...]:
        """A comma-separated list; blanks around and between items are dropped."""
        return tuple(word.strip() for word in self._env.get(name, "").split(",") if word.strip())

    def keys(self, name: str) -> tuple[str, ...]:
        """Secrets as a list of words; set but holding none is refused, never "no keys".

        Unset means the choice not to require any; an empty list would silently do the same.
        """
        keys = self.words(name)
        if name in self._env and not keys:
            raise SettingsError(
                f"{name} is set but holds no key; give at least one, or unset it to leave "
                "the API open"
            )
        return keys

    def blank_or_text(self, name: str) -> str | None:
        """None when unset; an empty string when set to blanks (meaning "off")."""
        value = self._env.get(name)
        return None if value is None else value.strip()

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def choice(self, name: str, default: str, allowed: tuple[str, ...], upper: bool = False) -> str:
        raw = self.text(name, default)
        value = raw.upper() if upper else raw.lower()
        if value not in allowed:
            raise SettingsError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
        return value

    def currency(self, name: str, default: Currency) -> Currency:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse_currency(raw)
        except InvalidCurrency as error:
            raise SettingsError(f"{name}: {error}") from None

    def flag(self, name: str, default: bool) -> bool:
        value = self._env.get(name, "").strip().lower()
        if not value:
            return default
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise SettingsError(f"{name} must be true or false, not {value!r}")

    def number(
        self,
        name: str,
        kind: Callable[[str], T],
        default: T,
        minimum: float,
        maximum: float | None = None,
    ) -> T:
        raw = self.optional(name)
        if raw is None:
            return default
        if not _NUMBER.fullmatch(raw):
            raise SettingsError(f"{name} must be a number, not {raw!r}")
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, not {raw!r}") from None
        number = float(value)  # type: ignore[arg-type]
        if number < minimum or (maximum is not None and number > maximum):
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise SettingsError(f"{name} must be {bounds}, not {raw}")
        return value
