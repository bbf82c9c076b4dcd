"""The wallet page: one Jinja2 template and its local assets."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

STATIC_URL = "/static"


def setup(app: web.Application, root: Path) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(root / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app.router.add_get("/", index)
    app.router.add_static(STATIC_URL, root / "static")


async def index(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("index.html", request, {"static_url": STATIC_URL})
