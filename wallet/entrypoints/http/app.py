"""The aiohttp application: routes, the error middleware and the container's lifetime."""

from __future__ import annotations

import asyncio
import functools
import hmac
import importlib.resources
import itertools
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from wallet.config import Settings
from wallet.container import Container, resolved
from wallet.deadlines import request_budget
from wallet.domain.errors import Replayed, StorageUnavailable, WalletError
from wallet.domain.relay import Relay
from wallet.entrypoints.http import api, docs, health, openapi, pages
from wallet.entrypoints.http.headers import stamp
from wallet.entrypoints.http.keys import CONTAINER, SERVICES, SETTINGS
from wallet.entrypoints.http.parsing import MAX_BODY_BYTES
from wallet.entrypoints.http.problems import (
    CLIENT_CLOSED,
    Problem,
    from_domain,
    from_http,
    internal_error,
    invalid,
    unauthorised,
)
from wallet.entrypoints.http.render import REPLAYED_HEADER
from wallet.entrypoints.http.request_keys import ANSWERED_IN, REQUEST_ID
from wallet.entrypoints.http.slashes import canonical_redirect, might_redirect
from wallet.entrypoints.logs import route_of
from wallet.metrics import (
    DB_POOL_CONNECTIONS,
    EXPOSITION_CONTENT_TYPE,
    IDEMPOTENT_REPLAYS,
    OPEN_HOLDS,
    count_hold,
    count_request,
    exposition,
    flush_tally_every,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1/"
# The page's files ship inside the package: setup.cfg maps the source tree's templates/ and
# static/ to these two packages, so an installed service serves them from wherever it runs.
TEMPLATES_PACKAGE = "wallet.templates"
STATIC_PACKAGE = "wallet.static"
POOL_WATCH_INTERVAL = 1.0
METRICS_FLUSH_INTERVAL = 1.0  # how far behind one worker's samples may be in a scrape
RELAY_RESTART = 5.0  # seconds before a relay that failed is started again
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)


def create_app(container: Container) -> web.Application:
    settings: Settings = container.settings()
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[problems],
        # Lines and headers up to the body limit reach the app and get its problem answers;
        # past that, aiohttp refuses the request itself (see wallet.entrypoints.http.edge).
        # Bodies come as sent: read_json decodes the content codings it accepts, within
        # the limit, and refuses the others (aiohttp's decoder would take br and zstd).
        handler_args={
            "max_line_size": MAX_BODY_BYTES,
            "max_field_size": MAX_BODY_BYTES,
            "auto_decompress": False,
        },
    )
    app[CONTAINER] = container
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_container_resources)
    app.add_routes(api.routes)
    app.add_routes(health.routes)
    app.add_routes(openapi.routes)
    app.router.add_get("/metrics", metrics)
    pages.setup(app, jinja2.PackageLoader(TEMPLATES_PACKAGE, "."), package_folder(STATIC_PACKAGE))
    docs.setup(app)
    return app


def package_folder(package: str) -> Path:
    """The folder of an installed package on disk: the installed copy, or the source tree's
    folder in an editable install. aiohttp sends static files by path, so a package that is
    not a folder (imported from a zip archive) is refused at startup, not at the first asset."""
    folder = importlib.resources.files(package)
    if not isinstance(folder, Path) or not folder.is_dir():
        raise RuntimeError(f"{package} is not a folder on disk: {folder}")
    return folder


async def _container_resources(app: web.Application) -> AsyncIterator[None]:
    """Open the pools on startup, close them on shutdown."""
    container = app[CONTAINER]
    await resolved(container.init_resources())
    try:
        app[SERVICES] = await resolved(container.wallet_service())
        housekeeping = [
            asyncio.create_task(_forget_expired_keys(app)),
            asyncio.create_task(_forget_expired_events(app)),
            asyncio.create_task(_expire_holds(app)),
            asyncio.create_task(flush_tally_every(METRICS_FLUSH_INTERVAL)),
        ]
        if app[SETTINGS].nats_url:  # beside the requests: none of them waits for NATS
            relay = await resolved(container.event_relay())
            housekeeping.append(asyncio.create_task(_relay_events(relay)))
        pool = await resolved(container.db_pool())
        if pool is not None:
            housekeeping.append(asyncio.create_task(_watch_pool(pool)))
        yield
        for task in housekeeping:
            task.cancel()
        await asyncio.gather(*housekeeping, return_exceptions=True)
    finally:
        await resolved(container.shutdown_resources())


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics; with several workers, summed over all of them."""
    return web.Response(body=exposition(), headers={"Content-Type": EXPOSITION_CONTENT_TYPE})


async def _watch_pool(pool: Any) -> None:
    """Keep the pool gauges current (a scrape may land on another worker)."""
    while True:
        size, idle = pool.get_size(), pool.get_idle_size()
        DB_POOL_CONNECTIONS.labels("in_use").set(size - idle)
        DB_POOL_CONNECTIONS.labels("idle").set(idle)
        await asyncio.sleep(POOL_WATCH_INTERVAL)


async def _forget_expired_keys(app: web.Application) -> None:
    """Expire idempotency records now and then, a batch at a time, beside the requests."""
    settings = app[SETTINGS]
    age = timedelta(hours=settings.idempotency_ttl_hours)
    forget = app[SERVICES].forget_expired_keys
    await _forget_every(settings.idempotency_cleanup_interval, "idempotency keys", forget, age)


async def _forget_expired_events(app: web.Application) -> None:
    """Drop the events past the retention now and then, a batch at a time."""
    settings = app[SETTINGS]
    age = timedelta(days=settings.events_retention_days)
    forget = app[SERVICES].forget_expired_events
    await _forget_every(settings.events_cleanup_interval, "events", forget, age)


async def _forget_every(
    interval: float, what: str, forget: Callable[[timedelta], Awaitable[int]], age: timedelta
) -> None:
    """Forget what is older than ``age`` every ``interval`` seconds; an outage of the
    database only puts it off."""
    while True:
        try:
            forgotten = await forget(age)
        except StorageUnavailable:
            log.warning("could not forget %s now; trying again later", what)
        else:
            if forgotten:
                log.info("forgot %d %s older than %s", forgotten, what, age)
        await asyncio.sleep(interval)


async def _relay_events(relay: Relay) -> None:
    """Run the relay for the app's lifetime; should it ever fail, say so loudly and start
    it again (its lease went with it, so another relay may have taken over meanwhile)."""
    while True:
        try:
            await relay.run()
        except Exception:
            log.exception("the event relay failed; starting it again in %.0f s", RELAY_RESTART)
        await asyncio.sleep(RELAY_RESTART)


async def _expire_holds(app: web.Application) -> None:
    """Mark the holds past their expiry, so that they read EXPIRED in storage too (they do
    to every reader from the moment they expire, marked or not); and count the open ones."""
    interval = app[SETTINGS].hold_expiry_interval
    services = app[SERVICES]
    while True:
        try:
            run = await services.expire_holds()
        except StorageUnavailable:
            log.warning("could not mark expired holds now; trying again later")
        else:
            OPEN_HOLDS.set(run.still_open)
            if run.expired:
                count_hold("expired", run.expired)
                log.info("marked %d holds expired", run.expired)
        await asyncio.sleep(interval)


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Name the request; the one place where errors become problem+json.

    Bugs are logged with the request id and their traceback, never shown.
    """
    given = request.headers.get("X-Request-ID", "")
    named = _CLIENT_REQUEST_ID.fullmatch(given) is not None
    request_id = given if named else _new_request_id()
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500  # unless an answer comes back
    settings = request.app[SETTINGS]  # looked up once: each ``request.app`` walks the match
    try:
        redirect = await canonical_redirect(request) if might_redirect(request) else None
        if redirect is not None:
            response: web.StreamResponse = redirect
        elif _needs_key(request, settings) and (refusal := _key_refusal(request)) is not None:
            response = refusal.response(request_id)
        else:
            with request_budget(settings.db_timeout):
                try:  # awaited here, not in a helper: one coroutine less per request
                    response = await handler(request)
                except Exception as error:
                    response = _answer_error(request, error, request_id, named)
        status = response.status
    except web.HTTPException as passed_on:  # a redirect, answered by aiohttp itself
        status = passed_on.status
        raise
    except asyncio.CancelledError:  # never answered: the client left, the handler was stopped
        status = CLIENT_CLOSED.status
        raise
    finally:
        seconds = request[ANSWERED_IN] = time.perf_counter() - started
        count_request(route_of(request), request.method, status, seconds)
    if REPLAYED_HEADER in response.headers:
        IDEMPOTENT_REPLAYS.inc()
    stamp(response, request[REQUEST_ID])
    return response


def _answer_error(
    request: web.Request, error: Exception, request_id: str, named: bool
) -> web.StreamResponse:
    """The answer to what the handler raised; a redirect is raised again, for aiohttp.

    Called from the handler's ``except`` clause, so a bug's traceback is still at hand.
    """
    if isinstance(error, Problem):
        return error.response(request_id)
    if isinstance(error, Replayed):  # the recorded refusal, with the request id it had then
        if not named:  # the id is ours to choose: the recorded one, as the body says
            request[REQUEST_ID] = error.request_id
        return from_domain(error, request.app[SETTINGS].retry_after).response(error.request_id)
    if isinstance(error, WalletError):
        return from_domain(error, request.app[SETTINGS].retry_after).response(request_id)
    if isinstance(error, web.HTTPException):
        if error.status < 400:
            raise error
        return from_http(error).response(request_id)
    log.exception(
        "unhandled error in %s %s",
        request.method,
        request.path,
        extra={"request_id": request_id, "route": route_of(request)},
    )
    return internal_error().response(request_id)


def _needs_key(request: web.Request, settings: Settings) -> bool:
    """With API keys configured, everything under /api/v1 needs one; health stays open.

    So does the OpenAPI document: it holds no data, and the docs page reads it.
    """
    return (
        bool(settings.api_keys)
        and (request.path + "/").startswith(API_PREFIX)
        and request.path != openapi.DOCUMENT_PATH
    )


def _key_refusal(request: web.Request) -> Problem | None:
    """Why the request may not go on: two credentials (which one to believe?), or no key."""
    if len(request.headers.getall("Authorization", ())) > 1:
        return invalid("Authorization", "must be given at most once")
    return None if _authorised(request) else unauthorised()


def _authorised(request: web.Request) -> bool:
    """A Bearer token equal to one of the keys, compared in constant time against all."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    given = token.strip().encode()
    matched = False
    for key in request.app[SETTINGS].api_keys:
        matched |= hmac.compare_digest(given, key.encode())
    return matched


def _new_request_id() -> str:
    """Unique without a system call each: a random prefix per process and a counter."""
    return f"{_process_prefix()}-{next(_REQUEST_COUNTER):x}"


@functools.cache
def _process_prefix() -> str:
    return uuid.uuid4().hex[:16]


_REQUEST_COUNTER = itertools.count(1)
