"""Routing by event.action never skips an event a rule would match (soundness), and pins only what the
condition really requires."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from sigma.rule import SigmaRule

from wgsiem.detect import BUILTIN_RULES, load_rules
from wgsiem.detect.match import compile_condition, required_values

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schema" / "ecs"
RULES = load_rules([BUILTIN_RULES])


def _docs() -> list[dict[str, Any]]:
    docs = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*/*.json"))]
    for r in RULES:
        docs += list(r.samples_match) + list(r.samples_no_match)
    return docs


def test_a_matching_event_is_always_routed_to_its_rule() -> None:
    offenders = []
    for rule in RULES:
        if rule.kind == "detector":
            continue
        preds = [rule.predicate] if rule.kind == "sigma" else [p for _, p in rule.correlation.base]  # type: ignore[union-attr]
        for doc in _docs():
            action = str(doc.get("event", {}).get("action", "")).casefold()
            if any(p(doc) for p in preds) and rule.actions is not None and action not in rule.actions:
                offenders.append((rule.name, doc["event"].get("id")))
    assert offenders == []


def _condition(detection: str) -> Any:
    rule = SigmaRule.from_dict(
        {"title": "t", "logsource": {"product": "wireguard"}, "detection": yaml.safe_load(detection)}
    )
    return rule.detection.parsed_condition[0].parsed


def test_required_values() -> None:
    pinned = _condition("a: {event.action: [X, y]}\nb: {source.ip: 1.2.3.4}\ncondition: a and b")
    assert required_values(pinned, "event.action") == frozenset({"x", "y"})
    either = _condition("a: {event.action: x}\nb: {event.action: z}\ncondition: a or b")
    assert required_values(either, "event.action") == frozenset({"x", "z"})
    for loose in (
        "a: {event.action: x*}\ncondition: a",
        "a: {event.action: x}\ncondition: not a",
        "a: {event.action: x}\nb: {source.ip: 1.2.3.4}\ncondition: a or b",
    ):
        assert required_values(_condition(loose), "event.action") is None, loose
    cond = _condition("a: {event.action: x}\ncondition: a")
    assert compile_condition(cond)({"event": {"action": "X"}})  # case-insensitive, as routed
