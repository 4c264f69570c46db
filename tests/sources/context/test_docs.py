"""docs/sources/context.md: its example configs load, every action and field is documented, every
example event is valid ECS, and the documented errors are what the parser says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.support.ecs import validate
from wgsiem.sources.context.config import ContextHttpConfig, ContextSourceConfig
from wgsiem.sources.context.schema import MODELS

DOC = Path(__file__).resolve().parents[3] / "docs" / "sources" / "context.md"
ACTIONS = [
    "identity-login",
    "identity-mfa",
    "identity-logout",
    "edr-alert",
    "change-ticket",
    "config-run",
    "config-task",
]


def test_example_configs_load() -> None:
    first, second = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    (cfg,) = yaml.safe_load(first)["sources"].values()
    assert ContextSourceConfig(**cfg) == ContextSourceConfig()
    (cfg,) = yaml.safe_load(second)["sources"].values()
    full = ContextSourceConfig(**cfg)
    assert full.http is not None and len(full.files) == 2
    assert full.http.model_dump(exclude={"token"}) == ContextHttpConfig(token="x" * 16).model_dump(
        exclude={"token"}
    )  # type: ignore[arg-type]


def test_every_action_schema_field_and_config_field_is_documented() -> None:
    text = DOC.read_text()
    assert [a for a in ACTIONS if f"`{a}`" not in text] == []
    fields = {f for m in MODELS.values() for f in m.model_fields} | set(ContextSourceConfig.model_fields)
    fields |= set(ContextHttpConfig.model_fields)
    assert sorted(f for f in fields if f"`{f}`" not in text) == []


def test_every_example_event_is_valid_ecs_and_each_action_has_one() -> None:
    docs = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S)]
    assert [p for d in docs for p in validate(d)] == []
    assert sorted(set(ACTIONS) - {d["event"]["action"] for d in docs}) == []
