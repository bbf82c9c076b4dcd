"""The wallet page: one Jinja2 template and its local assets."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from wallet.domain.currency import CURRENCIES
from wallet.domain.model import OperationType
from wallet.entrypoints.http.keys import SERVICES
from wallet.entrypoints.http.problems import ANSWERED, for_status

STATIC_URL = "/static"
STATIC_ROOT = web.AppKey("static_root", Path)
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*", re.ASCII)


def setup(app: web.Application, templates: jinja2.BaseLoader, static: Path) -> None:
    aiohttp_jinja2.setup(app, loader=templates, autoescape=jinja2.select_autoescape(default=True))
    app[STATIC_ROOT] = static.resolve()
    app.router.add_get("/", index)
    app.router.add_get(STATIC_URL + "/{name}", asset)


async def index(request: web.Request) -> web.Response:
    context = {
        "static_url": STATIC_URL,
        "catalogue": page_catalogue(),
        "default_currency": request.app[SERVICES].default_currency.code,
    }
    return aiohttp_jinja2.render_template("index.html", request, context)


@functools.cache
def page_catalogue() -> dict[str, object]:
    """What the page's script knows of the service, rendered into the page as JSON data.

    Each problem a client can get, the problem an answer's bare status stands for, each
    kind of ledger entry with its sign, and each currency a wallet may hold with its
    minor digits; the page words messages, draws entries and checks amounts from these,
    so it keeps no list of its own to fall out of step. The default currency is a
    setting, not part of the catalogue: the page gets it on its own.
    """
    return {
        "problems": {kind.code: {"status": kind.status, "title": kind.title} for kind in ANSWERED},
        "codeForStatus": {
            str(kind.status): kind.code for kind in ANSWERED if for_status(kind.status) is kind
        },
        "entryTypes": {entry.value: {"sign": entry.sign} for entry in OperationType},
        "currencies": {code: currency.digits for code, currency in CURRENCIES.items()},
    }


async def asset(request: web.Request) -> web.FileResponse:
    """A file of the flat ``static/`` folder; anything else is a plain 404 problem."""
    name = request.match_info["name"]
    path = request.app[STATIC_ROOT] / name
    if not _ASSET_NAME.fullmatch(name) or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=300"})
