"""Every YAML example in docs/respond/ parses: configurations with the real config loader,
playbooks with the playbook loader; the real examples verify and map to valid ECS."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.ecs import validate
from wgsiem.config.loader import load_config_text
from wgsiem.respond.audit import verify
from wgsiem.respond.playbook import load_playbook_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "respond"
_BLOCK = re.compile(r"```(yaml|json)\n(.*?)```", re.S)


def blocks(name: str, lang: str) -> list[str]:
    return [m.group(2) for m in _BLOCK.finditer((DOCS / name).read_text()) if m.group(1) == lang]


@pytest.mark.parametrize("name", ["README.md", "api.md"])
def test_config_examples_parse(name: str) -> None:
    examples = blocks(name, "yaml")
    assert examples
    for text in examples:
        cfg = load_config_text(text, f"{name} example")
        assert cfg.sinks["respond"].type == "respond"


def test_playbook_example_parses() -> None:
    (text,) = blocks("playbooks.md", "yaml")
    pb = load_playbook_text(text, "playbooks.md example")
    assert (pb.id, pb.steps[0].action, pb.trigger.min_severity) == ("handshake-abuse", "block_endpoint", 47)


def test_real_event_example_is_valid_ecs() -> None:
    (doc,) = [json.loads(b) for b in blocks("README.md", "json")]
    assert validate(doc) == []
    assert doc["event"]["action"] == "response-action-succeeded"


def test_real_audit_example_verifies(tmp_path: Path) -> None:
    text = (DOCS / "audit.md").read_text().split("## A real log", 1)[1]
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(ln + "\n" for ln in lines))
    res = verify(path, [])
    assert (res.ok, res.records) == (True, 7)
