"""perf/locustfile.py: what its users send, and what it may import (it runs in locust's image)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LOCUSTFILE = Path(__file__).resolve().parents[2] / "perf" / "locustfile.py"
USER_CLASSES = ("HotWalletUser", "ManyWalletsUser", "ReadHeavyUser", "FixedRateUser")

# In a process of its own: importing locust patches the standard library with gevent's.
AUTHORIZATION_OF_EACH_USER = """
import importlib.util, json, sys
from locust.env import Environment

spec = importlib.util.spec_from_file_location("locustfile", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
users = {}
for name in sys.argv[2:]:
    user_class = getattr(module, name)
    user_class.host = "http://127.0.0.1:9"  # what locust's --host does; nothing is sent
    users[name] = user_class(Environment())
print(json.dumps({name: user.client.headers.get("Authorization") for name, user in users.items()}))
"""


def authorization_headers(**environ: str) -> dict[str, str | None]:
    env = {k: v for k, v in os.environ.items() if k != "LOCUST_API_KEY"} | environ
    script = [sys.executable, "-c", AUTHORIZATION_OF_EACH_USER, str(LOCUSTFILE), *USER_CLASSES]
    done = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60, check=True)
    headers: dict[str, str | None] = json.loads(done.stdout.splitlines()[-1])
    return headers


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({"LOCUST_API_KEY": "k3y-for-load"}, "Bearer k3y-for-load"), ({}, None)],
    ids=["with-key", "without"],
)
def test_every_user_sends_the_api_key_only_when_given(
    environ: dict[str, str], expected: str | None
) -> None:
    assert authorization_headers(**environ) == dict.fromkeys(USER_CLASSES, expected)


def imported_packages(source: str) -> set[str]:
    """The top-level package of every import in ``source``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {name.split(".")[0] for name in names}


def test_imports_only_the_standard_library_locust_and_gevent() -> None:
    packages = imported_packages(LOCUSTFILE.read_text(encoding="utf-8"))
    assert {"locust", "gevent"} <= packages
    assert packages - sys.stdlib_module_names - {"locust", "gevent"} == set()
