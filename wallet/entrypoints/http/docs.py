"""The API docs page: Swagger UI from its pip package, served locally under the page's CSP."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import swagger_ui_bundle
from aiohttp import web

DOCS_URL = "/api/docs"
ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"}
SWAGGER_UI = Path(swagger_ui_bundle.swagger_ui_path)


def setup(app: web.Application) -> None:
    app.router.add_get(DOCS_URL, docs)
    app.router.add_get(DOCS_URL + "/assets/{name}", asset)


async def docs(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template(
        "api_docs.html", request, {"assets_url": DOCS_URL + "/assets", "static_url": "/static"}
    )


async def asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.FileResponse(SWAGGER_UI / name, headers={"Cache-Control": "public, max-age=3600"})
