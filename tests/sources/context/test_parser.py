"""The pure NDJSON parser: good records typed, every bad line named with its field and what it needs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.errors import ParseError
from wgsiem.sources.context.parser import parse_body
from wgsiem.sources.context.schema import AnsibleRun, ChangeTicket, ConfigRun, EdrAlert, IdentityEvent

FIXTURES = Path(__file__).parents[2] / "fixtures" / "context"
GOOD_IDENTITY = {
    "time": "2026-11-25T09:14:03Z",
    "provider": "okta",
    "user": "alice",
    "result": "success",
}


def errors_of(body: bytes, kind: str | None = "identity") -> list[str]:
    _, errors = parse_body(body, kind, "http:test")
    return [e.what for e in errors]


def test_identity_line_is_typed_exactly() -> None:
    (line,), errors = parse_body((FIXTURES / "identity.ndjson").read_bytes().splitlines()[0], "identity")
    assert errors == []
    assert line.line == 1
    assert line.record == IdentityEvent(
        time=datetime(2026, 11, 25, 9, 14, 3, 221000, tzinfo=UTC),
        provider="okta",
        user="alice",
        user_domain="example.org",
        action="mfa",
        result="success",
        factor="push",
        source_ip=IPv4Address("10.222.0.11"),
        id="okta-evt-0001",
    )


def test_every_fixture_file_parses_cleanly() -> None:
    for name, kind, model, n in [
        ("identity.ndjson", "identity", IdentityEvent, 4),
        ("edr.ndjson", "edr", EdrAlert, 2),
        ("change.ndjson", "change", ChangeTicket, 2),
    ]:
        records, errors = parse_body((FIXTURES / name).read_bytes(), kind, name)
        assert errors == [] and len(records) == n and all(isinstance(r.record, model) for r in records)


def test_mixed_file_kinds_per_record_and_bad_line_between_good_ones() -> None:
    records, errors = parse_body((FIXTURES / "mixed.ndjson").read_bytes(), None, "mixed.ndjson")
    assert [(r.line, type(r.record)) for r in records] == [
        (1, IdentityEvent),
        (2, EdrAlert),
        (3, ConfigRun),
        (5, ChangeTicket),
    ]
    assert [e.render() for e in errors] == [
        "line 4: field `result`: expected 'success' or 'failure', got 'maybe' in mixed.ndjson:4"
    ]


def test_missing_fields_are_each_named() -> None:
    assert errors_of(b'{"user": "a"}') == [
        "line 1: field `time`: field is required; field `provider`: field is required; "
        "field `result`: field is required"
    ]


def test_time_without_timezone_and_unknown_field() -> None:
    body = orjson.dumps({**GOOD_IDENTITY, "time": "2026-01-01T00:00:00", "sourceip": "192.0.2.1"})
    assert errors_of(body) == [
        "line 1: field `time`: expected an RFC 3339 time with a timezone, e.g. 2026-01-31T12:00:00Z, "
        "got '2026-01-01T00:00:00'; "
        "field `sourceip`: unknown field (see docs/sources/context.md for the schema)"
    ]


def test_bad_ip_bad_json_non_object_and_line_numbers() -> None:
    body = b"\n".join(
        [
            orjson.dumps(GOOD_IDENTITY),
            orjson.dumps({**GOOD_IDENTITY, "source_ip": "999.1.1.1"}),
            b"",
            b"not json",
            b"[1]",
        ]
    )
    assert errors_of(body) == [
        "line 2: field `source_ip`: expected an IPv4 or IPv6 address, got '999.1.1.1'",
        "line 4: invalid JSON (invalid literal, expected 'null': line 1 column 1 (char 0))",
        "line 5: expected a JSON object, got list",
    ]


def test_kind_mismatch_and_unknown_kind() -> None:
    assert errors_of(b'{"kind": "edr"}') == [
        "line 1: field `kind`: 'edr' sent to the 'identity' endpoint or file"
    ]
    assert errors_of(b'{"kind": "dns"}', None) == ["line 1: field `kind`: unknown kind 'dns'"]
    _, (err,) = parse_body(b'{"user": "a"}', None)
    assert err.fix == 'add "kind": one of identity, edr, change, config_run'


def test_change_ticket_rules() -> None:
    base = {
        "id": "C1",
        "time": "2026-01-01T00:00:00Z",
        "window_start": "2026-01-02T00:00:00Z",
        "window_end": "2026-01-02T01:00:00Z",
        "approval": "approved",
        "requester": "d",
        "hosts": ["gw-1"],
    }
    assert errors_of(orjson.dumps(base), "change") == []
    assert errors_of(orjson.dumps({**base, "window_end": "2026-01-01T23:00:00Z"}), "change") == [
        "line 1: field `record`: window_end must be after window_start"
    ]
    assert errors_of(orjson.dumps({**base, "approval": "ok", "peers": ["abc"]}), "change") == [
        "line 1: field `approval`: expected 'pending', 'approved', 'rejected' or 'cancelled', got 'ok'; "
        "field `peers`: peers[0] is not a WireGuard public key (44 base64 characters)"
    ]
    assert errors_of(orjson.dumps({**base, "hosts": []}), "change") == [
        "line 1: field `record`: a change ticket must name at least one of hosts, peers or assets"
    ]


def test_ansible_pretty_document_and_compact_line() -> None:
    for name in ("ansible_json_callback_first_run.json", "ansible_json_callback_failed_compact.json"):
        for kind in (None, "config_run"):
            (rec,), errors = parse_body((FIXTURES / name).read_bytes(), kind, name)
            assert errors == [] and isinstance(rec.record, AnsibleRun)
    # sent to another kind's endpoint, a pretty document is just bad lines
    _, errors = parse_body((FIXTURES / "ansible_json_callback_first_run.json").read_bytes(), "edr")
    assert errors and errors[0].what.startswith("line 1: invalid JSON")


def test_line_numbers_continue_from_first_line() -> None:
    _, (err,) = parse_body(b"\nnope\n", "edr", "f.ndjson", first_line=41)
    assert err.location is not None and err.location.line == 42


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([None, "identity", "edr", "change", "config_run"]))
def test_arbitrary_bytes_never_raise(data: bytes, kind: str | None) -> None:
    _records, errors = parse_body(data, kind)
    assert all(isinstance(e, ParseError) and e.what.startswith("line ") for e in errors)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=4,
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from([*GOOD_IDENTITY, "factor", "source_ip", "x"]), json_values, max_size=5
        ),
        max_size=4,
    )
)
def test_good_records_around_bad_ones_are_kept_and_bad_ones_counted(junk: list[dict[str, object]]) -> None:
    lines = []
    for obj in junk:
        lines += [orjson.dumps(GOOD_IDENTITY), json.dumps(obj).encode()]
    lines.append(orjson.dumps(GOOD_IDENTITY))
    records, errors = parse_body(b"\n".join(lines), "identity")
    assert len(records) + len(errors) == len(lines)
    assert {r.line for r in records} >= set(range(1, len(lines) + 1, 2))
    assert all(e.location is not None and e.location.line % 2 == 0 for e in errors)
