"""/api/docs: Swagger UI from its pip package, every asset served by the service itself."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from dependency_injector import providers

from wallet.config import Settings
from wallet.container import Container
from wallet.entrypoints.http.app import create_app

Client = TestClient[web.Request, web.Application]


def keyed(container: Container) -> Container:
    """The container configured with an API key, which these requests never send."""
    settings = Settings(database_url="postgresql://unused", redis_url="", api_keys=("a-key",))
    container.settings.override(providers.Object(settings))
    return container


@pytest.fixture
async def keyed_client(aiohttp_client: Any, container: Container) -> Client:
    client: Client = await aiohttp_client(create_app(keyed(container)))
    return client


@pytest.fixture(params=["open", "with-api-keys"])
async def browser(
    request: pytest.FixtureRequest, aiohttp_client: Any, container: Container
) -> Client:
    """The app as a browser without a key sees it, with and without keys configured."""
    if request.param == "with-api-keys":
        container = keyed(container)
    client: Client = await aiohttp_client(create_app(container))
    return client


async def test_the_docs_page_loads_only_local_assets(browser: Client) -> None:
    response = await browser.get("/api/docs")
    html = await response.text()

    assert response.status == 200
    assert response.content_type == "text/html"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "an external URL in the page"
    assert "<script>" not in html, "inline script would break the CSP"
    for asset in re.findall(r"(?:src|href)=\"([^\"]+)\"", html):
        served = await browser.get(asset)
        assert served.status == 200, asset
    spec = re.search(r'data-spec-url="([^"]+)"', html)
    assert spec is not None
    assert (await browser.get(spec.group(1))).status == 200


async def test_with_keys_the_docs_are_open_but_the_data_is_not(keyed_client: Client) -> None:
    assert (await keyed_client.get("/api/docs")).status == 200
    assert (await keyed_client.get("/api/v1/openapi.json")).status == 200
    assert (await keyed_client.get("/api/v1/wallets")).status == 401


async def test_only_the_listed_assets_are_served(client: Client) -> None:
    response = await client.get("/api/docs/assets/index.html")
    assert response.status == 404
    assert (await response.json())["code"] == "NOT_FOUND"
