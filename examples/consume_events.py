"""Consume the wallet service's events: from NATS JetStream, or paged from its HTTP feed.

    python examples/consume_events.py stream nats://127.0.0.1:4222 [--durable billing]
    python examples/consume_events.py feed http://127.0.0.1:5000 [--after 1041] [--api-key K]

Stream WALLET_EVENTS has every event in id order, at least once: after a relay's crash or
a NATS outage an event may come again, with the same ``Nats-Msg-Id`` (its id) and the same
body. Ids only grow, so a consumer that keeps the last id it handled (ideally in the same
transaction as what handling it wrote) drops a repeat by comparing. The HTTP feed has the
same events (``GET /api/v1/events?after=<last id>``, each exactly once, in id order): page it
to catch up from before the stream had them, or past a gap, then go on with the stream.
Needs nats-py (``pip install nats-py``); the feed part only the standard library.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

STREAM = "WALLET_EVENTS"
SUBJECTS = "wallet.events.>"
Event = dict[str, Any]


async def consume(
    url: str, durable: str, handle: Callable[[Event], Awaitable[None]], after: int = 0
) -> None:
    """Hand every event after ``after`` to ``handle``, once each, in id order, for good.

    The durable pull consumer keeps its place on the server: a restarted consumer gets
    what it had not acknowledged yet (and perhaps a few it had; those are dropped here).
    """
    client = await nats.connect(url)
    js = client.jetstream()
    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL)
    subscription = await js.pull_subscribe(SUBJECTS, durable=durable, stream=STREAM, config=config)
    last = after
    try:
        while True:
            try:
                messages = await subscription.fetch(100, timeout=5)
            except nats.errors.TimeoutError:
                continue  # nothing new for now
            for message in messages:
                event_id = int((message.headers or {})["Nats-Msg-Id"])
                if event_id > last:  # else a repeat of one handled already
                    await handle(json.loads(message.data))
                    last = event_id
                await message.ack()
    finally:
        await client.close()


def read_feed(base_url: str, after: int = 0, api_key: str | None = None) -> Iterator[Event]:
    """Every event after ``after`` from GET /api/v1/events, a page at a time, until the
    newest. A 410 EVENTS_EXPIRED means the retention dropped events after ``after``: its
    detail says where the oldest kept start."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    while True:
        query = urllib.parse.urlencode({"after": after, "limit": 1000})
        request = urllib.request.Request(f"{base_url}/api/v1/events?{query}", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            page = json.load(response)
        yield from page["items"]
        if page["lastEventId"] is None:
            return
        after = int(page["lastEventId"])


def show(event: Event) -> None:
    print(event["id"], event["type"], event["walletId"], flush=True)


async def _show(event: Event) -> None:
    show(event)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_subparsers(dest="source", required=True)
    stream = source.add_parser("stream", help="follow stream WALLET_EVENTS on NATS")
    stream.add_argument("url", help="NATS URL, e.g. nats://127.0.0.1:4222")
    stream.add_argument("--durable", default="consume-events-example", help="consumer name")
    stream.add_argument("--after", type=int, default=0, help="skip events up to this id")
    feed = source.add_parser("feed", help="page GET /api/v1/events up to the newest")
    feed.add_argument("url", help="the service, e.g. http://127.0.0.1:5000")
    feed.add_argument("--after", type=int, default=0, help="start after this event id")
    feed.add_argument("--api-key", help="when the service has WALLET_API_KEYS")
    args = parser.parse_args()
    if args.source == "stream":
        asyncio.run(consume(args.url, args.durable, _show, args.after))
        return
    try:
        for event in read_feed(args.url, args.after, args.api_key):
            show(event)
    except urllib.error.HTTPError as error:
        parser.exit(1, f"{error.code}: {error.read().decode(errors='replace')}\n")


if __name__ == "__main__":
    main()
