"""docs/sources/config_watch.md: its example config is valid and every action is documented."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from wgsiem.sources.config_watch.config import ConfigWatchSourceConfig
from wgsiem.sources.config_watch.normalize import ACTIONS

DOC = Path(__file__).resolve().parents[3] / "docs" / "sources" / "config_watch.md"


def test_example_config_is_valid() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    for block in blocks:
        for name, cfg in yaml.safe_load(block)["sources"].items():
            parsed = ConfigWatchSourceConfig(**cfg)
            assert parsed == ConfigWatchSourceConfig(), f"{name}: the documented values are the defaults"


def test_every_action_and_field_is_documented() -> None:
    text = DOC.read_text()
    assert [a for a in ACTIONS if f"`{a}`" not in text] == []
    assert [f for f in ConfigWatchSourceConfig.model_fields if f"`{f}`" not in text] == []
