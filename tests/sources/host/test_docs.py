"""docs/sources/host.md: the example config is the defaults, every action and field is documented, and
every example event is valid ECS."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.support.ecs import validate
from wgsiem.sources.host.config import HostSourceConfig
from wgsiem.sources.host.normalize import ACTIONS

DOC = Path(__file__).resolve().parents[3] / "docs" / "sources" / "host.md"


def test_example_config_is_the_defaults() -> None:
    (block,) = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    for cfg in yaml.safe_load(block)["sources"].values():
        assert HostSourceConfig(**cfg) == HostSourceConfig()


def test_every_action_and_config_field_is_documented() -> None:
    text = DOC.read_text()
    assert [a for a in ACTIONS if f"`{a}`" not in text] == []
    assert [f for f in HostSourceConfig.model_fields if f"`{f}`" not in text] == []


def test_every_example_event_is_valid_ecs_and_each_action_has_one() -> None:
    docs = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S)]
    assert [p for d in docs for p in validate(d)] == []
    shown = {d["event"]["action"] for d in docs}
    assert sorted(set(ACTIONS) - shown) == []
