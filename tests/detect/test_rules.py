"""Every rule file: its samples through the real engine, and a collection-wide lint.

The lint collects every offender of every rule and fails once with the full list
(elastic/detection-rules' test_all_rules.py), so a rule author fixes all mistakes in one round.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.ecs import ecs_fields, validate
from wgsiem.detect import BUILTIN_RULES, DetectionEngine, DetectionRule, load_rule, load_rules
from wgsiem.detect.attack import TACTICS, TECHNIQUES
from wgsiem.detect.match import referenced_fields
from wgsiem.detect.rule import rule_files
from wgsiem.errors import ConfigError

from .conftest import envelope

RULES = load_rules([BUILTIN_RULES])
SIGMA = [r for r in RULES if r.kind == "sigma"]
_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")


def test_there_are_builtin_rules() -> None:
    assert {r.name for r in RULES} == {
        "wireguard_invalid_handshake",
        "wireguard_unallowed_source_ip",
        "wireguard_config_drift",
        # correlations
        "wireguard_handshake_flood",
        "wireguard_under_load",
        "wireguard_key_many_endpoints",
        "wireguard_new_peer_used",
        # detectors
        "wireguard_unapproved_config_change",
        "wireguard_unexpected_geography",
        "wireguard_traffic_spike",
        "wireguard_lateral_movement",
        "wireguard_shared_key",
        "wireguard_dormant_peer_active",
        "wireguard_unusual_hours",
        "wireguard_escalation_edr",
    }


@pytest.mark.parametrize("rule", SIGMA, ids=lambda r: r.name)
def test_match_samples_raise_one_alert_each(
    rule: DetectionRule, make_engine: Callable[..., DetectionEngine]
) -> None:
    for doc in rule.samples_match:
        engine = make_engine(rules=[rule])
        env = envelope(doc)
        assert engine(env) is env
        assert env.data == doc  # detection never edits the event
        alerts = engine.drain_alerts()
        assert len(alerts) == 1, doc["event"]["id"]
        alert = alerts[0].data
        assert validate(alert) == []
        assert alert["event"]["kind"] == "alert"
        assert alert["event"]["action"] == rule.name
        assert alert["event"]["severity"] == rule.severity
        assert alert["event"]["risk_score"] == rule.risk_score
        assert alert["@timestamp"] == doc["@timestamp"]
        assert alert["rule"]["id"] == rule.id
        assert alert["rule"]["name"] == rule.title
        assert alert["rule"]["description"] == rule.description
        assert alert["rule"]["reference"] == rule.references[0]
        assert alert["threat"]["technique"]["id"] == list(rule.techniques)
        assert alert["wireguard"]["alert"]["evidence_ids"] == [doc["event"]["id"]]
        entity = alert["wireguard"]["alert"]["entity"]
        assert entity["field"] in rule.entity_fields
        assert entity["value"] != ""
        assert alerts[0].meta.source_id == "detect"


@pytest.mark.parametrize("rule", SIGMA, ids=lambda r: r.name)
def test_no_match_samples_raise_nothing(
    rule: DetectionRule, make_engine: Callable[..., DetectionEngine]
) -> None:
    engine = make_engine(rules=[rule])
    for doc in rule.samples_no_match:
        engine(envelope(doc))
    assert engine.drain_alerts() == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_samples_are_valid_ecs(rule: DetectionRule) -> None:
    problems = {
        f"{doc['event']['id']}: {p}"
        for doc in rule.samples_match + rule.samples_no_match
        for p in validate(doc)
    }
    assert problems == set()


def _lint(rule: DetectionRule) -> list[str]:
    where = rule.path.name
    out: list[str] = []
    known = ecs_fields()
    detections = [rule.sigma, *rule.base_rules] if rule.kind == "sigma" else list(rule.base_rules)
    for sigma in detections:
        for tree in (c.parsed for c in sigma.detection.parsed_condition):  # type: ignore[union-attr]
            for field in sorted(referenced_fields(tree)):
                if not field.startswith("wireguard.") and field not in known:
                    out.append(f"{where}: detection field {field!r} is not an ECS field")
    if rule.correlation is not None:
        for field in [*rule.correlation.group_by, rule.correlation.value_field or "wireguard."]:
            if not field.startswith("wireguard.") and field not in known:
                out.append(f"{where}: correlation field {field!r} is not an ECS field")
    for field in rule.entity_fields:
        if not field.startswith("wireguard.") and field not in known:
            out.append(f"{where}: entity field {field!r} is not an ECS field")
    for tid in rule.techniques:
        if not _TECHNIQUE.match(tid):
            out.append(f"{where}: ATT&CK technique id {tid!r} is not TNNNN or TNNNN.NNN")
        if tid not in TECHNIQUES:
            out.append(f"{where}: ATT&CK technique {tid} has no name")
    for tactic in rule.tactics:
        if tactic not in TACTICS:
            out.append(f"{where}: unknown ATT&CK tactic {tactic!r}")
    if rule.maturity not in ("experimental", "test", "stable"):
        out.append(f"{where}: maturity {rule.maturity!r} is not experimental/test/stable")
    if not rule.references or not all(r.startswith("https://") for r in rule.references):
        out.append(f"{where}: references must be https URLs")
    if rule.created is None:
        out.append(f"{where}: missing date")
    if rule.updated is not None and rule.created is not None and rule.updated < rule.created:
        out.append(f"{where}: modified before date")
    if rule.path.stem != rule.name:
        out.append(f"{where}: file name must be the rule name ({rule.name}.yaml)")
    if not rule.false_positives or not rule.triage or not rule.playbook:
        out.append(f"{where}: false positives, triage and playbook are required")
    # A sample must be a real event of the source the rule reads (carries its dataset and an id).
    for doc in rule.samples_match + rule.samples_no_match:
        if not str(doc.get("event", {}).get("dataset", "")).startswith("wireguard."):
            out.append(f"{where}: sample {doc.get('event', {}).get('id')} has no wireguard.* dataset")
    return out


def test_all_rules_lint_clean() -> None:
    """Load every rule file strictly, then lint the collection; one failure lists every offender."""
    offenders: list[str] = []
    files = rule_files(BUILTIN_RULES)
    for path in files:
        try:
            rule = load_rule(path)
        except ConfigError as e:
            offenders.extend(p.render() for p in (e.problems or [e]))
            continue
        offenders.extend(_lint(rule))
    ids = [load_rule(p).id for p in files]
    if len(ids) != len(set(ids)):
        offenders.append("duplicate rule ids")
    assert offenders == [], "\n".join(offenders)


def test_loader_reports_every_problem_of_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        """
title: Broken
id: not-a-uuid
logsource: {product: wireguard}
detection:
  selection: {event.action: x}
  condition: selection
tags: [attack.t1110, attack.not-a-tactic]
wgsiem:
  risk_score: 300
"""
    )
    with pytest.raises(ConfigError) as info:
        load_rule(bad)
    text = info.value.render()
    for expected in (
        "missing `name`",
        "missing `level`",
        "missing `status`",
        "neither an ATT&CK technique nor a tactic",
        "no ATT&CK tactic tag",
        "risk_score must be a number from 0 to 100",
        "samples.match must be a non-empty list",
        "samples.no_match must be a non-empty list",
        "missing `description`",
        "missing `wgsiem.triage`",
        "missing `wgsiem.playbook`",
    ):
        assert expected in text, expected
    assert str(bad) in text


def test_load_rules_collects_problems_of_all_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("title: a\n")
    (tmp_path / "b.yml").write_text("- not a mapping\n")
    with pytest.raises(ConfigError) as info:
        load_rules([tmp_path])
    text = info.value.render()
    assert "a.yaml" in text
    assert "b.yml" in text


def test_disabled_rules_are_not_loaded() -> None:
    rules = load_rules([BUILTIN_RULES], disabled=frozenset({"wireguard_config_drift"}))
    assert "wireguard_config_drift" not in {r.name for r in rules}
    assert len(rules) == len(RULES) - 1


def test_pysigma_validators_pass_on_the_collection() -> None:
    """pySigma's own rule validators, except those that download ATT&CK / D3FEND data (no network)."""
    from sigma.collection import SigmaCollection
    from sigma.plugins import InstalledSigmaPlugins
    from sigma.validation import SigmaValidator

    # detector rules are wgsiem plugins, not Sigma: only Sigma and correlation files are checked
    sigma_files = [str(r.path) for r in RULES if r.kind != "detector"]
    collection = SigmaCollection.load_ruleset(sigma_files)
    offline = {
        name: cls
        for name, cls in InstalledSigmaPlugins.autodiscover().validators.items()
        if not any(word in name for word in ("tag", "attack", "d3fend"))
    }
    assert "custom_attributes" in offline and "identifier_uniqueness" in offline
    issues = SigmaValidator(offline.values()).validate_rules(collection)
    assert [f"{type(i).__name__}: {[r.name for r in i.rules]}" for i in issues] == []
