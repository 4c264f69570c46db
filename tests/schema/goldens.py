"""The golden documents of ``tests/fixtures/schema/`` (written by ``scripts/gen_schema_goldens.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

GOLDENS = Path(__file__).resolve().parents[1] / "fixtures" / "schema"


def golden(schema: str, source: str, action: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((GOLDENS / schema / source / f"{action}.json").read_bytes())
    return doc


def examples() -> list[tuple[str, str]]:
    """Every (source, action) that has a real ECS example."""
    return sorted((p.parent.name, p.stem) for p in (GOLDENS / "ecs").glob("*/*.json"))


def ids(cases: list[tuple[str, str]]) -> list[str]:
    return [f"{s}/{a}" for s, a in cases]
