"""The HEC event encoder: exact output for real documents, sourcetypes, time, and property tests."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tests.support.ecs import validate
from wgsiem.schema import to_cim
from wgsiem.sinks.splunk_hec.encoder import HecEncodeError, HecEncoder, event_time, sourcetype_of

from .support import FIXTURES, alert_document, real_documents


def _session_started() -> dict[str, Any]:
    return orjson.loads((FIXTURES / "schema" / "ecs" / "wg_state" / "session-started.json").read_bytes())


def test_cim_event_object_of_a_real_session_start() -> None:
    doc = _session_started()
    assert validate(doc) in ([], None)
    enc = HecEncoder(source="wgsiem", default_host="this-host", index="wireguard", schema="cim")
    got = orjson.loads(enc.encode(doc))
    assert got == {
        "time": 1795622944.0,
        "host": "vpn-gw-1",
        "source": "wgsiem",
        "sourcetype": "wireguard:state",
        "index": "wireguard",
        "fields": {
            "event_id": "6bbd66462d20dc973c845f5fe59d8be5",
            "event_dataset": "wireguard.state",
            "event_action": "session-started",
        },
        "event": to_cim(doc),
    }
    body = got["event"]
    assert body["event_id"] == "6bbd66462d20dc973c845f5fe59d8be5"
    assert body["tag"] == ["network", "session", "vpn", "start"]
    assert (
        body["action"] == "started" and body["src_ip"] == "203.0.113.11" and body["dest_ip"] == "10.222.0.11"
    )


def test_ecs_body_and_overrides() -> None:
    doc = _session_started()
    enc = HecEncoder(source="s", default_host="h", host="forced", schema="ecs", indexed_fields=False)
    got = orjson.loads(enc.encode(doc))
    assert got == {
        "time": 1795622944.0,
        "host": "forced",
        "source": "s",
        "sourcetype": "wireguard:state",
        "event": doc,
    }


def test_default_body_is_cim_over_ecs() -> None:
    doc = _session_started()
    body = orjson.loads(HecEncoder(source="s", default_host="h").encode(doc))["event"]
    cim = to_cim(doc)
    assert body == {**doc, **cim}
    assert body["event"]["action"] == "session-started" and body["signature"] == "session-started"


def test_alert_goes_to_wireguard_detect_with_cim_alert_fields() -> None:
    doc = alert_document()
    got = orjson.loads(HecEncoder(source="wgsiem", default_host="h").encode(doc))
    assert got["sourcetype"] == "wireguard:detect"
    assert got["fields"]["event_id"] == doc["event"]["id"]
    assert got["event"]["tag"] == ["alert"]
    assert got["event"]["severity"] == "medium"


def test_every_real_document_encodes_with_flat_string_fields() -> None:
    enc = HecEncoder(source="wgsiem", default_host="h")
    for doc in real_documents():
        got = orjson.loads(enc.encode(doc))
        assert got["sourcetype"].startswith("wireguard:")
        assert isinstance(got["time"], float)
        assert all(isinstance(v, str) for v in got["fields"].values())
        assert got["event"]["event_id"] == doc["event"]["id"]


def test_sourcetypes() -> None:
    assert sourcetype_of({"event": {"dataset": "wireguard.state"}}, "wireguard") == "wireguard:state"
    assert sourcetype_of({"event": {"dataset": "wireguard.detect"}}, "wireguard") == "wireguard:detect"
    assert sourcetype_of({"event": {"dataset": "wireguard.kernel_log"}}, "wg") == "wg:kernel_log"
    assert sourcetype_of({"event": {"dataset": "other.x"}}, "wireguard") == "wireguard:other:x"
    assert sourcetype_of({}, "wireguard") == "wireguard:event"


def test_event_time() -> None:
    assert event_time({"@timestamp": "2026-11-25T16:09:04.123Z"}) == 1795622944.123
    assert event_time({"@timestamp": "2026-11-25T17:09:04+01:00"}) == 1795622944.0
    assert event_time({"@timestamp": "2026-11-25T16:09:04"}) is None  # naive: ambiguous
    assert (
        event_time({"@timestamp": "yesterday", "event": {"created": "2026-11-25T16:09:04Z"}}) == 1795622944.0
    )
    assert event_time({}) is None


def test_unencodable_document_is_an_encode_error() -> None:
    doc = _session_started()
    doc["wireguard"]["huge"] = 2**70
    enc = HecEncoder(source="s", default_host="h", schema="ecs")
    try:
        enc.encode(doc)
    except HecEncodeError as exc:
        assert "6bbd66462d20dc973c845f5fe59d8be5" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected HecEncodeError")


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from(["@timestamp", "event", "observer", "source", "wireguard", "x"]), _json, max_size=6
    )
)
def test_arbitrary_documents_encode_or_raise_encode_error(doc: dict[str, Any]) -> None:
    for schema in ("ecs", "cim", "cim+ecs"):
        enc = HecEncoder(source="s", default_host="h", schema=schema)
        try:
            out = orjson.loads(enc.encode(doc))
        except HecEncodeError:
            continue
        assert set(out) <= {"time", "host", "source", "sourcetype", "index", "fields", "event"}
        assert all(isinstance(v, str) for v in out.get("fields", {}).values())


@given(st.text())
def test_event_time_never_raises(text: str) -> None:
    t = event_time({"@timestamp": text, "event": {"created": text}})
    assert t is None or isinstance(t, float)
