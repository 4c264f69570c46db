"""Helpers shared by the detection tests: an engine over real rules with a fixed clock."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wgsiem.detect import BUILTIN_RULES, DetectConfig, DetectionEngine, DetectionRule, load_rules
from wgsiem.enrich.base import TransformContext
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory

CLOCK = 1_764_000_000.0


def envelope(doc: dict[str, Any]) -> Envelope:
    return Envelope(copy.deepcopy(doc), EventMeta("test-source", 0))


@pytest.fixture(scope="session")
def builtin_rules() -> list[DetectionRule]:
    return load_rules([BUILTIN_RULES])


@pytest.fixture
def make_engine(tmp_path: Path) -> Callable[..., DetectionEngine]:
    def make(rules: list[DetectionRule] | None = None, **config: Any) -> DetectionEngine:
        tel = TelemetryRegistry().register("detect", "transform", "detect")
        ctx = TransformContext("gw-test", tmp_path, tel, PeerDirectory())
        return DetectionEngine("detect", DetectConfig(**config), ctx, rules=rules, clock=lambda: CLOCK)

    return make
