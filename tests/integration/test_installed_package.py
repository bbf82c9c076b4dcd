"""The built wheel, installed into a fresh virtual environment outside the checkout, serves the
page, every static file and the API docs from the package alone, started from elsewhere."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
# What a build never reads: local environments, VCS data, caches, run output, and the in-tree
# build folders, whose leftovers would otherwise end up in the wheel.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "var", "artifacts", "build", "dist", "*.egg-info", "__pycache__",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", ".schemathesis",
)  # fmt: skip
# setuptools' warnings: `.../setuptools/<module>.py:<line>: <Category>: <message>`, the message
# set between `!!` lines, and distutils' `warning:` lines. Byte-compiling is off wherever
# PYTHONDONTWRITEBYTECODE is set, which says nothing about the package.
SETUPTOOLS_WARNING = re.compile(
    r"/(?:setuptools|_?distutils)/\S+\.py:\d+: \w+: |^[ \t]*!![ \t]*$|"
    r"^[ \t]*warning: (?!\w+: byte-compiling is disabled)",
    re.MULTILINE,
)
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def run(
    command: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    """A command's output, once it has succeeded."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output: str = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def outside_env() -> dict[str, str]:
    """This environment, without anything that would put the checkout on the path."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}


def build_wheel(tmp_path: Path) -> tuple[Path, str]:
    """The wheel pip builds from a copy of the checkout, as `pip install .` does; (wheel,
    pip's verbose output, which holds the build backend's)."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    output = run([*pip, "wheel", "--no-deps", "--verbose", "--wheel-dir", wheels, source])
    (wheel,) = wheels.glob("wallet_service-*.whl")
    return wheel, output


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    """A new virtual environment holding the wheel alone; the dependencies come from this
    test's environment, on the path after the venv's own site-packages. Its python."""
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--no-deps", "--no-index", wheel])
    site_packages = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "wallet-test-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


@dataclass
class Installed:
    python: Path
    venv: Path
    build_output: str


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp_path = tmp_path_factory.mktemp("installed-package")
    wheel, build_output = build_wheel(tmp_path)
    python = fresh_venv(tmp_path, wheel)
    return Installed(python, python.parents[1], build_output)


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with no source tree in it."""
    return tmp_path_factory.mktemp("elsewhere")


@pytest.fixture
def service(
    installed: Installed, elsewhere: Path, database_url: str, redis_url: str
) -> Iterator[str]:
    """`python -m wallet serve` of the installed package, started in another directory."""
    port = free_port()
    env = outside_env() | {"WALLET_DATABASE_URL": database_url, "WALLET_REDIS_URL": redis_url}
    log_path = elsewhere / "serve.log"
    command = [installed.python, "-m", "wallet", "serve", "--port", port, "--workers", "1"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(part) for part in command],
            cwd=elsewhere,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log_path)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {log_path.read_text()}")
        with contextlib.suppress(OSError):
            if get(url + "/health/ready")[0] == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"serve never became ready: {log_path.read_text()}")


def get(url: str) -> tuple[int, str, bytes]:
    """(status, content type, body), for error statuses too."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), error.read()


def static_files() -> list[Path]:
    """What the checkout's static/ holds for the page (not the package's own module)."""
    return sorted(
        path
        for path in (ROOT / "static").iterdir()
        if path.is_file() and path.suffix != ".py" and not path.name.startswith(".")
    )


def test_the_wheel_builds_without_setuptools_warnings(installed: Installed) -> None:
    warnings = [m.group(0) for m in SETUPTOOLS_WARNING.finditer(installed.build_output)]
    assert not warnings, installed.build_output
    assert "Successfully built wallet-service" in installed.build_output


def test_the_installed_package_reads_nothing_from_the_checkout(
    installed: Installed, elsewhere: Path
) -> None:
    probe = (
        "import importlib.resources, json, wallet; print(json.dumps([wallet.__file__, "
        "str(importlib.resources.files('wallet.templates')), "
        "str(importlib.resources.files('wallet.static'))]))"
    )
    paths = json.loads(run([installed.python, "-c", probe], cwd=elsewhere, env=outside_env()))
    for path in map(Path, paths):
        assert path.is_relative_to(installed.venv), path
        assert not path.is_relative_to(ROOT), path
    templates, static = Path(paths[1]), Path(paths[2])
    assert {"base.html", "index.html", "api_docs.html"} <= {p.name for p in templates.iterdir()}
    assert {p.name for p in static_files()} <= {p.name for p in static.iterdir()}


def test_the_page_and_the_api_docs_are_served(service: str) -> None:
    status, content_type, body = get(service + "/")
    assert (status, content_type) == (200, "text/html")
    assert b'src="/static/app.js"' in body
    status, content_type, body = get(service + "/api/docs")
    assert (status, content_type) == (200, "text/html")
    assert b"/api/docs/assets/swagger-ui-bundle.js" in body
    status, content_type, _ = get(service + "/api/docs/assets/swagger-ui.css")
    assert (status, content_type) == (200, "text/css")


def test_every_static_file_is_served_as_it_is_in_the_checkout(service: str) -> None:
    files = static_files()
    assert {"app.js", "api.js", "balance-chart.js", "app.css", "favicon.svg"} <= {
        p.name for p in files
    }
    for path in files:
        status, content_type, body = get(f"{service}/static/{path.name}")
        assert status == 200, path.name
        assert CONTENT_TYPES[path.suffix] in content_type, (path.name, content_type)
        assert body == path.read_bytes(), path.name
    assert get(service + "/static/__init__.py")[0] == 404
