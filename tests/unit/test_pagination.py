"""Cursors: opaque, bound to one list, and refused when forged or altered."""

from __future__ import annotations

import base64
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from wallet.domain.pagination import CursorCodec, InvalidCursor, Position

SECRET = b"pagination-test-secret-32-bytes!"
OTHER_SECRET = b"another-secret-of-the-same-size!"
SCOPE = "wallets"
ALPHABET = string.ascii_letters + string.digits + "-_"

POSITION = Position(
    datetime(2026, 11, 27, 16, 3, 2, 123456, tzinfo=UTC),
    UUID("3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f"),
)


@pytest.fixture
def codec() -> CursorCodec:
    return CursorCodec(SECRET)


@pytest.fixture
def cursor(codec: CursorCodec) -> str:
    return codec.encode(SCOPE, POSITION)


def assert_refused(codec: CursorCodec, scope: str, cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        codec.decode(scope, cursor)


def with_char(text: str, index: int, char: str) -> str:
    return text[:index] + char + text[index + 1 :]


@pytest.mark.parametrize(
    "position",
    [
        POSITION,
        Position(datetime(1970, 1, 1, tzinfo=UTC), UUID(int=0)),
        Position(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), UUID(int=1)),
        Position(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), UUID(int=2**128 - 1)),
        Position(
            datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(microseconds=1),
            UUID("ffffffff-0000-4000-8000-000000000000"),
        ),
    ],
)
@pytest.mark.parametrize("scope", [SCOPE, "operations:3f1c2d4e-5b6a-4c8d-9e0f-1a2b3c4d5e6f", "é"])
def test_a_cursor_decodes_to_the_position_it_was_made_from(
    codec: CursorCodec, scope: str, position: Position
) -> None:
    cursor = codec.encode(scope, position)
    assert codec.decode(scope, cursor) == position


def test_a_position_in_another_time_zone_decodes_to_the_same_instant(codec: CursorCodec) -> None:
    elsewhere = POSITION.created_at.astimezone(timezone(timedelta(hours=5, minutes=30)))
    decoded = codec.decode(SCOPE, codec.encode(SCOPE, Position(elsewhere, POSITION.id)))
    assert decoded == POSITION
    assert decoded.created_at.utcoffset() == timedelta(0)


def test_a_cursor_is_url_safe_text(cursor: str) -> None:
    assert cursor
    assert set(cursor) <= set(ALPHABET)


def test_the_same_position_gives_the_same_cursor(codec: CursorCodec, cursor: str) -> None:
    assert codec.encode(SCOPE, POSITION) == cursor
    assert CursorCodec(SECRET).encode(SCOPE, POSITION) == cursor


def test_a_cursor_altered_in_any_single_character_is_refused(
    codec: CursorCodec, cursor: str
) -> None:
    accepted = []
    for index, original in enumerate(cursor):
        for char in ALPHABET:
            if char == original:
                continue
            altered = with_char(cursor, index, char)
            try:
                codec.decode(SCOPE, altered)
            except InvalidCursor:
                continue
            accepted.append(altered)
    assert accepted == []


def test_a_cursor_for_one_list_is_refused_on_another(codec: CursorCodec) -> None:
    cursor = codec.encode("operations:wallet-a", POSITION)
    assert codec.decode("operations:wallet-a", cursor) == POSITION
    for other_scope in ("operations:wallet-b", SCOPE, "", "operations:wallet-a "):
        assert_refused(codec, other_scope, cursor)


def test_a_cursor_made_with_another_secret_is_refused(cursor: str) -> None:
    assert_refused(CursorCodec(OTHER_SECRET), SCOPE, cursor)
    assert_refused(CursorCodec(SECRET + b"x"), SCOPE, cursor)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: "",
        lambda c: c[:-1],
        lambda c: c[1:],
        lambda c: c + "A",
        lambda c: c + c,
        lambda c: c[:-4],
    ],
    ids=["empty", "last-char-dropped", "first-char-dropped", "char-added", "doubled", "short"],
)
def test_a_cursor_of_the_wrong_length_is_refused(
    codec: CursorCodec, cursor: str, mangle: Callable[[str], str]
) -> None:
    assert_refused(codec, SCOPE, mangle(cursor))


@pytest.mark.parametrize("char", ["+", "/", "=", " ", ".", "~", "%", "é", "\n", "\x00", "\uff10"])
def test_a_character_outside_the_url_safe_alphabet_is_refused(
    codec: CursorCodec, cursor: str, char: str
) -> None:
    for index in (0, len(cursor) // 2, len(cursor) - 1):
        assert_refused(codec, SCOPE, with_char(cursor, index, char))


@pytest.mark.parametrize("padding", ["=", "==", "==="])
def test_a_padded_cursor_is_refused(codec: CursorCodec, cursor: str, padding: str) -> None:
    assert_refused(codec, SCOPE, cursor + padding)
    assert_refused(codec, SCOPE, cursor[: -len(padding)] + padding)


def test_the_standard_base64_spelling_of_a_cursor_is_refused(
    codec: CursorCodec, cursor: str
) -> None:
    token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    standard = base64.b64encode(token).decode("ascii")
    assert standard != cursor
    assert_refused(codec, SCOPE, standard)
    assert_refused(codec, SCOPE, standard.rstrip("="))


def test_a_forged_cursor_of_the_right_shape_is_refused(codec: CursorCodec, cursor: str) -> None:
    forged = base64.urlsafe_b64encode(bytes(40)).rstrip(b"=").decode("ascii")
    assert len(forged) == len(cursor)
    assert_refused(codec, SCOPE, forged)


def test_a_secret_shorter_than_16_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        CursorCodec(b"x" * 15)
    assert CursorCodec(b"x" * 16).encode(SCOPE, POSITION)
