"""References and metadata: a client's own words about an operation or a wallet, kept as
given and never interpreted.

A reference is a short text (an order number, an invoice) that a wallet's history can be
filtered by; metadata is a small object of string values. Both are checked here, before
anything is looked up, and both take part in what a request means under its key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType

from wallet.domain.errors import FieldError

Metadata = Mapping[str, str]

MAX_REFERENCE_LENGTH = 128
MAX_METADATA_ENTRIES = 20
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500
NO_METADATA: Metadata = MappingProxyType({})

METADATA_KEY_TEXT = rf"[A-Za-z0-9_.-]{{1,{MAX_METADATA_KEY_LENGTH}}}"
_METADATA_KEY = re.compile(METADATA_KEY_TEXT, re.ASCII)
# Unicode category Cc (C0, DEL, C1), and the lone surrogates that are no text at all.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# What no stored text can hold: NUL (PostgreSQL refuses it) and lone surrogates.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_PREVIEW = 40  # characters of a refused key shown back in its error


class InvalidReference(ValueError):
    """The value is not a reference this service takes."""


def parse_reference(value: object) -> str | None:
    """A reference as given; None for an absent one (``null``)."""
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_REFERENCE_LENGTH:
        raise InvalidReference(f"must be a string of 1 to {MAX_REFERENCE_LENGTH} characters")
    if _CONTROL.search(value):
        raise InvalidReference("must not contain control characters")
    return value


def metadata_errors(value: object) -> tuple[Metadata, list[FieldError]]:
    """The metadata as given (empty for ``null``) and what is wrong with it, each error
    naming ``metadata`` or the entry at fault (``metadata.<key>``)."""
    if value is None:
        return NO_METADATA, []
    if not isinstance(value, dict):
        return NO_METADATA, [FieldError("metadata", "must be a JSON object of string values")]
    if len(value) > MAX_METADATA_ENTRIES:
        message = f"must have at most {MAX_METADATA_ENTRIES} entries"
        return NO_METADATA, [FieldError("metadata", message)]
    errors = []
    for key, item in value.items():
        if not _METADATA_KEY.fullmatch(key):
            errors.append(_key_error(key))
        elif problem := _value_problem(item):
            errors.append(FieldError(f"metadata.{key}", problem))
    return (NO_METADATA if errors else MappingProxyType(dict(value))), errors


def no_metadata() -> Metadata:
    """The default of every ``metadata`` field: the one shared empty mapping."""
    return NO_METADATA


def labelled_meaning(said: str, reference: str | None, metadata: Metadata) -> str:
    """What a request ``said``, followed by its reference and metadata when it has any."""
    labels = canonical_meaning(reference, metadata)
    return f"{said}\n{labels}" if labels else said


def canonical_meaning(reference: str | None, metadata: Metadata) -> str:
    """The reference and metadata as one text that only what they say changes (keys
    sorted); empty when there are neither, so requests without them mean what they did."""
    if reference is None and not metadata:
        return ""
    return json.dumps([reference, dict(metadata)], sort_keys=True, ensure_ascii=False)


def _key_error(key: str) -> FieldError:
    shown = key if len(key) <= _PREVIEW else key[:_PREVIEW] + "…"
    message = (
        f"keys must be 1 to {MAX_METADATA_KEY_LENGTH} characters of A-Z, a-z, 0-9, _ . -; "
        f"{shown!r} is not"
    )
    return FieldError("metadata", message)


def _value_problem(item: object) -> str:
    """Why ``item`` cannot be a metadata value; empty when it can."""
    if not isinstance(item, str) or len(item) > MAX_METADATA_VALUE_LENGTH:
        return f"must be a string of at most {MAX_METADATA_VALUE_LENGTH} characters"
    if _UNSTORABLE.search(item):
        return "must not contain NUL or unpaired surrogate characters"
    return ""
