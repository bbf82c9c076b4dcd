"""Settings from WALLET_* variables: defaults, parsing, and refusals that name the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wallet.config import Settings, SettingsError

EVERYTHING = {
    "WALLET_DATABASE_URL": "postgresql://wallet:secret@db:5432/wallet",
    "WALLET_REDIS_URL": "redis://cache:6379/0",
    "WALLET_HOST": "0.0.0.0",
    "WALLET_PORT": "8080",
    "WALLET_WORKERS": "4",
    "WALLET_DB_POOL_MIN_SIZE": "2",
    "WALLET_DB_POOL_MAX_SIZE": "20",
    "WALLET_DB_TIMEOUT": "1.5",
    "WALLET_DB_PGBOUNCER": "true",
    "WALLET_DB_LISTEN_URL": "postgresql://wallet:secret@db-direct:5432/wallet",
    "WALLET_REDIS_TIMEOUT": "0.2",
    "WALLET_CACHE_TTL": "60",
    "WALLET_CACHE_RETRY_INTERVAL": "0.5",
    "WALLET_RETRY_AFTER": "3",
    "WALLET_MIGRATE_ON_START": "false",
    "WALLET_CURSOR_SECRET": "a-cursor-secret-of-enough-length",
    "WALLET_LOG_LEVEL": "debug",
    "WALLET_LOG_FORMAT": "Human",
    "WALLET_LOG_REQUESTS": "off",
}


def refusal(environ: dict[str, str]) -> str:
    """The message of the SettingsError that ``environ`` raises."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    return str(caught.value)


def test_an_empty_environment_gives_the_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.database_url is None
    assert settings.redis_url is None
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 5000, 0)
    assert (settings.db_pool_min_size, settings.db_pool_max_size) == (1, 10)
    assert settings.db_timeout == 2.0
    assert settings.db_pgbouncer is False
    assert settings.redis_timeout == 0.05
    assert settings.cache_ttl == 300.0
    assert settings.cache_retry_interval == 1.0
    assert settings.retry_after == 1
    assert settings.migrate_on_start is True
    assert settings.cursor_secret is None
    assert settings.log_level == "INFO"
    assert settings.log_format == "auto"
    assert settings.log_requests is True


def test_other_variables_are_ignored() -> None:
    assert Settings.from_env({"PORT": "1", "WALLET_UNKNOWN": "x", "HOME": "/"}) == Settings()


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(EVERYTHING)
    assert settings == Settings(
        database_url="postgresql://wallet:secret@db:5432/wallet",
        redis_url="redis://cache:6379/0",
        host="0.0.0.0",
        port=8080,
        workers=4,
        db_pool_min_size=2,
        db_pool_max_size=20,
        db_timeout=1.5,
        db_pgbouncer=True,
        db_listen_url="postgresql://wallet:secret@db-direct:5432/wallet",
        redis_timeout=0.2,
        cache_ttl=60.0,
        cache_retry_interval=0.5,
        retry_after=3,
        migrate_on_start=False,
        cursor_secret="a-cursor-secret-of-enough-length",
        log_level="DEBUG",
        log_format="human",
        log_requests=False,
    )
    assert settings.cache_enabled


def test_numbers_have_their_declared_types() -> None:
    settings = Settings.from_env(EVERYTHING)
    for name in ("port", "workers", "db_pool_min_size", "db_pool_max_size", "retry_after"):
        assert type(getattr(settings, name)) is int, name
    for name in ("db_timeout", "redis_timeout", "cache_ttl", "cache_retry_interval"):
        assert type(getattr(settings, name)) is float, name


def test_the_process_environment_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALLET_PORT", "6001")
    monkeypatch.delenv("WALLET_HOST", raising=False)
    settings = Settings.from_env()
    assert settings.port == 6001
    assert settings.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("name", "raw", "attribute", "value"),
    [
        ("WALLET_PORT", " 8080 ", "port", 8080),
        ("WALLET_PORT", "", "port", 5000),
        ("WALLET_PORT", "   ", "port", 5000),
        ("WALLET_HOST", "", "host", "127.0.0.1"),
        ("WALLET_DATABASE_URL", "", "database_url", None),
        ("WALLET_DATABASE_URL", "  ", "database_url", None),
        ("WALLET_CURSOR_SECRET", "", "cursor_secret", None),
        ("WALLET_LOG_LEVEL", "warning", "log_level", "WARNING"),
        ("WALLET_DB_TIMEOUT", "3", "db_timeout", 3.0),
    ],
)
def test_values_are_trimmed_and_blank_means_default(
    name: str, raw: str, attribute: str, value: object
) -> None:
    assert getattr(Settings.from_env({name: raw}), attribute) == value


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "On", " true "])
def test_true_flags(raw: str) -> None:
    assert Settings.from_env({"WALLET_MIGRATE_ON_START": raw}).migrate_on_start is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "OFF"])
def test_false_flags(raw: str) -> None:
    assert Settings.from_env({"WALLET_MIGRATE_ON_START": raw}).migrate_on_start is False


@pytest.mark.parametrize("raw", ["maybe", "2", "y", "enabled", "tru"])
def test_an_unknown_flag_is_refused_by_name(raw: str) -> None:
    assert "WALLET_MIGRATE_ON_START" in refusal({"WALLET_MIGRATE_ON_START": raw})


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("on", True), ("0", False), ("", False)])
def test_the_pgbouncer_flag_is_read(raw: str, value: bool) -> None:
    environ = {"WALLET_DB_PGBOUNCER": raw, "WALLET_REDIS_URL": ""}
    assert Settings.from_env(environ).db_pgbouncer is value


@pytest.mark.parametrize("redis", [None, "redis://cache:6379/0"], ids=["local", "configured"])
def test_pgbouncer_with_a_cache_needs_a_url_the_fence_listener_can_use(redis: str | None) -> None:
    """A LISTEN through transaction pooling hears nothing: the cache would serve stale."""
    environ = {"WALLET_DB_PGBOUNCER": "true"} | ({"WALLET_REDIS_URL": redis} if redis else {})
    message = refusal(environ)
    assert "WALLET_DB_LISTEN_URL" in message
    assert "WALLET_REDIS_URL" in message
    listening = Settings.from_env(environ | {"WALLET_DB_LISTEN_URL": "postgresql://db/w"})
    assert listening.db_listen_url == "postgresql://db/w"


def test_an_unknown_pgbouncer_flag_is_refused_by_name() -> None:
    assert "WALLET_DB_PGBOUNCER" in refusal({"WALLET_DB_PGBOUNCER": "transaction"})


INTEGERS = ["WALLET_PORT", "WALLET_WORKERS", "WALLET_DB_POOL_MAX_SIZE", "WALLET_RETRY_AFTER"]
FLOATS = ["WALLET_DB_TIMEOUT", "WALLET_REDIS_TIMEOUT", "WALLET_CACHE_TTL"]
FLOATS += ["WALLET_CACHE_RETRY_INTERVAL"]


@pytest.mark.parametrize("name", [*INTEGERS, "WALLET_DB_POOL_MIN_SIZE"])
@pytest.mark.parametrize("raw", ["abc", "1.5", "5000.0", "0x10", "1e3", "5 0"])
def test_a_malformed_integer_is_refused_by_name(name: str, raw: str) -> None:
    assert name in refusal({name: raw})


@pytest.mark.parametrize("name", FLOATS)
@pytest.mark.parametrize("raw", ["abc", "1,5", "one", "--1"])
def test_a_malformed_number_is_refused_by_name(name: str, raw: str) -> None:
    assert name in refusal({name: raw})


@pytest.mark.parametrize("name", FLOATS)
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("nan"),
        pytest.param("inf"),
        pytest.param("-inf"),
    ],
)
def test_a_non_finite_number_is_refused_by_name(name: str, raw: str) -> None:
    assert name in refusal({name: raw})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("WALLET_PORT", "0"),
        ("WALLET_PORT", "65536"),
        ("WALLET_PORT", "-1"),
        ("WALLET_WORKERS", "257"),
        ("WALLET_DB_POOL_MIN_SIZE", "-1"),
        ("WALLET_DB_POOL_MAX_SIZE", "0"),
        ("WALLET_DB_TIMEOUT", "0"),
        ("WALLET_DB_TIMEOUT", "-1"),
        ("WALLET_REDIS_TIMEOUT", "0"),
        ("WALLET_CACHE_TTL", "0.5"),
        ("WALLET_CACHE_RETRY_INTERVAL", "0"),
        ("WALLET_RETRY_AFTER", "0"),
    ],
)
def test_a_number_out_of_range_is_refused_by_name(name: str, raw: str) -> None:
    assert name in refusal({name: raw})


@pytest.mark.parametrize(
    ("name", "raw", "attribute", "value"),
    [
        ("WALLET_PORT", "1", "port", 1),
        ("WALLET_PORT", "65535", "port", 65535),
        ("WALLET_WORKERS", "256", "workers", 256),
        ("WALLET_WORKERS", "0", "workers", 0),
        ("WALLET_DB_POOL_MIN_SIZE", "0", "db_pool_min_size", 0),
        ("WALLET_RETRY_AFTER", "1", "retry_after", 1),
        ("WALLET_CACHE_TTL", "1", "cache_ttl", 1.0),
    ],
)
def test_a_number_on_its_bound_is_accepted(
    name: str, raw: str, attribute: str, value: object
) -> None:
    assert getattr(Settings.from_env({name: raw}), attribute) == value


def test_a_pool_whose_minimum_exceeds_its_maximum_is_refused() -> None:
    message = refusal({"WALLET_DB_POOL_MIN_SIZE": "11", "WALLET_DB_POOL_MAX_SIZE": "10"})
    assert "WALLET_DB_POOL_MIN_SIZE" in message
    assert "WALLET_DB_POOL_MAX_SIZE" in message
    assert "WALLET_DB_POOL_MIN_SIZE" in refusal({"WALLET_DB_POOL_MIN_SIZE": "11"})
    assert "WALLET_DB_POOL_MAX_SIZE" in refusal({"WALLET_DB_POOL_MAX_SIZE": "0"})


def test_a_pool_of_equal_bounds_is_accepted() -> None:
    settings = Settings.from_env({"WALLET_DB_POOL_MIN_SIZE": "5", "WALLET_DB_POOL_MAX_SIZE": "5"})
    assert (settings.db_pool_min_size, settings.db_pool_max_size) == (5, 5)


@pytest.mark.parametrize(
    ("environ", "redis_url", "enabled"),
    [
        ({"WALLET_REDIS_URL": ""}, "", False),
        ({"WALLET_REDIS_URL": "redis://localhost:6379/0"}, "redis://localhost:6379/0", True),
        ({}, None, False),
    ],
    ids=["empty-turns-the-cache-off", "url-turns-it-on", "unset-leaves-the-choice-to-the-cli"],
)
def test_the_redis_url_decides_the_cache(
    environ: dict[str, str], redis_url: str | None, enabled: bool
) -> None:
    settings = Settings.from_env(environ)
    assert settings.redis_url == redis_url
    assert settings.cache_enabled is enabled


def test_the_cursor_secret_is_kept_out_of_repr() -> None:
    settings = Settings.from_env({"WALLET_CURSOR_SECRET": "do-not-print-me-0123456789"})
    assert settings.cursor_secret == "do-not-print-me-0123456789"
    assert "do-not-print-me" not in repr(settings)


def test_overrides_change_only_what_they_name() -> None:
    settings = Settings.from_env(EVERYTHING)
    changed = settings.with_overrides(port=9000)
    assert changed.port == 9000
    assert changed.with_overrides(port=settings.port) == settings


def test_api_keys_are_a_comma_separated_list_and_off_by_default() -> None:
    assert Settings.from_env({}).api_keys == ()
    keys = Settings.from_env({"WALLET_API_KEYS": " one, two ,,three "}).api_keys
    assert keys == ("one", "two", "three")
    assert "k3y-s3cr3t" not in repr(Settings.from_env({"WALLET_API_KEYS": "k3y-s3cr3t"}))


@pytest.mark.parametrize("raw", ["", " ", ",", ", ,", " ,, "])
def test_api_keys_set_to_no_key_are_refused_not_read_as_auth_off(raw: str) -> None:
    message = refusal({"WALLET_API_KEYS": raw})
    assert "WALLET_API_KEYS" in message
    assert "no key" in message


def test_serve_refuses_to_start_with_an_empty_key_list_in_one_line() -> None:
    unreachable = "postgresql://nobody@127.0.0.1:1/none"  # a start past the check fails fast
    env = {**os.environ, "WALLET_API_KEYS": " , ", "WALLET_DATABASE_URL": unreachable}
    command = [sys.executable, "-m", "wallet", "serve", "--port", "1"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "wallet: WALLET_API_KEYS is set but holds no key; give at least one, or unset it to "
        "leave the API open"
    ]


@pytest.mark.parametrize(
    ("name", "raw"), [("WALLET_LOG_LEVEL", "verbose"), ("WALLET_LOG_FORMAT", "xml")]
)
def test_log_settings_outside_their_choices_are_refused(name: str, raw: str) -> None:
    message = refusal({name: raw})
    assert name in message
    assert repr(raw) in message
