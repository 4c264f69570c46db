"""A document that stays its NDJSON line until something reads it.

Why: when a replay's only consumers are ECS NDJSON sinks (no transform, no other sink — what
``wgsiem replay`` checks before it uses the worker process), every sink writes the worker's line as it
is (the line is the envelope's memoized encoding, ``wgsiem.sinks.ndjson.encoder.ENCODED_ATTR``) and
nothing ever looks at the document. Turning each line back into a dict (``orjson.loads``, ~9 µs) was
then most of the parent process's work: ~28 s of CPU for a week of 1,000 peers. A
:class:`LineDocument` holds the line and parses it on the first read, so a consumer that does read it
(a test, a debugging hook, a sink added later) sees exactly the document the line encodes.

It is a :class:`~collections.abc.MutableMapping`, not a ``dict`` subclass on purpose: C code that
reads a dict's storage directly (``orjson.dumps``, ``dict(x)`` fast paths) would see an empty dict
subclass and write ``{}`` silently; a plain mapping makes such a use fail loudly instead.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson

__all__ = ["LineDocument"]


class LineDocument(MutableMapping[str, Any]):
    """The ECS document of one NDJSON line, parsed on first access."""

    __slots__ = ("_doc", "line")

    def __init__(self, line: bytes) -> None:
        self.line = line
        self._doc: dict[str, Any] | None = None

    @property
    def document(self) -> dict[str, Any]:
        doc = self._doc
        if doc is None:
            doc = self._doc = orjson.loads(self.line)
        return doc

    def __getitem__(self, key: str) -> Any:
        return self.document[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.document[key] = value

    def __delitem__(self, key: str) -> None:
        del self.document[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.document)

    def __len__(self) -> int:
        return len(self.document)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LineDocument):
            other = other.document
        return self.document == other

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dict

    def __repr__(self) -> str:
        return f"LineDocument({self.line!r})"
