"""The one event envelope that flows through every stage.

``data`` is the ECS-shaped document a SIEM receives; ``meta`` is ours alone (which component made it,
when it was received, an acknowledgement handle) and never leaves the process as part of the document.

``event.id`` is deterministic: it is derived from the source, the entity and the observation that
produced the event, so the same observation replayed or retried yields the same id and a downstream
system can drop the duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Envelope", "EventMeta", "Processor", "event_id", "event_id_from", "event_id_prefix"]


def event_id(*parts: object) -> str:
    """A stable id from the parts that identify one observation (128 bits of BLAKE2b, hex)."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(str(part).encode())
        h.update(b"\x1f")
    return h.hexdigest()


def event_id_prefix(*parts: object) -> hashlib.blake2b:
    """The hash state after the leading ``parts`` of an id, for :func:`event_id_from`.

    A source that makes many ids sharing their first parts (host, dataset, action, entity) hashes
    those once and copies the state: ``event_id_from(event_id_prefix(a, b), c) == event_id(a, b, c)``.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(b"".join([str(part).encode() + b"\x1f" for part in parts]))
    return h


def event_id_from(prefix: hashlib.blake2b, *parts: object) -> str:
    """:func:`event_id` of the prefix's parts followed by ``parts`` (the prefix is not modified)."""
    h = prefix.copy()
    if parts:
        h.update(b"\x1f".join([str(part).encode() for part in parts]) + b"\x1f")
    return h.hexdigest()


@dataclass(slots=True)
class EventMeta:
    """Pipeline metadata, kept apart from the document."""

    source_id: str
    received_ns: int
    ack: Callable[[], None] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Envelope:
    """An ECS document (``data``) plus pipeline metadata (``meta``)."""

    data: dict[str, Any]
    meta: EventMeta

    @property
    def id(self) -> str:
        return str(self.data["event"]["id"])

    @property
    def action(self) -> str:
        return str(self.data["event"]["action"])


Processor = Callable[[Envelope], "Envelope | None"]
"""A transform: a plain callable; returning ``None`` drops the event (the runtime counts it)."""
