"""The JSON API handlers: parse, call one use case, render."""

from __future__ import annotations

from aiohttp import web

from wallet.entrypoints.http.keys import SERVICES
from wallet.entrypoints.http.parsing import (
    parse_empty_object,
    parse_operation,
    parse_page,
    parse_wallet_id,
    read_json,
)
from wallet.entrypoints.http.render import (
    json_response,
    render_applied,
    render_operation_page,
    render_wallet,
    render_wallet_page,
)

routes = web.RouteTableDef()


@routes.post("/api/v1/wallets")
async def create_wallet(request: web.Request) -> web.Response:
    parse_empty_object(await read_json(request))
    wallet = await request.app[SERVICES].create_wallet()
    location = request.app.router["wallet"].url_for(wallet_id=str(wallet.id))
    return json_response(render_wallet(wallet), status=201, headers={"Location": str(location)})


@routes.get("/api/v1/wallets")
async def list_wallets(request: web.Request) -> web.Response:
    limit, cursor = parse_page(request)
    page = await request.app[SERVICES].list_wallets(limit, cursor)
    return json_response(render_wallet_page(page))


@routes.get("/api/v1/wallets/{wallet_id:[^/]+}", name="wallet")
async def get_wallet(request: web.Request) -> web.Response:
    wallet = await request.app[SERVICES].get_wallet(parse_wallet_id(request))
    return json_response(render_wallet(wallet))


@routes.post("/api/v1/wallets/{wallet_id:[^/]+}/operation")
async def post_operation(request: web.Request) -> web.Response:
    wallet_id = parse_wallet_id(request)
    operation = parse_operation(await read_json(request))
    applied = await request.app[SERVICES].apply_operation(wallet_id, operation)
    return json_response(render_applied(applied))


@routes.get("/api/v1/wallets/{wallet_id:[^/]+}/operations")
async def list_operations(request: web.Request) -> web.Response:
    wallet_id = parse_wallet_id(request)
    limit, cursor = parse_page(request)
    page = await request.app[SERVICES].list_operations(wallet_id, limit, cursor)
    return json_response(render_operation_page(page))
