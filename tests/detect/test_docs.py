"""docs/detections.md stays true: its config example parses, its table lists every built-in rule."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from wgsiem.detect import BUILTIN_RULES, DetectConfig, load_rules

DOC = Path(__file__).resolve().parents[2] / "docs" / "detections.md"


def test_config_example_parses() -> None:
    text = DOC.read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "type: detect" in b]
    config = DetectConfig.model_validate(yaml.safe_load(block))
    assert config.throttle_window_secs == 300
    assert config.disabled_rules == ["wireguard_invalid_handshake"]


def test_builtin_rules_table_lists_every_rule() -> None:
    text = DOC.read_text()
    section = text.split("## Built-in rules", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.M))
    assert listed == {r.name for r in load_rules([BUILTIN_RULES])}
    for rule in load_rules([BUILTIN_RULES]):
        assert rule.title in section, rule.name
        assert f"{rule.level} / {rule.risk_score:g}" in section, rule.name
