"""The OpenAPI 3.1 document of the API, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from aiohttp import web

routes = web.RouteTableDef()


def document() -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "Wallet API", "version": "1.0.0"}, "paths": {}}


@routes.get("/api/v1/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document())
