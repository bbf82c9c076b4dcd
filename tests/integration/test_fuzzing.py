"""schemathesis against the running service: generated and stateful requests from the document.

Every check schemathesis has, over every phase: no 5xx, every status, content type, header
and body as documented, schema-invalid requests refused and schema-valid ones accepted,
methods and auth as documented, resources as their links say. Anything it reports fails
the test. tests/integration/schemathesis_hooks.py says the two things a schema cannot: a
cursor is valid only when the service signed it for that list, and a valid request may be
refused for the state it meets (funds, the balance limit, a used idempotency key).

A bounded number of examples per operation keeps the run to about a minute.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import schemathesis_hooks
from tests.integration.servers import ServiceProcess
from wallet.adapters.postgres.audit import audit

pytestmark = pytest.mark.fuzz

CURSOR_SECRET = "fuzz-test-cursor-secret-of-32-bytes"
PHASES = "examples,coverage,fuzzing,stateful"
MAX_EXAMPLES = 60
SEED = 20261127  # the same requests each run: a finding reproduces
TIMEOUT_SECONDS = 600
CONFIG = "[warnings]\nfail-on = true\n"  # a warning is a finding too


@pytest.fixture
def service(migrated_url: str, redis_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {
        "WALLET_DATABASE_URL": migrated_url,
        "WALLET_REDIS_URL": redis_url,
        "WALLET_WORKERS": "1",
        "WALLET_CURSOR_SECRET": CURSOR_SECRET,
        # Wallets made without a currency hold one of 3 digits, the most the schema lets an
        # amount have: an amount refused for a wallet of fewer is the state it met.
        "WALLET_DEFAULT_CURRENCY": "BHD",
    }
    process = ServiceProcess(env, tmp_path / "service.log")
    process.start()
    yield process
    process.stop()


async def test_schemathesis_reports_nothing(
    service: ServiceProcess, migrated_url: str, tmp_path: Path
) -> None:
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable, "schemathesis is a dev dependency: pip install -e '.[dev]'"
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    command = [
        executable,
        "--config-file",
        str(config),
        "run",
        f"{service.url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--phases",
        PHASES,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",  # two threads can trip CPython 3.11.7's ast.parse (cpython#106905) in hypothesis
        "--generation-database",
        "none",
        "--no-color",
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": schemathesis_hooks.__file__,
        schemathesis_hooks.SECRET_VARIABLE: CURSOR_SECRET,
        schemathesis_hooks.BASE_URL_VARIABLE: service.url,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        command,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )

    report = result.stdout[-8000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "No issues found" in result.stdout, report
    audited = await audit(migrated_url)
    assert audited.clean, audited.findings
