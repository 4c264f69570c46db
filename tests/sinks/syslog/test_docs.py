"""docs/sinks/syslog.md: the example config loads, every field and mapped key is documented, and the
example messages are what the encoder makes of the fixture documents."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.support.ecs import validate
from wgsiem.config.loader import load_config_text
from wgsiem.sinks.syslog.config import SyslogSinkConfig, TlsConfig
from wgsiem.sinks.syslog.encoder import SD_PARAMS, SyslogEncoder
from wgsiem.sinks.syslog.payload import CEF_EXTENSION, LEEF_ATTRIBUTES

DOC = Path(__file__).resolve().parents[3] / "docs" / "sinks" / "syslog.md"


def test_example_config_loads() -> None:
    (block,) = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    config = load_config_text(block, str(DOC))
    sink = config.sinks["siem"]
    assert isinstance(sink, SyslogSinkConfig)
    assert (sink.transport, sink.payload, sink.effective_port) == ("tls", "cef", 6514)
    assert yaml.safe_load(block)["sinks"]["siem"]["leef_delimiter"] == "\t"


def test_every_field_and_key_is_documented() -> None:
    text = DOC.read_text()
    assert [f for f in SyslogSinkConfig.model_fields if f"`{f}`" not in text] == []
    assert [f for f in TlsConfig.model_fields if f"`tls.{f}`" not in text] == []
    keys = [k for k, _, _ in CEF_EXTENSION if not k.endswith("Label")] + [k for k, _, _ in LEEF_ATTRIBUTES]
    assert [k for k in keys if f"`{k}`" not in text] == []
    assert [p for p, _ in SD_PARAMS if f"| `{p}` |" not in text] == []


def test_example_messages_are_real(events: list[dict[str, Any]]) -> None:
    shown = re.findall(r"```\n(<\d+>.*?)\n```", DOC.read_text(), re.S)
    made = []
    for doc, payload, fmt in ((events[-1], "cef", "rfc5424"), (events[0], "leef", "rfc3164")):
        config = SyslogSinkConfig.model_validate(
            {"type": "syslog", "host": "x", "payload": payload, "format": fmt, "leef_delimiter": "^"}
        )
        made.append(SyslogEncoder(config, hostname="h", procid="4242").encode(doc).message.decode())
    assert shown == made


def test_fixture_documents_are_valid_ecs(events: list[dict[str, Any]]) -> None:
    assert [p for d in events for p in validate(d)] == []
