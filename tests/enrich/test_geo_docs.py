"""The docs of geo, assets and risk say what the code does: every example config is valid, the
inventory examples parse clean, the documented error messages are the ones produced, and the
registry builds each transform from the config model."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.enrich.geo_mmdb import context
from tests.support.ecs import validate
from wgsiem.config.model import Config
from wgsiem.enrich.enrich_assets.inventory import parse_inventory
from wgsiem.enrich.registry import build_transform

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "enrich"
FIXTURES = ROOT / "tests" / "fixtures" / "enrich"
PAGES = ["geo.md", "assets.md", "risk.md"]


def blocks(page: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (DOCS / page).read_text(), flags=re.S)


@pytest.mark.parametrize("page", PAGES)
def test_every_transform_config_example_is_valid(page: str) -> None:
    examples = [b for b in blocks(page, "yaml") if b.startswith("transforms:")]
    assert examples, page
    for text in examples:
        cfg = Config.model_validate(yaml.safe_load(text))
        assert cfg.transforms


def test_the_inventory_examples_parse_clean() -> None:
    (y,) = [b for b in blocks("assets.md", "yaml") if b.startswith("assets:")]
    (c,) = blocks("assets.md", "csv")
    ya, yp = parse_inventory(y, "assets.yaml")
    ca, cp = parse_inventory(c, "assets.csv")
    assert yp == [] and cp == [] and len(ya) == 3 and len(ca) == 3
    assert [a.document() for a in ca] == [a.document() for a in ya]  # the two forms say the same


def test_the_documented_inventory_errors_are_the_ones_produced(tmp_path: Path) -> None:
    (text,) = blocks("assets.md", "text")
    documented = [line for line in text.splitlines() if line]
    path = "/etc/wgsiem/assets.yaml"
    _, problems = parse_inventory((FIXTURES / "assets_bad.yaml").read_text(), path)
    produced = [p.render() for p in problems]
    for line in documented:
        assert line in produced


def test_the_documented_examples_are_cut_from_the_real_captures() -> None:
    real = json.loads((FIXTURES / "lab_session_started_enriched.json").read_text())
    assert validate(real) == []
    assert validate(json.loads((FIXTURES / "lab_interface_added_enriched.json").read_text())) == []
    (example,) = [b for b in blocks("geo.md", "json") if '"session-started"' in b]
    doc = json.loads(example)
    assert doc["source"] == real["source"] and doc["wireguard"]["geo"] == real["wireguard"]["geo"]
    risk = "{" + next(b for b in blocks("risk.md", "json") if '"factors"' in b) + "}"
    assert json.loads(risk)["wireguard"]["risk"] == real["wireguard"]["risk"]


def test_the_registry_builds_each_transform_from_the_config(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "assets.yaml", tmp_path / "assets.yaml")
    cfg = Config.model_validate(
        {
            "transforms": {
                "geo": {"type": "enrich_geo", "fallback": "none"},
                "assets": {"type": "enrich_assets", "inventory_path": str(tmp_path / "assets.yaml")},
                "risk": {"type": "score_risk"},
            }
        }
    )
    built = [
        build_transform(tid, tcfg, context(tmp_path, tid, tcfg.type)) for tid, tcfg in cfg.transforms.items()
    ]
    assert [type(t).__name__ for t in built] == ["EnrichGeo", "EnrichAssets", "ScoreRisk"]
    assert all(callable(t) and isinstance(t.status(), dict) for t in built)
