"""The on-disk record format of an outbox segment: pure encode and scan, no I/O.

A segment file is a sequence of frames::

    magic  b"WGO1"         4 bytes
    length of payload      4 bytes, big-endian
    crc32(seq..payload)    4 bytes, big-endian
    seq                    8 bytes, big-endian (the outbox's monotonic record number)
    written_ms             8 bytes, big-endian (Unix time the record was accepted, for lag)
    payload                orjson ``{"id": <event.id>, "doc": <ECS document>}``

Why this shape: the CRC covers the header fields after it and the payload, so a torn write (a crash
mid-append) or a flipped bit is detected without parsing JSON; ``seq`` in the header lets a restart
count records and skip acknowledged ones without decoding a single document (1 GiB scans in about a
second), and the gap in ``seq`` around damage says how many records it cost. The magic makes
resynchronisation after damage cheap: the scanner jumps to the next ``WGO1`` whose CRC checks out, so
the good records after a damaged one are kept.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from wgsiem.errors import Location, ParseError

__all__ = [
    "HEADER",
    "MAGIC",
    "Damage",
    "Frame",
    "decode_payload",
    "encode_frame",
    "encode_payload",
    "payload_doc_json",
    "scan",
]

MAGIC = b"WGO1"
_HEAD = struct.Struct(">4sII")  # magic, length, crc
_TAIL = struct.Struct(">QQ")  # seq, written_ms
HEADER = _HEAD.size + _TAIL.size
MAX_PAYLOAD = 256 * 1024 * 1024
"""A length field above this is damage, not a record (no document is that large)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One intact record: where it is, its number, when it was written, its payload bytes."""

    offset: int
    end: int
    seq: int
    written_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes that are not intact records: ``[offset, offset + length)``; ``torn`` if at the end."""

    offset: int
    length: int
    reason: str
    torn: bool


def encode_payload(event_id: str, doc_json: bytes) -> bytes:
    """``{"id": …, "doc": …}`` from the already-encoded document (the NDJSON line without newline)."""
    return b'{"id":' + orjson.dumps(event_id) + b',"doc":' + doc_json + b"}"


def encode_frame(seq: int, written_ms: int, payload: bytes) -> bytes:
    tail = _TAIL.pack(seq, written_ms)
    crc = zlib.crc32(payload, zlib.crc32(tail))
    return _HEAD.pack(MAGIC, len(payload), crc) + tail + payload


def _frame_at(data: bytes, pos: int) -> Frame | str:
    """The frame at ``pos``, or why there is none (``"incomplete"`` if the data ends inside it)."""
    n = len(data)
    if pos + HEADER > n:
        return "incomplete"
    magic, length, crc = _HEAD.unpack_from(data, pos)
    if magic != MAGIC:
        return "bad magic"
    if length > MAX_PAYLOAD:
        return "implausible length"
    end = pos + HEADER + length
    if end > n:
        return "incomplete"
    body = memoryview(data)[pos + _HEAD.size : end]
    if zlib.crc32(body) != crc:
        return "crc mismatch"
    seq, written_ms = _TAIL.unpack_from(data, pos + _HEAD.size)
    return Frame(pos, end, seq, written_ms, bytes(body[_TAIL.size :]))


def scan(data: bytes, start: int = 0) -> tuple[list[Frame], list[Damage]]:
    """Every intact frame from ``start`` and every damaged region between them (pure; never raises).

    A damaged region ends at the next offset where an intact frame begins; damage running to the end
    of ``data`` is ``torn`` (a crash mid-append, or a segment still being written).
    """
    frames: list[Frame] = []
    damage: list[Damage] = []
    pos, n = start, len(data)
    while pos < n:
        got = _frame_at(data, pos)
        if isinstance(got, Frame):
            frames.append(got)
            pos = got.end
            continue
        bad, reason = pos, got
        nxt = data.find(MAGIC, pos + 1)
        while nxt != -1 and not isinstance(_frame_at(data, nxt), Frame):
            nxt = data.find(MAGIC, nxt + 1)
        if nxt == -1:
            damage.append(Damage(bad, n - bad, reason, torn=True))
            break
        damage.append(Damage(bad, nxt - bad, reason, torn=False))
        pos = nxt
    return frames, damage


_DOC_KEY = b',"doc":'


def payload_doc_json(payload: bytes) -> bytes:
    """The document's JSON inside an encoded payload (pure). The first ``,"doc":`` is the separator:
    inside the id's JSON string a ``"`` is always escaped, so it cannot occur there."""
    return payload[payload.index(_DOC_KEY) + len(_DOC_KEY) : -1]


def decode_payload(payload: bytes, *, file: str | None = None, offset: int = 0) -> tuple[str, dict[str, Any]]:
    """``(event_id, doc)`` of an intact frame; :class:`ParseError` (with the frame's offset) otherwise."""
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ParseError(
            f"outbox record is not JSON: {exc}", location=Location(file or "<segment>", offset=offset)
        ) from exc
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("id"), str)
        or not isinstance(obj.get("doc"), dict)
    ):
        raise ParseError(
            'outbox record is not {"id": str, "doc": object}',
            location=Location(file or "<segment>", offset=offset),
        )
    return obj["id"], obj["doc"]
