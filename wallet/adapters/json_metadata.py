"""Metadata as the JSON text the stores keep it in (a jsonb column, a cache entry)."""

from __future__ import annotations

from types import MappingProxyType

import orjson

from wallet.domain.references import NO_METADATA, Metadata

EMPTY_JSON = "{}"


def metadata_from_json(text: str) -> Metadata:
    """Metadata from its JSON text (asyncpg hands a jsonb column over as text)."""
    if text == EMPTY_JSON:  # the usual case, not worth a parse
        return NO_METADATA
    return MappingProxyType(orjson.loads(text))


def metadata_to_json(metadata: Metadata) -> str:
    """Metadata as JSON text, for a statement to cast to jsonb or a cache to keep."""
    if not metadata:
        return EMPTY_JSON
    return orjson.dumps(dict(metadata)).decode()
