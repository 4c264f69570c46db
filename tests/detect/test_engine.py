"""The engine stage: pass-through, alert contents, deduplication and throttling on event time."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wgsiem.detect import DetectionEngine, DetectionRule, load_rules
from wgsiem.detect.alert import AlertGate, Entity
from wgsiem.event import event_id

from .conftest import envelope

# the single-event Sigma version of wireguard_invalid_handshake (the built-in one counts repeated
# attempts since 2026-11-26): one sample event, one alert — what these engine tests need
SINGLE_EVENT_RULE = Path(__file__).parents[1] / "fixtures/detect/rules/wireguard_invalid_handshake.yaml"


@pytest.fixture
def handshake_rule() -> DetectionRule:
    (rule,) = load_rules([SINGLE_EVENT_RULE.parent])
    return rule


@pytest.fixture
def sample(handshake_rule: DetectionRule) -> dict[str, Any]:
    return copy.deepcopy(handshake_rule.samples_match[0])  # kernel_log invalid-handshake, 198.51.100.23


def at(doc: dict[str, Any], timestamp: str, *, ip: str | None = None) -> dict[str, Any]:
    """The same event observed at another time (and endpoint): new time, new id."""
    out = copy.deepcopy(doc)
    out["@timestamp"] = timestamp
    if ip is not None:
        out["source"]["ip"] = ip
    out["event"]["id"] = event_id("test", timestamp, out["source"]["ip"])
    return out


def run(engine: DetectionEngine, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for doc in docs:
        engine(envelope(doc))
    return [a.data for a in engine.drain_alerts()]


def test_alert_document(
    make_engine: Callable[..., DetectionEngine], handshake_rule: DetectionRule, sample: dict[str, Any]
) -> None:
    (alert,) = run(make_engine(rules=[handshake_rule]), [sample])
    assert alert["event"] == {
        "id": event_id(
            "wgsiem.detect", handshake_rule.id, "source.ip", "198.51.100.23", sample["event"]["id"]
        ),
        "kind": "alert",
        "category": ["intrusion_detection"],
        "type": ["info"],
        "action": "wireguard_invalid_handshake",
        "dataset": "wireguard.detect",
        "module": "wireguard",
        "created": "2025-11-24T16:00:00.000Z",
        "severity": 21,
        "risk_score": 21.0,
        "reason": "Invalid WireGuard handshake from a remote endpoint: source.ip=198.51.100.23",
    }
    assert alert["threat"] == {
        "framework": "MITRE ATT&CK",
        "tactic": {"id": ["TA0006", "TA0040"], "name": ["Credential Access", "Impact"]},
        "technique": {"id": ["T1110", "T1499"], "name": ["Brute Force", "Endpoint Denial of Service"]},
    }
    assert alert["source"] == sample["source"]
    assert alert["observer"] == sample["observer"]
    assert alert["wireguard"]["interface"] == {"name": "wg0"}
    assert alert["wireguard"]["alert"] == {
        "rule_name": "wireguard_invalid_handshake",
        "entity": {"field": "source.ip", "value": "198.51.100.23"},
        "evidence_ids": [sample["event"]["id"]],
        "evidence_action": "invalid-handshake",
        "evidence_dataset": "wireguard.kernel_log",
        "suppressed_count": 0,
        "throttle_window_secs": 300.0,
        "playbook": "handshake-abuse",
        "maturity": "experimental",
        "triage": handshake_rule.triage,
        "kind": "sigma",
        "level": "low",
    }


def test_alert_id_is_deterministic_across_engines(
    make_engine: Callable[..., DetectionEngine], builtin_rules: list[DetectionRule], sample: dict[str, Any]
) -> None:
    first = run(make_engine(rules=builtin_rules), [sample])
    again = run(make_engine(rules=builtin_rules), [sample])
    assert [a["event"]["id"] for a in first] == [a["event"]["id"] for a in again]
    assert first == again


def test_replayed_event_is_deduplicated(
    make_engine: Callable[..., DetectionEngine], handshake_rule: DetectionRule, sample: dict[str, Any]
) -> None:
    engine = make_engine(rules=[handshake_rule], throttle_window_secs=0)
    assert len(run(engine, [sample, sample, sample])) == 1
    assert engine.status()["duplicates"] == 2


def test_throttled_per_entity_on_event_time(
    make_engine: Callable[..., DetectionEngine], handshake_rule: DetectionRule, sample: dict[str, Any]
) -> None:
    engine = make_engine(rules=[handshake_rule], throttle_window_secs=60)
    docs = [
        at(sample, "2025-11-24T16:00:00.000Z"),  # alert
        at(sample, "2025-11-24T16:00:30.000Z"),  # suppressed
        at(sample, "2025-11-24T16:00:30.000Z", ip="203.0.113.9"),  # other entity: alert
        at(sample, "2025-11-24T16:00:59.999Z"),  # suppressed (window is [t, t+60))
        at(sample, "2025-11-24T16:01:00.000Z"),  # window over: alert, says 2 were suppressed
    ]
    alerts = run(engine, docs)
    assert [
        (
            a["@timestamp"],
            a["wireguard"]["alert"]["entity"]["value"],
            a["wireguard"]["alert"]["suppressed_count"],
        )
        for a in alerts
    ] == [
        ("2025-11-24T16:00:00.000Z", "198.51.100.23", 0),
        ("2025-11-24T16:00:30.000Z", "203.0.113.9", 0),
        ("2025-11-24T16:01:00.000Z", "198.51.100.23", 2),
    ]
    assert engine.status()["suppressed"] == 2


def test_throttle_ignores_wall_clock_so_replay_equals_live(
    make_engine: Callable[..., DetectionEngine], handshake_rule: DetectionRule, sample: dict[str, Any]
) -> None:
    """A day of captures replayed in a second alerts as it did live: one alert per window per entity."""
    docs = [at(sample, f"2025-11-24T{h:02d}:{m:02d}:00.000Z") for h in range(3) for m in range(0, 60, 10)]
    alerts = run(make_engine(rules=[handshake_rule], throttle_window_secs=3600), docs)
    assert [a["@timestamp"] for a in alerts] == [
        "2025-11-24T00:00:00.000Z",
        "2025-11-24T01:00:00.000Z",
        "2025-11-24T02:00:00.000Z",
    ]


def test_zero_window_alerts_on_every_distinct_event(
    make_engine: Callable[..., DetectionEngine], handshake_rule: DetectionRule, sample: dict[str, Any]
) -> None:
    docs = [at(sample, f"2025-11-24T16:00:0{s}.000Z") for s in range(3)]
    assert len(run(make_engine(rules=[handshake_rule], throttle_window_secs=0), docs)) == 3


def test_gate_tables_are_bounded() -> None:
    gate = AlertGate(3600, max_entities=2, max_event_ids=3)
    for i in range(10):
        assert gate.admit("r", Entity("source.ip", f"192.0.2.{i}"), f"id{i}", 0.0) == 0
    assert len(gate) == 2
    assert len(gate._seen) == 3


def test_own_alerts_are_not_evaluated(
    make_engine: Callable[..., DetectionEngine],
    builtin_rules: list[DetectionRule],
    handshake_rule: DetectionRule,
    sample: dict[str, Any],
) -> None:
    others = [r for r in builtin_rules if r.name != handshake_rule.name]
    engine = make_engine(rules=[handshake_rule, *others])
    (alert,) = run(engine, [sample])
    assert run(engine, [alert]) == []


def test_event_without_timestamp_is_counted_and_still_detected(
    make_engine: Callable[..., DetectionEngine], handshake_rule: DetectionRule, sample: dict[str, Any]
) -> None:
    engine = make_engine(rules=[handshake_rule])
    del sample["@timestamp"]
    assert len(run(engine, [sample])) == 1
    assert engine.ctx.telemetry.errors == {"missing_timestamp@detect": 1}


def test_a_failing_rule_is_counted_and_other_rules_still_run(
    make_engine: Callable[..., DetectionEngine], handshake_rule: DetectionRule, sample: dict[str, Any]
) -> None:
    import dataclasses

    def boom(doc: dict[str, Any]) -> bool:
        raise ValueError("bug")

    broken = dataclasses.replace(handshake_rule, id="broken", name="broken", predicate=boom)
    engine = make_engine(rules=[broken, handshake_rule])
    assert len(run(engine, [sample])) == 1
    assert engine.ctx.telemetry.errors == {"rule_error@detect": 1}


def test_drain_empties_the_queue(
    make_engine: Callable[..., DetectionEngine], handshake_rule: DetectionRule, sample: dict[str, Any]
) -> None:
    engine = make_engine(rules=[handshake_rule])
    engine(envelope(sample))
    assert len(engine.drain_alerts()) == 1
    assert engine.drain_alerts() == []


def test_builtin_rules_load_from_config(make_engine: Callable[..., DetectionEngine]) -> None:
    engine = make_engine(disabled_rules=["wireguard_unallowed_source_ip"])
    names = {r.name for r in engine.rules}
    assert {"wireguard_config_drift", "wireguard_invalid_handshake", "wireguard_traffic_spike"} <= names
    assert "wireguard_unallowed_source_ip" not in names
    assert make_engine(builtin_rules=False).rules == []


def _items(node: Any) -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [(k, v) for k, v in node.items()] + [i for v in node.values() for i in _items(v)]
    if isinstance(node, list):
        return [i for v in node for i in _items(v)]
    return []


def test_no_secret_material_in_alerts(
    make_engine: Callable[..., DetectionEngine], builtin_rules: list[DetectionRule]
) -> None:
    """Alerts copy context from the evidence; the only WireGuard keys in them are public keys."""
    for rule in builtin_rules:
        for alert in run(make_engine(rules=[rule]), list(rule.samples_match)):
            items = _items(alert)
            public = {v for k, v in items if k == "public_key"}
            assert set(re.findall(r"[A-Za-z0-9+/]{43}=", repr(alert))) <= public
            for key, value in items:
                if key in ("private_key", "preshared_key"):
                    assert isinstance(value, dict)
                    assert set(value) <= {"present", "fingerprint"}
