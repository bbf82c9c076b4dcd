"""schemathesis against the running service: generated and stateful requests from the document.

A bounded budget keeps CI fast. The checks are the ones the document can vouch for: no
5xx, and every status, content type, header and body as documented; schema-invalid
requests are refused. Acceptance of every schema-valid request is not checked: money
with more than two decimals, a cursor the service did not sign and a reused
idempotency key are refused by rules a JSON schema cannot spell.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import ServiceProcess
from wallet.adapters.postgres.audit import audit

pytestmark = pytest.mark.fuzz

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    ]
)
BUDGET_SECONDS = 30


@pytest.fixture
def service(migrated_url: str, redis_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {
        "WALLET_DATABASE_URL": migrated_url,
        "WALLET_REDIS_URL": redis_url,
        "WALLET_WORKERS": "1",
    }
    process = ServiceProcess(env, tmp_path / "service.log")
    process.start()
    yield process
    process.stop()


async def test_schemathesis_finds_nothing_the_document_forbids(
    service: ServiceProcess, migrated_url: str
) -> None:
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable, "schemathesis is a dev dependency: pip install -e '.[dev]'"
    command = [
        executable,
        "run",
        f"{service.url}/api/v1/openapi.json",
        "--checks",
        CHECKS,
        "--phases",
        "examples,fuzzing,stateful",
        "--max-time",
        str(BUDGET_SECONDS),
        "--workers",
        "2",
    ]
    result = await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=BUDGET_SECONDS * 4,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    report = await audit(migrated_url)
    assert report.clean, report.findings
