"""The configuration example in docs/sources/kernel_log.md is valid; unknown keys are rejected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from wgsiem.sources.kernel_log.config import KernelLogSourceConfig

DOC = Path(__file__).resolve().parents[3] / "docs" / "sources" / "kernel_log.md"


def test_doc_example_parses() -> None:
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    cfg = KernelLogSourceConfig(**yaml.safe_load(block.group(1))["sources"]["kernel"])
    assert cfg.files == ["/var/log/kern.log"]
    assert set(yaml.safe_load(block.group(1))["sources"]["kernel"]) == set(KernelLogSourceConfig.model_fields)


def test_unknown_key_rejected() -> None:
    with pytest.raises(ValidationError):
        KernelLogSourceConfig(type="kernel_log", file="/var/log/kern.log")  # type: ignore[call-arg]
