"""Migrations: applied once each, safe when several processes race to apply them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg

from wallet.adapters.postgres.migrate import (
    available_migrations,
    ensure_database,
    migrate,
)


async def applied_versions(url: str) -> list[int]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await connection.close()
    return [row["version"] for row in rows]


async def test_a_missing_database_is_created_once(fresh_url: str) -> None:
    assert await ensure_database(fresh_url) is True
    assert await ensure_database(fresh_url) is False


async def test_concurrent_migrations_apply_each_file_once(fresh_url: str) -> None:
    await ensure_database(fresh_url)

    results = await asyncio.gather(*(migrate(fresh_url) for _ in range(4)))

    shipped = [migration.name for migration in available_migrations()]
    assert sorted(results, key=len)[-1] == shipped
    assert sum(len(applied) for applied in results) == len(shipped)
    assert await applied_versions(fresh_url) == [m.version for m in available_migrations()]
    assert await migrate(fresh_url) == []


def test_migrate_commands_in_parallel_processes(fresh_url: str) -> None:
    env = {**os.environ, "WALLET_DATABASE_URL": fresh_url, "WALLET_REDIS_URL": ""}
    commands = [
        subprocess.Popen(
            [sys.executable, "-m", "wallet", "migrate"], env=env, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outcomes = [(command.wait(timeout=60), command.stderr) for command in commands]

    errors = [stderr.read().decode()[-2000:] for _, stderr in outcomes if stderr]
    assert [code for code, _ in outcomes] == [0, 0, 0], errors
    versions = asyncio.run(applied_versions(fresh_url))
    assert versions == [m.version for m in available_migrations()]
    for _, stderr in outcomes:
        assert stderr is not None
        stderr.close()
