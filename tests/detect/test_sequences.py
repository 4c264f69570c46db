"""Correlation and detector rules: their sample *sequences* through the real engine.

``match`` fed in order to a fresh engine raises at least one alert of the rule; ``no_match`` none.
The engine runs every built-in rule (the escalation rule needs the others' alerts); the samples run
with the rule's ``samples.options``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.ecs import validate
from wgsiem.detect import BUILTIN_RULES, DetectionEngine, DetectionRule, load_rules

from .conftest import envelope

RULES = load_rules([BUILTIN_RULES])
STATEFUL = [r for r in RULES if r.kind != "sigma"]


def run(make_engine: Callable[..., DetectionEngine], rule: DetectionRule, docs: Any) -> list[dict[str, Any]]:
    options = {rule.name: rule.sample_options} if rule.sample_options else {}
    engine = make_engine(rules=RULES, detector_options=options)
    out: list[dict[str, Any]] = []
    for doc in docs:
        env = envelope(doc)
        assert engine(env) is env
        assert env.data == doc  # detection never edits the event
        out.extend(a.data for a in engine.drain_alerts())
    engine.close()
    return out


def of(rule: DetectionRule, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["wireguard"]["alert"]["rule_name"] == rule.name]


@pytest.mark.parametrize("rule", STATEFUL, ids=lambda r: r.name)
def test_match_sequence_raises_the_rule(
    rule: DetectionRule, make_engine: Callable[..., DetectionEngine]
) -> None:
    everything = run(make_engine, rule, rule.samples_match)
    alerts = of(rule, everything)
    assert alerts, rule.name
    ids = {d["event"]["id"] for d in rule.samples_match}
    for alert in alerts:
        assert validate(alert) == []
        assert alert["event"]["kind"] == "alert"
        assert alert["rule"]["id"] == rule.id
        assert alert["wireguard"]["alert"]["kind"] == rule.kind
        evidence = alert["wireguard"]["alert"]["evidence_ids"]
        # evidence: the sample events, or (escalation) the alerts other rules raised on them
        assert evidence and set(evidence) <= ids | {a["event"]["id"] for a in everything}
        assert alert["wireguard"]["alert"]["entity"]["value"] != ""


@pytest.mark.parametrize("rule", STATEFUL, ids=lambda r: r.name)
def test_no_match_sequence_raises_nothing(
    rule: DetectionRule, make_engine: Callable[..., DetectionEngine]
) -> None:
    assert of(rule, run(make_engine, rule, rule.samples_no_match)) == []
