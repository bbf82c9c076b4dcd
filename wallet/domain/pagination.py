"""Keyset pagination: list positions and the signed, opaque cursors that carry them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PAYLOAD = struct.Struct(">q16s")
_MAC_BYTES = 16
CURSOR_BYTES = _PAYLOAD.size + _MAC_BYTES  # what a cursor's unpadded URL-safe base64 holds
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_CURSOR_LENGTH = len(base64.urlsafe_b64encode(bytes(_PAYLOAD.size + _MAC_BYTES)).rstrip(b"="))


class InvalidCursor(ValueError):
    """A paging cursor the service did not make, or one that was altered."""


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """Where a list item sits: lists are ordered by (created_at, id)."""

    created_at: datetime
    id: UUID


class CursorCodec:
    """Turns positions into cursors a client cannot forge or alter.

    A cursor is bound to its list (``scope``), so a cursor of one wallet's history
    is refused on another's.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the cursor secret must be at least 16 bytes")
        self._secret = secret

    def encode(self, scope: str, position: Position) -> str:
        micros = (position.created_at - _EPOCH) // timedelta(microseconds=1)
        payload = _PAYLOAD.pack(micros, position.id.bytes)
        token = payload + self._mac(scope, payload)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

    def decode(self, scope: str, cursor: str) -> Position:
        if len(cursor) != _CURSOR_LENGTH or not _CURSOR_TEXT.fullmatch(cursor):
            raise InvalidCursor("not a cursor made by this service")
        token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii") != cursor:
            raise InvalidCursor("not a cursor made by this service")
        payload, mac = token[: _PAYLOAD.size], token[_PAYLOAD.size :]
        if not hmac.compare_digest(mac, self._mac(scope, payload)):
            raise InvalidCursor("not a cursor made by this service for this list")
        micros, id_bytes = _PAYLOAD.unpack(payload)
        return Position(_EPOCH + timedelta(microseconds=micros), UUID(bytes=id_bytes))

    def _mac(self, scope: str, payload: bytes) -> bytes:
        message = scope.encode("utf-8") + b"\0" + payload
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_BYTES]
