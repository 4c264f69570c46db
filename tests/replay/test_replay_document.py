"""``LineDocument``: the worker's NDJSON line, parsed only when read."""

from __future__ import annotations

import orjson
import pytest

from wgsiem.replay.document import LineDocument
from wgsiem.sinks.ndjson.encoder import encode_document

LINE = b'{"event":{"id":"ab12","action":"transfer"},"wireguard":{"rx_bytes":5}}\n'


def test_it_reads_as_the_document_of_its_line() -> None:
    doc = LineDocument(LINE)
    assert doc["event"]["action"] == "transfer"
    assert dict(doc) == orjson.loads(LINE)
    assert doc == orjson.loads(LINE)
    assert len(doc) == 2 and list(doc) == ["event", "wireguard"]


def test_it_is_not_parsed_until_read() -> None:
    doc = LineDocument(b"not json\n")  # a line nobody reads is never parsed
    assert doc.line == b"not json\n"
    with pytest.raises(orjson.JSONDecodeError):
        doc["event"]


def test_encoding_it_directly_fails_loudly_instead_of_writing_an_empty_object() -> None:
    from wgsiem.sinks.ndjson.encoder import EncodeError

    with pytest.raises(EncodeError):
        encode_document(LineDocument(LINE))


def test_a_write_changes_the_parsed_document() -> None:
    doc = LineDocument(LINE)
    doc["labels"] = {"x": "y"}
    del doc["wireguard"]
    assert doc.document == {"event": {"id": "ab12", "action": "transfer"}, "labels": {"x": "y"}}
