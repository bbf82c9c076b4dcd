"""Browser fixtures: Debian's chromium driven by Playwright against the real service.

Each test gets the service of its own (``python -m wallet serve`` on a free port) over
a database of its own, on the real PostgreSQL and Redis. The browser is the system's
``/usr/bin/chromium`` (``WALLET_TEST_CHROMIUM`` names another); Playwright never
downloads one. A missing browser fails the run loudly: these tests are never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, expect, sync_playwright

from tests.browser.wallet_page import DESKTOP, OpenPage, WalletPage
from tests.integration.conftest import (  # noqa: F401  (fixtures, found by name)
    fresh_url,
    migrated_url,
    redis_url,
    server_url,
)
from tests.integration.servers import ServiceProcess

DEFAULT_CHROMIUM = "/usr/bin/chromium"

expect.set_options(timeout=10_000)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives chromium against the running service")
    config.addinivalue_line(
        "markers", "service_env(**variables): settings of the test's own service, by name"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.path):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = os.environ.get("WALLET_TEST_CHROMIUM", DEFAULT_CHROMIUM)
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"Chromium is required at {path} for the browser tests: install Debian's "
            "`chromium` package (apt-get install chromium) or set WALLET_TEST_CHROMIUM. "
            "Do not run `playwright install`; the tests use the system browser.",
            pytrace=False,
        )
    return path


@pytest.fixture
def service(
    request: pytest.FixtureRequest,
    migrated_url: str,  # noqa: F811
    redis_url: str,  # noqa: F811
    tmp_path: Path,
) -> Iterator[ServiceProcess]:
    """The service; a test marked ``service_env(WALLET_…="…")`` gets those settings too."""
    env = {
        "WALLET_DATABASE_URL": migrated_url,
        "WALLET_REDIS_URL": redis_url,
        "WALLET_WORKERS": "1",
        "WALLET_MIGRATE_ON_START": "false",  # the fixture migrated it already
    }
    marker = request.node.get_closest_marker("service_env")
    if marker is not None:
        env.update(marker.kwargs)
    process = ServiceProcess(env, tmp_path / "service.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def playwright(service: ServiceProcess) -> Iterator[Playwright]:
    """Started per test, after the service and its database, and stopped before them.

    The sync driver runs an event loop of its own, which must not be running while
    pytest-asyncio sets up or tears down the test's database.
    """
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(playwright: Playwright, chromium_executable: str) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def open_page(service: ServiceProcess, browser: Browser) -> Iterator[OpenPage]:
    """Open the wallet page in a fresh browser context; fail on any script or CSP error."""
    opened = OpenPage(browser, service.url)
    yield opened
    opened.close()
    assert not opened.errors, f"the page reported errors: {opened.errors}"


@pytest.fixture
def wallet_page(open_page: OpenPage) -> WalletPage:
    """The wallet page at desktop width, light theme."""
    return open_page(DESKTOP)
