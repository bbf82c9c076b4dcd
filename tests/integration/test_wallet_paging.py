"""Paging through wallets while others are being created: no skips, no repeats."""

from __future__ import annotations

import asyncio
import time

from tests.integration.conftest import Client

CREATORS = 8
PAGE_SIZE = 7
PAGES_WHILE_CREATING = 15


async def test_pages_never_skip_or_repeat_while_wallets_are_created(client: Client) -> None:
    """A wallet acknowledged before a page request is on that page or a later one."""
    acknowledged: list[tuple[float, str]] = []
    creating = True

    async def create_while_paging() -> None:
        while creating:
            response = await client.post("/api/v1/wallets")
            assert response.status == 201
            acknowledged.append((time.monotonic(), (await response.json())["id"]))

    creators = [asyncio.create_task(create_while_paging()) for _ in range(CREATORS)]
    await asyncio.sleep(0.1)
    seen: list[dict[str, str]] = []
    requests: list[tuple[float, int]] = []  # when each page was asked for, and how many were seen
    cursor: str | None = None
    while True:
        if len(requests) == PAGES_WHILE_CREATING:
            creating = False
            await asyncio.gather(*creators)
        requests.append((time.monotonic(), len(seen)))
        query = {"limit": str(PAGE_SIZE)} | ({"cursor": cursor} if cursor else {})
        page = await (await client.get("/api/v1/wallets", params=query)).json()
        seen.extend(page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break

    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)), "a wallet was listed twice"
    positions = [(item["createdAt"], item["id"]) for item in seen]
    assert positions == sorted(positions), "pages are not in (createdAt, id) order"
    assert len(acknowledged) > PAGE_SIZE * PAGES_WHILE_CREATING // 2
    listed = set(ids)
    for wallet_id in (wallet_id for _, wallet_id in acknowledged):
        assert wallet_id in listed, f"wallet {wallet_id} was created but never listed"
    for asked_at, seen_before in requests[1:]:
        passed = positions[seen_before - 1]  # the position the page's cursor carried
        earlier = set(ids[:seen_before])
        for acked_at, wallet_id in acknowledged:
            if acked_at < asked_at and wallet_id not in earlier:
                position = positions[ids.index(wallet_id)]
                assert position > passed, f"wallet {wallet_id} landed behind a cursor: skipped"
