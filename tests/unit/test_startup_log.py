"""The line ``serve``, ``migrate`` and ``audit`` log at start: which database and cache."""

from __future__ import annotations

import logging

import pytest

from wallet.adapters.postgres import embedded
from wallet.config import Settings
from wallet.entrypoints import cli


@pytest.mark.parametrize(
    ("url", "where"),
    [
        (
            "postgresql://wallet:s3cret@db.example:6432/wallet?sslmode=require",
            "db.example:6432/wallet",
        ),
        ("postgresql://a:s3cret@h1:5432,h2:5433/wallet", "h1:5432,h2:5433/wallet"),
        ("postgresql:///wallet?host=/run/postgresql&password=s3cret", "/run/postgresql/wallet"),
        ("redis://:s3cret@cache:6379/0", "cache:6379/0"),
        ("redis://default:s3cret@[::1]:6380", "[::1]:6380"),
    ],
)
def test_a_location_names_hosts_ports_and_path_never_a_password(url: str, where: str) -> None:
    assert cli.location(url) == where


def start_up_line(settings: Settings, caplog: pytest.LogCaptureFixture) -> tuple[Settings, str]:
    with caplog.at_level(logging.INFO, logger="wallet"):
        resolved = cli._resolved(settings)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("database: ")]
    assert len(lines) == 1, caplog.text
    return resolved, lines[0]


def test_the_configured_database_and_cache_are_named(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(
        database_url="postgresql://wallet:s3cret@db.example:5432/wallet",
        redis_url="redis://:s3cret@cache.example:6379/2",
    )
    resolved, line = start_up_line(settings, caplog)

    assert resolved == settings
    assert line == (
        "database: PostgreSQL at db.example:5432/wallet (WALLET_DATABASE_URL);"
        " cache: Redis at cache.example:6379/2 (WALLET_REDIS_URL)"
    )


def test_the_local_database_and_a_cache_turned_off_are_named(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, int]] = []

    def answers(host: str, port: int) -> bool:
        asked.append((host, port))
        return True

    monkeypatch.setattr(embedded, "answers", answers)
    resolved, line = start_up_line(Settings(redis_url=""), caplog)

    assert asked == [("127.0.0.1", 5432)]
    assert resolved.database_url == "postgresql://postgres@127.0.0.1:5432/wallet"
    assert resolved.redis_url == ""
    assert line == (
        "database: local PostgreSQL at 127.0.0.1:5432; cache: off (WALLET_REDIS_URL is empty)"
    )


def test_the_local_redis_or_its_absence_is_named(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = "postgresql://postgres@db:5432/wallet"
    for answering, url, cache in [
        (True, "redis://127.0.0.1:6379/0", "local Redis at 127.0.0.1:6379/0"),
        (False, "", "off (no Redis answers on 127.0.0.1:6379)"),
    ]:
        caplog.clear()
        monkeypatch.setattr(cli, "answers", lambda host, port, answering=answering: answering)
        resolved, line = start_up_line(Settings(database_url=database), caplog)
        assert resolved.redis_url == url
        assert line.endswith(f"; cache: {cache}")
