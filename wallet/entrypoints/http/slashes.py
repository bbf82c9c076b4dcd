"""Trailing slashes: a known path spelt with one more ``/`` is redirected to its own spelling.

Clients written for other services often add the slash (``POST /api/v1/wallets/``). A 308
keeps the method and the body, so the request is simply sent again to the right path.
"""

from __future__ import annotations

from aiohttp import web
from yarl import URL


def might_redirect(request: web.Request) -> bool:
    """Whether the path ends in a slash it may not need: checked before anything is awaited."""
    path = request.rel_url.raw_path
    return path != "/" and path.endswith("/")


async def canonical_redirect(request: web.Request) -> web.Response | None:
    """A 308 to the path without its trailing slash, when only that path is served.

    A path the app serves as it is (``/``, or one with an empty id inside, which is a 400)
    is never redirected, and a path unknown even without its slash stays a 404.
    """
    path = request.rel_url.raw_path
    if path == "/" or not path.endswith("/") or not _unknown(request):
        return None
    canonical = path[:-1]
    if canonical.startswith("//"):  # would read as another host: never a route here anyway
        return None
    query = request.rel_url.raw_query_string
    target = URL.build(path=canonical, query_string=query, encoded=True)
    match_info = await request.app.router.resolve(request.clone(rel_url=target))
    served = match_info.http_exception
    if served is not None and not isinstance(served, web.HTTPMethodNotAllowed):
        return None
    location = f"{canonical}?{query}" if query else canonical
    return web.Response(status=308, headers={"Location": location})


def _unknown(request: web.Request) -> bool:
    return isinstance(request.match_info.http_exception, web.HTTPNotFound)
