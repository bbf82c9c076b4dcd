"""Liveness and readiness: is the process up, and can it reach its database."""

from __future__ import annotations

from aiohttp import web

from wallet.entrypoints.http.keys import SERVICES, SETTINGS
from wallet.entrypoints.http.problems import SERVICE_UNAVAILABLE, Problem
from wallet.entrypoints.http.render import json_response

routes = web.RouteTableDef()


@routes.get("/health/live")
async def live(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/health/ready")
async def ready(request: web.Request) -> web.Response:
    """Ready while the database answers; a cache outage only degrades, it never unreadies."""
    readiness = await request.app[SERVICES].readiness()
    database = "ok" if readiness.database_ok else "down"
    checks: dict[str, object] = {"database": database, "cache": readiness.cache}
    if not readiness.database_ok:
        raise Problem(
            SERVICE_UNAVAILABLE,
            "The database does not answer",
            headers={"Retry-After": str(request.app[SETTINGS].retry_after)},
            extra=checks,
        )
    return json_response({"status": "ok", **checks})
