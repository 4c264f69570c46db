"""Every configuration example in the sink's docs parses into the sink's model."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from wgsiem.sinks.elasticsearch.config import ElasticsearchSinkConfig

DOC = Path(__file__).resolve().parents[3] / "docs" / "sinks" / "elasticsearch.md"


def test_every_yaml_example_is_a_valid_sink_config() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 2
    for block in blocks:
        for name, sink in yaml.safe_load(block)["sinks"].items():
            cfg = ElasticsearchSinkConfig.model_validate(sink)
            assert cfg.type == "elasticsearch", name


def test_every_config_field_is_documented() -> None:
    text = DOC.read_text()
    for name in ElasticsearchSinkConfig.model_fields:
        assert f"`{name}" in text, name
