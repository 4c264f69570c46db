"""The examples in docs/sinks/splunk_hec.md and docs/content/splunk.md are real and valid."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from wgsiem.config.loader import load_config_text
from wgsiem.sinks.splunk_hec.config import SplunkHecSinkConfig
from wgsiem.sinks.splunk_hec.content import app_files
from wgsiem.sinks.splunk_hec.encoder import HecEncoder

from .conf_parser import parse_conf
from .support import FIXTURES

DOCS = Path(__file__).resolve().parents[3] / "docs"


def _blocks(page: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", page.read_text(), re.S)


def test_yaml_examples_are_valid_configurations() -> None:
    blocks = _blocks(DOCS / "sinks" / "splunk_hec.md", "yaml")
    assert len(blocks) == 2
    for text in blocks:
        cfg = load_config_text(text, "splunk_hec.md")
        (sink,) = cfg.sinks.values()
        assert isinstance(sink, SplunkHecSinkConfig)
        assert "8c2b7a52" not in repr(sink) and "8c2b7a52" not in str(sink.model_dump())


def test_json_example_is_what_the_encoder_sends() -> None:
    (text,) = _blocks(DOCS / "sinks" / "splunk_hec.md", "json")
    doc = orjson.loads((FIXTURES / "schema" / "ecs" / "wg_state" / "session-started.json").read_bytes())
    enc = HecEncoder(source="wgsiem", default_host="h", index="wireguard", schema="cim")
    assert orjson.loads(text) == orjson.loads(enc.encode(doc))


def test_local_alert_actions_snippet_names_real_parameters() -> None:
    page = (DOCS / "content" / "splunk.md").read_text()
    snippet = re.search(r"```\n\s*(\[wgsiem_propose\].*?)```", page, re.S)
    assert snippet
    local = parse_conf(re.sub(r"(?m)^ +", "", snippet.group(1)), "local/alert_actions.conf")
    default = parse_conf(app_files()["default/alert_actions.conf"], "default/alert_actions.conf")
    assert set(local.stanzas["wgsiem_propose"]) <= set(default.stanzas["wgsiem_propose"])
