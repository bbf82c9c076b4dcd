"""The wallet page: one Jinja2 template and its local assets."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

STATIC_URL = "/static"
STATIC_ROOT = web.AppKey("static_root", Path)
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*", re.ASCII)


def setup(app: web.Application, root: Path) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(root / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app[STATIC_ROOT] = (root / "static").resolve()
    app.router.add_get("/", index)
    app.router.add_get(STATIC_URL + "/{name}", asset)


async def index(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("index.html", request, {"static_url": STATIC_URL})


async def asset(request: web.Request) -> web.FileResponse:
    """A file of the flat ``static/`` folder; anything else is a plain 404 problem."""
    name = request.match_info["name"]
    path = request.app[STATIC_ROOT] / name
    if not _ASSET_NAME.fullmatch(name) or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=300"})
