"""The JSON API handlers: parse, call one use case, render."""

from __future__ import annotations

from aiohttp import web

from wallet.domain.errors import WalletError
from wallet.domain.model import new_wallet_meaning
from wallet.entrypoints.http.keys import SERVICES
from wallet.entrypoints.http.parsing import (
    parse_capture,
    parse_empty,
    parse_event_query,
    parse_hold,
    parse_hold_id,
    parse_hold_status,
    parse_idempotency,
    parse_moment,
    parse_new_wallet,
    parse_operation,
    parse_page,
    parse_reference_filter,
    parse_transfer,
    parse_transfer_id,
    parse_wallet_id,
    read_json,
)
from wallet.entrypoints.http.render import (
    json_response,
    render_applied,
    render_balance_at,
    render_captured,
    render_event_page,
    render_hold,
    render_hold_page,
    render_operation_page,
    render_transfer,
    render_wallet,
    render_wallet_page,
    replay_headers,
)
from wallet.metrics import count_hold, count_operation, count_transfer

routes = web.RouteTableDef()
# aiohttp tries the routes under one path prefix in this order: the busiest come first.


@routes.post("/api/v1/wallets/{wallet_id:[^/]*}/operation")  # an empty id is malformed: 400
async def post_operation(request: web.Request) -> web.Response:
    wallet_id = parse_wallet_id(request)
    operation = parse_operation(await read_json(request))
    idempotency = parse_idempotency(request, meaning=lambda: operation.meaning)
    try:
        answer = await request.app[SERVICES].apply_operation(wallet_id, operation, idempotency)
    except WalletError as error:
        count_operation(operation.type.value, error.code.lower())
        raise
    count_operation(operation.type.value, "replayed" if answer.replayed else "applied")
    return json_response(render_applied(answer.value), headers=replay_headers(answer.replayed))


@routes.post("/api/v1/transfers")
async def create_transfer(request: web.Request) -> web.Response:
    command = parse_transfer(await read_json(request))
    idempotency = parse_idempotency(request, meaning=lambda: command.meaning)
    try:
        answer = await request.app[SERVICES].transfer(command, idempotency)
    except WalletError as error:
        count_transfer(error.code.lower())
        raise
    count_transfer("replayed" if answer.replayed else "applied")
    location = request.app.router["transfer"].url_for(transfer_id=str(answer.value.id))
    headers = {"Location": str(location), **replay_headers(answer.replayed)}
    return json_response(render_transfer(answer.value), status=201, headers=headers)


@routes.get("/api/v1/transfers/{transfer_id:[^/]+}", name="transfer")
async def get_transfer(request: web.Request) -> web.Response:
    transfer = await request.app[SERVICES].get_transfer(parse_transfer_id(request))
    return json_response(render_transfer(transfer))


@routes.post("/api/v1/wallets/{wallet_id:[^/]*}/holds")
async def create_hold(request: web.Request) -> web.Response:
    command = parse_hold(await read_json(request), parse_wallet_id(request))
    idempotency = parse_idempotency(request, meaning=lambda: command.meaning)
    try:
        answer = await request.app[SERVICES].place_hold(command, idempotency)
    except WalletError as error:
        count_hold(error.code.lower())
        raise
    count_hold("replayed" if answer.replayed else "placed")
    location = request.app.router["hold"].url_for(hold_id=str(answer.value.id))
    headers = {"Location": str(location), **replay_headers(answer.replayed)}
    return json_response(render_hold(answer.value), status=201, headers=headers)


@routes.get("/api/v1/holds/{hold_id:[^/]+}", name="hold")
async def get_hold(request: web.Request) -> web.Response:
    hold = await request.app[SERVICES].get_hold(parse_hold_id(request))
    return json_response(render_hold(hold))


@routes.post("/api/v1/holds/{hold_id:[^/]*}/capture")
async def capture_hold(request: web.Request) -> web.Response:
    command = parse_capture(await read_json(request), parse_hold_id(request))
    idempotency = parse_idempotency(request, meaning=lambda: command.meaning)
    try:
        answer = await request.app[SERVICES].capture_hold(command, idempotency)
    except WalletError as error:
        count_hold(error.code.lower())
        raise
    count_hold("replayed" if answer.replayed else "captured")
    headers = replay_headers(answer.replayed)
    return json_response(render_captured(answer.value), headers=headers)


@routes.post("/api/v1/holds/{hold_id:[^/]*}/void")
async def void_hold(request: web.Request) -> web.Response:
    hold_id = parse_hold_id(request)
    parse_empty(await read_json(request))
    idempotency = parse_idempotency(request, meaning=lambda: "void")
    try:
        answer = await request.app[SERVICES].void_hold(hold_id, idempotency)
    except WalletError as error:
        count_hold(error.code.lower())
        raise
    count_hold("replayed" if answer.replayed else "voided")
    return json_response(render_hold(answer.value), headers=replay_headers(answer.replayed))


@routes.get("/api/v1/wallets/{wallet_id:[^/]*}/holds")
async def list_holds(request: web.Request) -> web.Response:
    wallet_id = parse_wallet_id(request)
    limit, cursor = parse_page(request)
    status = parse_hold_status(request)
    page = await request.app[SERVICES].list_holds(wallet_id, limit, cursor, status)
    return json_response(render_hold_page(page))


@routes.get("/api/v1/wallets/{wallet_id:[^/]+}", name="wallet")
async def get_wallet(request: web.Request) -> web.Response:
    wallet = await request.app[SERVICES].get_wallet(parse_wallet_id(request))
    return json_response(render_wallet(wallet))


@routes.get("/api/v1/wallets/{wallet_id:[^/]*}/operations")
async def list_operations(request: web.Request) -> web.Response:
    wallet_id = parse_wallet_id(request)
    limit, cursor = parse_page(request)
    reference = parse_reference_filter(request)
    page = await request.app[SERVICES].list_operations(wallet_id, limit, cursor, reference)
    return json_response(render_operation_page(page))


@routes.get("/api/v1/wallets/{wallet_id:[^/]*}/balance")
async def get_balance_at(request: web.Request) -> web.Response:
    wallet_id = parse_wallet_id(request)
    at = parse_moment(request)
    balance = await request.app[SERVICES].balance_at(wallet_id, at)
    return json_response(render_balance_at(balance))


@routes.post("/api/v1/wallets")
async def create_wallet(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    currency, metadata = parse_new_wallet(await read_json(request), services.default_currency)
    idempotency = parse_idempotency(request, meaning=lambda: new_wallet_meaning(currency, metadata))
    answer = await services.create_wallet(idempotency, currency=currency, metadata=metadata)
    location = request.app.router["wallet"].url_for(wallet_id=str(answer.value.id))
    headers = {"Location": str(location), **replay_headers(answer.replayed)}
    return json_response(render_wallet(answer.value), status=201, headers=headers)


@routes.get("/api/v1/wallets")
async def list_wallets(request: web.Request) -> web.Response:
    limit, cursor = parse_page(request)
    page = await request.app[SERVICES].list_wallets(limit, cursor)
    return json_response(render_wallet_page(page))


@routes.get("/api/v1/events")
async def list_events(request: web.Request) -> web.Response:
    after, limit, wallet_id = parse_event_query(request)
    events = await request.app[SERVICES].read_events(after, limit, wallet_id)
    return json_response(render_event_page(events))
