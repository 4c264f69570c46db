"""Every YAML example in the webhook and outbox docs is a valid wgsiem configuration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wgsiem.config.loader import load_config_text
from wgsiem.sinks.webhook.config import WebhookSinkConfig

DOCS = Path(__file__).resolve().parents[3] / "docs" / "sinks"
BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


@pytest.mark.parametrize("page", ["webhook.md", "outbox.md"])
def test_doc_examples_parse(page: str) -> None:
    blocks = BLOCK.findall((DOCS / page).read_text())
    assert blocks
    for text in blocks:
        cfg = load_config_text(text, f"{page}")
        assert all(isinstance(s, WebhookSinkConfig) for s in cfg.sinks.values())
        for s in cfg.sinks.values():
            assert "4f1c0d2e9a7b6c5d" not in repr(s) and "4f1c0d2e9a7b6c5d" not in str(s.model_dump())
