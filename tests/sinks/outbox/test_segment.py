"""The segment format: exact framing, damage detection with locations, and arbitrary bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.errors import ParseError
from wgsiem.sinks.outbox.segment import HEADER, decode_payload, encode_frame, encode_payload, scan


def frame(seq: int, doc: bytes = b'{"a":1}') -> bytes:
    return encode_frame(seq, 1_700_000_000_000 + seq, encode_payload(f"id-{seq}", doc))


def test_roundtrip_exact() -> None:
    data = frame(1) + frame(2, b'{"b":[1,2]}')
    frames, damage = scan(data)
    assert damage == []
    assert [(f.seq, f.written_ms) for f in frames] == [(1, 1_700_000_000_001), (2, 1_700_000_000_002)]
    assert frames[0].offset == 0 and frames[1].offset == frames[0].end == len(frame(1))
    assert decode_payload(frames[1].payload) == ("id-2", {"b": [1, 2]})
    assert len(frame(1)) == HEADER + len(encode_payload("id-1", b'{"a":1}'))


def test_torn_tail_is_reported_at_its_offset_and_records_before_kept() -> None:
    good = frame(1) + frame(2)
    data = good + frame(3)[:-5]
    frames, damage = scan(data)
    assert [f.seq for f in frames] == [1, 2]
    assert len(damage) == 1
    d = damage[0]
    assert (d.offset, d.length, d.torn, d.reason) == (len(good), len(frame(3)) - 5, True, "incomplete")


def test_corrupt_middle_record_skipped_and_records_after_kept() -> None:
    a, b, c = frame(1), bytearray(frame(2)), frame(3)
    b[HEADER + 2] ^= 0xFF  # a flipped bit in the payload
    frames, damage = scan(a + bytes(b) + c)
    assert [f.seq for f in frames] == [1, 3]
    assert [(d.offset, d.length, d.reason, d.torn) for d in damage] == [
        (len(a), len(b), "crc mismatch", False)
    ]


def test_garbage_between_records() -> None:
    data = frame(1) + b"\x00garbage WGO1 not a frame" + frame(2)
    frames, damage = scan(data)
    assert [f.seq for f in frames] == [1, 2]
    assert len(damage) == 1 and damage[0].offset == len(frame(1)) and not damage[0].torn


def test_decode_payload_errors_carry_the_location() -> None:
    with pytest.raises(ParseError) as exc:
        decode_payload(b'{"id": 5}', file="/x/1.seg", offset=40)
    assert exc.value.location is not None and str(exc.value.location) == "/x/1.seg@40"
    with pytest.raises(ParseError):
        decode_payload(b"\xff\xfe", file="/x/1.seg", offset=0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_crash_the_scanner(data: bytes) -> None:
    frames, damage = scan(data)
    covered = sorted([(f.offset, f.end) for f in frames] + [(d.offset, d.offset + d.length) for d in damage])
    pos = 0
    for start, end in covered:  # frames and damage tile the input exactly, in order
        assert start == pos and end > start
        pos = end
    assert pos == len(data)
    for f in frames:
        with contextlib.suppress(ParseError):
            decode_payload(f.payload)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.binary(min_size=1, max_size=64)), min_size=1, max_size=12),
)
def test_good_records_around_bad_bytes_are_all_kept(parts: list[tuple[bool, bytes]]) -> None:
    data, seqs, seq = b"", [], 0
    for is_good, junk in parts:
        if is_good:
            seq += 1
            data += frame(seq)
            seqs.append(seq)
        else:
            data += junk.replace(b"WGO1", b"wgo1")
    frames, _ = scan(data)
    assert [f.seq for f in frames] == seqs


@settings(max_examples=200, deadline=None)
@given(
    st.text(),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers(-(2**63), 2**63 - 1), max_size=4),
)
def test_the_document_json_is_recovered_from_any_payload(eid: str, doc: dict[str, object]) -> None:
    import orjson

    from wgsiem.sinks.outbox.segment import payload_doc_json

    raw = orjson.dumps(doc)
    assert payload_doc_json(encode_payload(eid, raw)) == raw
    assert payload_doc_json(encode_payload('x","doc":{"a":1}', raw)) == raw
