"""/api/docs: Swagger UI from its pip package, every asset served by the service itself."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]


async def test_the_docs_page_loads_only_local_assets(client: Client) -> None:
    response = await client.get("/api/docs")
    html = await response.text()

    assert response.status == 200
    assert response.content_type == "text/html"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "an external URL in the page"
    assert "<script>" not in html, "inline script would break the CSP"
    for asset in re.findall(r"(?:src|href)=\"([^\"]+)\"", html):
        served = await client.get(asset)
        assert served.status == 200, asset
    spec = re.search(r'data-spec-url="([^"]+)"', html)
    assert spec is not None
    assert (await client.get(spec.group(1))).status == 200


async def test_only_the_listed_assets_are_served(client: Client) -> None:
    response = await client.get("/api/docs/assets/index.html")
    assert response.status == 404
    assert (await response.json())["code"] == "NOT_FOUND"
