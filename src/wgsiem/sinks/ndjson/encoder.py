"""Envelope → one NDJSON line: the ECS document only (``meta`` never leaves the process).

Pure: no I/O. orjson because encoding is the sink's hot path (several times faster than ``json``), with
``OPT_APPEND_NEWLINE`` so the line comes out terminated without a copy.
"""

from __future__ import annotations

import orjson

from wgsiem.errors import WgsiemError
from wgsiem.event import Envelope

__all__ = ["EncodeError", "encode"]

_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


class EncodeError(WgsiemError):
    """The document holds something JSON cannot express (an int past 64 bits, a lone surrogate …)."""


def encode(env: Envelope) -> bytes:
    """``env.data`` as compact JSON followed by ``\\n``; raises :class:`EncodeError`."""
    try:
        return orjson.dumps(env.data, option=_OPTS)
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise EncodeError(f"cannot encode event as JSON: {exc}") from exc
