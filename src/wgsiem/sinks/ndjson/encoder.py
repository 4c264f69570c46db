"""Envelope → one NDJSON line: the ECS document only (``meta`` never leaves the process).

orjson because encoding is the hot path of every sink that ships documents, with
``OPT_APPEND_NEWLINE`` so the line comes out terminated without a copy.

The line is memoized on the envelope (``meta.attributes[ENCODED_ATTR]``): the pipeline fans one
envelope out to every sink, and the DuckDB store stores exactly this text, so a document is serialized
once per process instead of once per sink (a third of the per-event CPU at 50,000 events/s). Safe
because sinks treat envelopes as read-only (see ``wgsiem.pipeline.runtime.Sink``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from wgsiem.errors import WgsiemError
from wgsiem.event import Envelope

__all__ = ["ENCODED_ATTR", "JSON_OPTIONS", "EncodeError", "encode", "encode_document", "mapped_encoder"]

JSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
"""The orjson options of every NDJSON line wgsiem writes."""

ENCODED_ATTR = "wgsiem.ndjson"
"""Key of the memoized line in ``EventMeta.attributes``."""


class EncodeError(WgsiemError):
    """The document holds something JSON cannot express (an int past 64 bits, a lone surrogate …)."""


def encode_document(data: Mapping[str, Any]) -> bytes:
    """``data`` as compact JSON followed by ``\\n`` (pure); raises :class:`EncodeError`."""
    try:
        return orjson.dumps(data, option=JSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise EncodeError(f"cannot encode event as JSON: {exc}") from exc


def mapped_encoder(schema: str) -> Callable[[Envelope], bytes]:
    """An ``encode`` for another schema (``cim``, ``ocsf``): the mapped document, not memoized (the memo
    holds the ECS line other sinks and the store share). A mapping error is an :class:`EncodeError`."""
    from wgsiem.schema import MAPPERS

    mapper = MAPPERS[schema]

    def encode_mapped(env: Envelope) -> bytes:
        try:
            doc = mapper(env.data)
        except Exception as exc:  # a bad document must cost one event, never the batch
            raise EncodeError(f"cannot map event to {schema}: {exc!r}") from exc
        return encode_document(doc)

    return encode_mapped


def encode(env: Envelope) -> bytes:
    """:func:`encode_document` of ``env.data``, memoized on the envelope (see the module docstring)."""
    attrs = env.meta.attributes
    line = attrs.get(ENCODED_ATTR)
    if not isinstance(line, bytes):
        line = encode_document(env.data)
        attrs[ENCODED_ATTR] = line
    return line
