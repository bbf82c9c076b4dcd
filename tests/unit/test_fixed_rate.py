"""The fixed-rate generator's lean HTTP client: statuses read right, connections reused."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from aiohttp import web

PERF = Path(__file__).resolve().parents[2] / "perf"


def load_fixed_rate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fixed_rate", PERF / "fixed_rate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fixed_rate"] = module
    spec.loader.exec_module(module)
    return module


fixed_rate = load_fixed_rate()


async def echo_status(request: web.Request) -> web.Response:
    """Answers with the status the body asks for, after a pause, with a body to skip."""
    body = await request.read()
    await asyncio.sleep(0.01)
    return web.Response(status=int(request.match_info["status"]), body=body * 50)


async def test_answers_come_back_with_their_own_status_over_few_connections(
    aiohttp_server: Any,
) -> None:
    app = web.Application()
    app.router.add_post("/status/{status}", echo_status)
    server = await aiohttp_server(app)
    pool = fixed_rate.RawPool("127.0.0.1", server.port, limit=3)
    requests = {
        status: fixed_rate.deposit_request(f"http://127.0.0.1:{server.port}/status/{status}")
        for status in (200, 404, 503)
    }

    answers = await asyncio.gather(
        *(pool.request(requests[status]) for status in [200, 404, 503] * 10)
    )
    pool.close()

    assert answers == [200, 404, 503] * 10
    assert pool.opened == 3


async def test_a_deposit_counts_an_unreachable_server_as_an_error() -> None:
    tally = fixed_rate.Tally()
    pool = fixed_rate.RawPool("127.0.0.1", 1, limit=1)  # nothing listens on port 1
    payload = fixed_rate.deposit_request("http://127.0.0.1:1/api/v1/wallets/x/operation")
    await fixed_rate.deposit(pool, payload, 0.0, 1.0, tally)
    assert tally.errors == {"ConnectionRefusedError": 1}
    assert tally.statuses == {}
