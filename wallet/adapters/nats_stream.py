"""Events onto NATS JetStream: stream WALLET_EVENTS, one message per event, in id order.

A batch goes out in one stream of messages, and each names the stream sequence it must
follow (``Nats-Expected-Last-Sequence``): when one is lost (a broken connection, a server
restart), JetStream refuses every message after it rather than store them ahead of it.
So only the batch's last message asks for an acknowledgement: stored in its place, it
vouches for all before it; refused or unanswered, the relay asks the stream where it
ends and goes on from there. The server checks ``Nats-Msg-Id`` before the expectation, so
an event stored already answers as a duplicate in its own place. The expected sequence
survives a server restart (``Nats-Expected-Last-Msg-Id`` is only rebuilt within the
duplicate window).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import nats
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig, StreamInfo
from nats.js.errors import NotFoundError

from wallet.domain.events import Event
from wallet.domain.relay import StreamUnavailable

log = logging.getLogger(__name__)

STREAM = "WALLET_EVENTS"
SUBJECTS = "wallet.events.>"
MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SEQUENCE = "Nats-Expected-Last-Sequence"
DUPLICATE_WINDOW = 120.0  # seconds JetStream remembers a Nats-Msg-Id
TIMEOUT = 5.0  # seconds for a call to JetStream, or for a batch's acknowledgement
RECONNECT_WAIT = 1.0  # seconds between attempts to reach NATS again
# What a NATS client raises when the server cannot be reached or does not answer in time.
UNREACHABLE = (nats.errors.Error, OSError, TimeoutError)


class JetStreamEvents:
    """A JetStream publisher that keeps the stream in id order, on ``url`` (or several,
    comma-separated: a cluster's seeds). Connects when first used and reconnects for good,
    so a service starts whether NATS is up or not; every call is bounded by ``timeout``
    seconds."""

    def __init__(
        self,
        url: str,
        body: Callable[[Event], bytes],
        timeout: float,
        max_age: float | None = None,
        stream: str = STREAM,
    ) -> None:
        self._url = url
        self._body = body
        self._timeout = timeout
        self._max_age = max_age  # seconds the stream keeps a message; None: no limit
        self._stream = stream
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._follows: int | None = None  # the stream sequence the next message follows
        self._last_error = ""
        self._closing = False

    async def resume(self) -> int | None:
        self._follows = None
        js = await self._jetstream()
        try:
            async with asyncio.timeout(self._timeout):
                info = await self._ensure_stream(js)
                last = info.state.last_seq
                newest = await self._event_id_at(js, last) if info.state.messages else None
        except UNREACHABLE as error:
            raise StreamUnavailable(f"JetStream did not answer: {error!r}") from error
        self._follows = last
        return newest

    async def publish(self, events: list[Event]) -> int:
        client, js, follows = self._client, self._js, self._follows
        if client is None or js is None or follows is None:
            raise StreamUnavailable("the stream's end is not known; resume first")
        self._follows = None  # known again only once the batch is acknowledged
        *leading, last = events
        try:
            for offset, event in enumerate(leading):
                headers = _headers(event, follows + offset)
                await client.publish(event.subject_name, self._body(event), headers=headers)
            headers = _headers(last, follows + len(leading))
            ack = await js.publish(
                last.subject_name, self._body(last), timeout=self._timeout, headers=headers
            )
        except UNREACHABLE as error:
            log.warning("JetStream did not store events %d to %d: %r", events[0].id, last.id, error)
            return 0
        if ack.seq != follows + len(events):  # a duplicate of an event stored elsewhere
            log.warning("JetStream holds event %d at sequence %d, out of line", last.id, ack.seq)
            return 0
        self._follows = ack.seq
        return len(events)

    async def close(self) -> None:
        client, self._client, self._js = self._client, None, None
        self._closing = True
        if client is not None and not client.is_closed:
            with contextlib.suppress(*UNREACHABLE):
                async with asyncio.timeout(self._timeout):
                    await client.close()

    async def _jetstream(self) -> JetStreamContext:
        """The client, connected now if it never was (it reconnects by itself after)."""
        if self._client is None or self._client.is_closed or self._js is None:
            self._client = self._js = None  # until connected: no disconnection to report
            client = Client()
            try:
                async with asyncio.timeout(self._timeout):
                    await client.connect(
                        [server.strip() for server in self._url.split(",") if server.strip()],
                        name="wallet-event-relay",
                        connect_timeout=self._timeout,  # type: ignore[arg-type]
                        reconnect_time_wait=RECONNECT_WAIT,  # type: ignore[arg-type]
                        max_reconnect_attempts=-1,
                        error_cb=self._error,
                        disconnected_cb=self._disconnected,
                        reconnected_cb=self._reconnected,
                    )
            except UNREACHABLE as error:
                with contextlib.suppress(*UNREACHABLE):
                    await client.close()
                why = self._last_error or repr(error)  # the client's own, when it said one
                raise StreamUnavailable(f"cannot connect to NATS: {why}") from error
            log.info("connected to NATS at %s", _location(client))
            self._client, self._js = client, client.jetstream(timeout=self._timeout)
            self._closing = False
        return self._js

    async def _ensure_stream(self, js: JetStreamContext) -> StreamInfo:
        try:
            return await js.stream_info(self._stream)
        except NotFoundError:
            log.info("creating JetStream stream %s for %s", self._stream, SUBJECTS)
            config = StreamConfig(
                name=self._stream,
                subjects=[SUBJECTS],
                storage=StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW,
                max_age=self._max_age,
            )
            return await js.add_stream(config)

    async def _event_id_at(self, js: JetStreamContext, sequence: int) -> int | None:
        """The event id of the message at ``sequence``, if it is one of ours."""
        try:
            message = await js.get_msg(self._stream, seq=sequence)
        except NotFoundError:
            return None
        named = (message.headers or {}).get(MSG_ID, "")
        return int(named) if named.isdigit() else None

    async def _error(self, error: Exception) -> None:
        text = repr(error)
        if text != self._last_error:  # one line per kind of failure, not one per retry
            self._last_error = text
            log.warning("NATS: %s", text)

    async def _disconnected(self) -> None:
        if self._js is not None and not self._closing:
            log.warning("lost the connection to NATS; reconnecting")

    async def _reconnected(self) -> None:
        self._last_error = ""
        if self._client is not None:
            log.info("reconnected to NATS at %s", _location(self._client))


def _headers(event: Event, follows: int) -> dict[str, str]:
    return {MSG_ID: str(event.id), EXPECTED_LAST_SEQUENCE: str(follows)}


def _location(client: Client) -> str:
    url = client.connected_url
    return f"{url.hostname}:{url.port}" if url is not None else "(unknown)"


async def open_event_stream(
    url: str | None, body: Callable[[Event], bytes], max_age: float | None, seconds: float = TIMEOUT
) -> AsyncIterator[JetStreamEvents | None]:
    """A resource: the publisher when WALLET_NATS_URL is set (not connected until used),
    each call bounded by ``seconds``; closed on shutdown."""
    if not url:
        yield None
        return
    stream = JetStreamEvents(url, body, seconds, max_age)
    try:
        yield stream
    finally:
        await stream.close()
