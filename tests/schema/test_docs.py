"""docs/schema.md: every action with goldens is listed, its examples are the goldens, its YAML parses."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import yaml

from tests.schema.goldens import examples, golden
from wgsiem.sinks.ndjson.config import NdjsonSinkConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def test_every_action_is_listed_under_its_source() -> None:
    listed = {
        (m.group(1), a)
        for m in re.finditer(r"^\| [^|]+ \| [^|]+ \| `([a-z_]+)` \| (.*) \|$", DOC.read_text(), re.M)
        for a in re.findall(r"`([a-z-]+)`", m.group(2))
    }
    missing = set(examples()) - listed
    assert missing == set()


def test_examples_are_the_goldens() -> None:
    cim, ocsf = (orjson.loads(b) for b in re.findall(r"```json\n(.*?)\n```", DOC.read_text(), re.S))
    assert cim == golden("cim", "wg_state", "session-started")
    want = golden("ocsf", "wg_state", "session-started")
    del want["unmapped"]
    assert ocsf == want


def test_sink_examples_parse() -> None:
    (block,) = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    sinks = yaml.safe_load(block)["sinks"]
    assert {n: NdjsonSinkConfig.model_validate(c).output_schema for n, c in sinks.items()} == {
        "splunk_file": "cim",
        "security_lake": "ocsf",
    }
