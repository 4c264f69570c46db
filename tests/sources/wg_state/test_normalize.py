"""ECS normalization: every action maps to a valid ECS document with the documented conventions."""

from __future__ import annotations

import orjson

from tests.sources.wg_state.scenario import FP, T0, every_action, key
from tests.support.ecs import validate
from wgsiem.sources.wg_state.normalize import ACTIONS, to_ecs


def docs() -> list[dict]:
    return [to_ecs(c, hostname="gw-test", observed_at=c.time) for c in every_action()]


def test_scenario_covers_every_action() -> None:
    assert {d["event"]["action"] for d in docs()} == set(ACTIONS)


def test_every_document_is_valid_ecs() -> None:
    problems = {d["event"]["action"] + ":" + p for d in docs() for p in validate(d)}
    assert problems == set()


def test_roaming_document() -> None:
    (d,) = [d for d in docs() if d["event"]["action"] == "endpoint-changed"]
    assert d["wireguard"]["change"]["endpoint"] == {"old": "203.0.113.7:40000", "new": "198.51.100.9:40001"}
    assert d["source"]["ip"] == "198.51.100.9"
    assert d["source"]["port"] == 40001
    assert d["source"]["nat"]["ip"] == "10.9.0.2"
    assert d["related"]["ip"] == ["198.51.100.9", "10.9.0.2", "203.0.113.7"]
    assert d["observer"]["ingress"]["interface"]["name"] == "wg0"
    assert d["@timestamp"] == "2025-11-24T16:00:20.000Z"


def test_session_ended_document() -> None:
    ends = [d for d in docs() if d["event"]["action"] == "session-ended"]
    by_reason = {d["wireguard"]["session"]["end_reason"]: d for d in ends}
    assert set(by_reason) == {"counter-reset", "peer-removed", "interface-removed"}
    d = by_reason["counter-reset"]
    s = d["wireguard"]["session"]
    assert s["rx_bytes"] == 3000 and s["tx_bytes"] == 2500
    assert d["source"]["bytes"] == 3000 and d["destination"]["bytes"] == 2500
    assert d["network"]["bytes"] == 5500
    assert s["endpoints"] == ["203.0.113.7:40000", "198.51.100.9:40001"]
    assert d["event"]["duration"] == int(s["duration_secs"] * 1e9)


def test_ipv6_endpoint_and_tunnel() -> None:
    (d,) = [
        d
        for d in docs()
        if d["event"]["action"] == "session-started" and d["wireguard"]["peer"]["public_key"] == key(2)
    ]
    assert d["source"]["ip"] == "2001:db8::7"
    assert d["network"]["type"] == "ipv6"
    assert d["related"]["ip"] == ["2001:db8::7", "10.9.0.3", "fd00:9::3"]


def test_no_secret_in_any_document() -> None:
    blob = orjson.dumps(docs()).decode()
    assert key(100) not in blob and key(102) not in blob  # interface private keys
    assert key(50) not in blob  # preshared key
    psk_fp = FP.of_b64(key(50))
    assert psk_fp in blob  # only its keyed fingerprint
    assert key(101) in blob  # public keys are public


def test_ids_are_deterministic() -> None:
    a = [d["event"]["id"] for d in docs()]
    b = [d["event"]["id"] for d in docs()]
    assert a == b
    assert len(set(a)) == len(a)
    assert T0 > 0


def test_docs_events_md_has_a_valid_real_example_of_every_action() -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "events.md").read_text()
    examples = re.findall(r"### `([a-z-]+)`\n\n```json\n(.*?)\n```", text, re.S)
    assert [a for a, _ in examples] == list(ACTIONS)
    for action, body in examples:
        doc = orjson.loads(body)
        assert doc["event"]["action"] == action
        assert validate(doc) == []
