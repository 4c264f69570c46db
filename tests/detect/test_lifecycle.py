"""The alert lifecycle in alerts.db: the engine records alerts, the CLI triages, suppressions mute."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from wgsiem.cli.main import cli
from wgsiem.detect import DetectionEngine, DetectionRule
from wgsiem.detect.lifecycle import AlertStore

from .conftest import envelope


def _sample(rules: list[DetectionRule], name: str) -> tuple[DetectionRule, dict[str, Any]]:
    rule = next(r for r in rules if r.name == name)
    return rule, rule.samples_match[0]


def _alerts_cli(state: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["alerts", *args[:1], "--state-dir", str(state), *args[1:]])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_engine_records_alerts_and_cli_triages(
    tmp_path: Path, make_engine: Callable[..., DetectionEngine], builtin_rules: list[DetectionRule]
) -> None:
    rule, doc = _sample(builtin_rules, "wireguard_unallowed_source_ip")
    engine = make_engine(rules=[rule])
    engine(envelope(doc))
    (alert,) = [a.data for a in engine.drain_alerts()]
    engine.close()
    db = tmp_path / "alerts.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600

    rows = [json.loads(line) for line in _alerts_cli(tmp_path, "list", "--json").splitlines()]
    assert [(r["id"], r["status"], r["rule_name"]) for r in rows] == [
        (alert["event"]["id"], "open", "wireguard_unallowed_source_ip")
    ]
    aid = alert["event"]["id"]
    _alerts_cli(tmp_path, "ack", aid[:10], "--reason", "looking", "--actor", "ana")
    _alerts_cli(tmp_path, "close", aid, "--reason", "false positive: container host", "--actor", "ana")
    shown = json.loads(_alerts_cli(tmp_path, "show", aid, "--json"))
    assert shown["status"] == "closed"
    assert shown["actor"] == "ana"
    assert shown["reason"] == "false positive: container host"
    assert [h["status"] for h in shown["history"]] == ["acknowledged", "closed"]
    assert shown["document"] == alert
    assert "closed" in _alerts_cli(tmp_path, "list", "--status", "closed")
    assert _alerts_cli(tmp_path, "list", "--status", "open").strip() == "no alerts"
    assert "Unsecured" not in _alerts_cli(tmp_path, "show", aid)


def test_replayed_alert_is_recorded_once(
    tmp_path: Path, make_engine: Callable[..., DetectionEngine], builtin_rules: list[DetectionRule]
) -> None:
    rule, doc = _sample(builtin_rules, "wireguard_config_drift")
    for _ in range(2):
        engine = make_engine(rules=[rule], state=False)
        engine(envelope(doc))
        engine.drain_alerts()
        engine.close()
    store = AlertStore(tmp_path / "alerts.db")
    assert len(store.list()) == 1
    store.close()


def test_suppression_from_cli_is_honoured_by_a_running_engine(
    tmp_path: Path, make_engine: Callable[..., DetectionEngine], builtin_rules: list[DetectionRule]
) -> None:
    rule, doc = _sample(builtin_rules, "wireguard_unallowed_source_ip")
    engine = make_engine(rules=[rule], throttle_window_secs=0, suppression_check_interval_secs=0.001)
    _alerts_cli(
        tmp_path,
        "suppress",
        "--rule",
        rule.name,
        "--entity",
        "203.0.113.7",
        "--for",
        "1000000d",
        "--reason",
        "lab",
    )
    # the engine was built before the suppression: it notices the change in alerts.db
    second = json.loads(json.dumps(doc))
    second["event"]["id"] = "0" * 32
    engine(envelope(doc))
    engine(envelope(second))
    assert engine.drain_alerts() == []
    assert engine.status()["muted_by_suppression"] == {rule.name: 2}
    # another entity still alerts
    other = json.loads(json.dumps(doc))
    other["event"]["id"] = "1" * 32
    other["source"]["ip"] = "198.51.100.9"
    other["wireguard"].pop("peer", None)
    engine(envelope(other))
    assert len(engine.drain_alerts()) == 1
    engine.close()


def test_suppression_ends_at_its_time(
    tmp_path: Path, make_engine: Callable[..., DetectionEngine], builtin_rules: list[DetectionRule]
) -> None:
    rule, doc = _sample(builtin_rules, "wireguard_config_drift")
    store = AlertStore(tmp_path / "alerts.db")
    store.suppress(rule="*", entity="*", until=0.0, reason="expired long ago", actor="t")
    store.close()
    engine = make_engine(rules=[rule])
    engine(envelope(doc))
    assert len(engine.drain_alerts()) == 1
    engine.close()


def test_cli_without_database_says_how_to_fix(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["alerts", "list", "--state-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "no alert database" in str(result.exception)
