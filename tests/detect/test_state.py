"""Engine state: persisted across restarts (0600, no secrets), bounded, replay-safe; correlations."""

from __future__ import annotations

import copy
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.detect import BUILTIN_RULES, DetectionEngine, DetectionRule, load_rules
from wgsiem.detect.correlation import CorrelationState

from .conftest import envelope

RULES = load_rules([BUILTIN_RULES])
BY_NAME = {r.name: r for r in RULES}


def test_state_survives_a_restart(tmp_path: Path, make_engine: Callable[..., DetectionEngine]) -> None:
    """Half of a flood before the restart, half after: the correlation still fires."""
    rule = BY_NAME["wireguard_handshake_flood"]
    docs = list(rule.samples_match)
    engine = make_engine(rules=[rule])
    for doc in docs[:5]:
        engine(envelope(doc))
    assert engine.drain_alerts() == []
    engine.close()
    path = tmp_path / "detect" / "detect.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    restarted = make_engine(rules=[rule])
    for doc in docs[5:]:
        restarted(envelope(doc))
    assert [a.data["event"]["action"] for a in restarted.drain_alerts()] == ["wireguard_handshake_flood"]
    cold = make_engine(rules=[rule], state=False)
    for doc in docs[5:]:
        cold(envelope(doc))
    assert cold.drain_alerts() == []


def test_detector_baseline_survives_a_restart(
    tmp_path: Path, make_engine: Callable[..., DetectionEngine]
) -> None:
    rule = BY_NAME["wireguard_traffic_spike"]
    *learn, burst = rule.samples_match
    engine = make_engine(rules=[rule])
    for doc in learn:
        engine(envelope(doc))
    engine.close()
    restarted = make_engine(rules=[rule])
    restarted(envelope(burst))
    assert len(restarted.drain_alerts()) == 1


def test_damaged_state_file_is_counted_and_ignored(
    tmp_path: Path, make_engine: Callable[..., DetectionEngine]
) -> None:
    (tmp_path / "detect").mkdir()
    (tmp_path / "detect" / "detect.json").write_text("{not json")
    engine = make_engine(rules=RULES)
    assert engine.ctx.telemetry.errors  # counted
    for doc in BY_NAME["wireguard_handshake_flood"].samples_match:
        engine(envelope(doc))
    assert engine.drain_alerts()


def test_state_and_status_hold_no_secret(tmp_path: Path, make_engine: Callable[..., DetectionEngine]) -> None:
    engine = make_engine(rules=RULES)
    for rule in RULES:
        for doc in rule.samples_match + rule.samples_no_match:
            d = copy.deepcopy(doc)
            d.setdefault("wireguard", {})["interface"] = {"name": "wg0", "private_key": {"present": True}}
            engine(envelope(d))
    engine.drain_alerts()
    status = engine.status()
    assert status["state_bytes"] > 0 and status["state_bytes_per_peer"] > 0
    engine.close()
    text = (tmp_path / "detect" / "detect.json").read_text()
    assert "private_key" not in text and "preshared" not in text
    json.loads(text)


def test_same_stream_twice_gives_the_same_alerts(
    tmp_path: Path, make_engine: Callable[..., DetectionEngine]
) -> None:
    """Replay safety: decisions depend on event time and content only."""
    stream = [d for r in RULES if r.kind != "sigma" for d in r.samples_match]

    def run(sub: str) -> list[str]:
        engine = make_engine(rules=RULES, state=False, lifecycle=False)
        out = []
        for doc in stream:
            engine(envelope(doc))
            out += [a.data["event"]["id"] for a in engine.drain_alerts()]
        return out

    first = run("a")
    assert first and first == run("b")


# -- correlation windows ------------------------------------------------------------------------

event_docs = st.lists(
    st.tuples(
        st.sampled_from(["invalid-handshake", "invalid-mac", "handshake", "cookie-sent"]),
        st.sampled_from(["198.51.100.1", "198.51.100.2", "203.0.113.9", ""]),
        st.floats(min_value=0, max_value=600, allow_nan=False),
    ),
    max_size=200,
)


@settings(max_examples=60, deadline=None)
@given(event_docs)
def test_correlation_state_stays_bounded_and_never_raises(events: list[tuple[str, str, float]]) -> None:
    rule: DetectionRule = BY_NAME["wireguard_handshake_flood"]
    assert rule.correlation is not None
    state = CorrelationState(rule.correlation, max_groups=2, max_evidence=3)
    t = 1_700_000_000.0
    for i, (action, ip, dt_) in enumerate(sorted(events, key=lambda e: e[2])):
        doc: dict[str, Any] = {
            "event": {"id": str(i), "action": action, "dataset": "wireguard.kernel_log"},
            "source": {"ip": ip} if ip else {},
        }
        state.observe(doc, t + dt_, str(i))
        assert len(state) <= 2
        for _, window, ev in state.snapshot():
            assert len(window) <= rule.correlation.keep and len(ev) <= 3


def test_value_count_counts_distinct_values_in_the_window() -> None:
    rule = BY_NAME["wireguard_key_many_endpoints"]
    assert rule.correlation is not None
    state = CorrelationState(rule.correlation)
    docs = list(rule.samples_match)
    from wgsiem.detect.alert import event_time

    fired = [state.observe(d, event_time(d) or 0, d["event"]["id"]) for d in docs]
    assert fired[:3] == [None, None, None]
    assert fired[3] == ("J0J63I/+8nkMSpqDGLlPvSkYeTTleiRwtrlH4Ca4uys=",)
    assert state.evidence(fired[3]) == tuple(d["event"]["id"] for d in docs)


def test_temporal_needs_every_rule_in_the_window() -> None:
    rule = BY_NAME["wireguard_new_peer_used"]
    assert rule.correlation is not None and rule.correlation.type == "temporal"
    state = CorrelationState(rule.correlation)
    added, hs = rule.samples_match
    assert state.observe(hs, 0.0, "h0") is None
    assert state.observe(added, 1000.0, "a") is None  # the handshake is > 15 min older
    assert state.observe(hs, 1100.0, "h1") is not None


def test_options_for_an_unknown_detector_are_an_error(make_engine: Callable[..., DetectionEngine]) -> None:
    import pytest

    from wgsiem.errors import ConfigError

    with pytest.raises(ConfigError, match="wireguard_no_such_rule"):
        make_engine(rules=RULES, detector_options={"wireguard_no_such_rule": {}})
