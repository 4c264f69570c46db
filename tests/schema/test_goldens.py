"""Golden documents: the mapping of every real example equals its golden, for every action and schema;
every source's action catalogue is covered; the ECS inputs are valid ECS."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import orjson
import pytest

from tests.schema.goldens import GOLDENS, examples, golden, ids
from tests.support.ecs import validate
from wgsiem.schema import SCHEMAS, map_document

CASES = examples()
ROOT = Path(__file__).resolve().parents[2]

CATALOGUES = {
    "wg_state": "wgsiem.sources.wg_state.normalize",
    "kernel_log": "wgsiem.sources.kernel_log.normalize",
    "wggo_log": "wgsiem.sources.wggo_log.catalog",
    "config_watch": "wgsiem.sources.config_watch.normalize",
    "host": "wgsiem.sources.host.normalize",
}
NO_REAL_EXAMPLE = {("wggo_log", "daemon-exited")}
"""wgsiem's own event when a wireguard-go it started dies (command mode): no log line or capture
holds one; it maps by family like every action (process → Base Event / no CIM model)."""


@pytest.mark.parametrize(("source", "action"), CASES, ids=ids(CASES))
@pytest.mark.parametrize("schema", SCHEMAS)
def test_mapping_equals_golden(schema: str, source: str, action: str) -> None:
    ecs = golden("ecs", source, action)
    assert map_document(ecs, schema) == golden(schema, source, action)  # type: ignore[arg-type]


@pytest.mark.parametrize(("source", "action"), CASES, ids=ids(CASES))
def test_input_is_the_action_and_valid_ecs(source: str, action: str) -> None:
    doc = golden("ecs", source, action)
    assert doc["event"]["action"] == action
    assert validate(doc) == []


def test_every_golden_file_has_its_ecs_input() -> None:
    for schema in SCHEMAS:
        have = sorted((p.parent.name, p.stem) for p in (GOLDENS / schema).glob("*/*.json"))
        assert have == CASES, schema


@pytest.mark.parametrize("source", sorted(CATALOGUES))
def test_every_action_of_the_source_catalogue_has_goldens(source: str) -> None:
    actions = set(importlib.import_module(CATALOGUES[source]).ACTIONS)
    covered = {a for s, a in CASES if s == source}
    missing = {a for a in actions - covered if (source, a) not in NO_REAL_EXAMPLE}
    assert missing == set()
    assert covered <= actions


def test_every_documented_action_has_goldens() -> None:
    """Sources without an ACTIONS catalogue: every action their docs list has an example."""
    for source in ("netflow", "context"):
        text = (ROOT / "docs" / "sources" / f"{source}.md").read_text()
        documented = set(re.findall(r"^\| `([a-z][a-z-]+)` \| (?:\*\*)?(?:event|alert|state)", text, re.M))
        documented |= set(re.findall(r"One action: \*\*`([a-z-]+)`\*\*", text))
        covered = {a for s, a in CASES if s == source}
        assert documented, source
        assert documented <= covered, source


def test_goldens_are_what_the_generator_writes() -> None:
    """The goldens are regenerated, never hand-edited: ``gen_schema_goldens.py --check`` agrees."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_schema_goldens.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_goldens_are_json_objects_without_nan() -> None:
    for path in GOLDENS.glob("*/*/*.json"):
        assert isinstance(orjson.loads(path.read_bytes()), dict), path
