"""Portable Sigma export and the conversions through the pySigma backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from wgsiem.detect.export import TARGETS, ConvertedRule, convert_rules, export_sigma, processing_pipeline
from wgsiem.detect.rule import BUILTIN_RULES, load_rules
from wgsiem.errors import WgsiemError

RULES = load_rules([BUILTIN_RULES])
STATELESS = {r.name for r in RULES if r.kind == "sigma"}
CORRELATION = {r.name for r in RULES if r.kind == "correlation"}
DETECTORS = {r.name for r in RULES if r.kind == "detector"}
CORRELATION_TARGETS = ("splunk", "esql", "eql")  # Lucene has no aggregation


@pytest.mark.parametrize("target", TARGETS)
def test_every_stateless_rule_converts(target: str) -> None:
    skipped: list[tuple[str, str]] = []
    converted = convert_rules(target, skipped=skipped)
    names = {c.name for c in converted}
    assert names >= STATELESS
    assert not names & DETECTORS
    if target in CORRELATION_TARGETS:
        assert names >= CORRELATION
    else:
        assert {n for n, _ in skipped if "correlation" in _} == CORRELATION
    for c in converted:
        assert isinstance(c, ConvertedRule)
        assert c.query.strip()
        assert c.language == {"splunk": "spl"}.get(target, target)
        assert "wireguard" in c.query
        rule = next(r for r in RULES if r.name == c.name)
        assert (c.rule_id, c.title, c.level, c.risk_score) == (
            rule.id,
            rule.title,
            rule.level,
            rule.risk_score,
        )
        assert c.techniques == rule.techniques and c.tactics == rule.tactics


def test_splunk_query_is_restricted_to_wgsiem_data() -> None:
    (spoof,) = [c for c in convert_rules("splunk") if c.name == "wireguard_unallowed_source_ip"]
    assert spoof.query.startswith('sourcetype="wireguard:*" event.module="wireguard" ')
    assert "unallowed-source-ip" in spoof.query


def test_repeated_invalid_handshakes_convert_as_a_count_per_address() -> None:
    """The alerting invalid-handshake rule counts attempts per source address (≥ 3 in 10 min); its
    base rule leaves out lines without an address, in the SIEM as in the engine."""
    (inv,) = [c for c in convert_rules("splunk") if c.name == "wireguard_invalid_handshake"]
    assert 'event.action IN ("invalid-handshake", "invalid-mac")' in inv.query
    assert "source.ip=*" in inv.query  # lines that name no address are not counted
    assert "span=10m" in inv.query and "by _time source.ip" in inv.query and "event_count >= 3" in inv.query


def test_esql_reads_the_wireguard_data_streams() -> None:
    for c in convert_rules("esql"):
        assert c.query.startswith("from logs-wireguard.*-* ")


def test_unknown_target_is_refused() -> None:
    with pytest.raises(WgsiemError):
        convert_rules("qradar")


def test_pipeline_builds_for_every_target() -> None:
    for t in TARGETS:
        assert isinstance(processing_pipeline(t), ProcessingPipeline)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export")
    res = CliRunner().invoke(export_sigma, ["--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_portable_files_parse_and_keep_metadata_without_samples(exported: Path) -> None:
    files = sorted((exported / "sigma").glob("*.yml"))
    assert {f.stem for f in files} == STATELESS | CORRELATION
    for f in files:
        collection = SigmaCollection.from_yaml(f.read_text())
        assert collection.rules
        docs = [d for d in yaml.safe_load_all(f.read_text()) if d]
        meta = [d["wgsiem"] for d in docs if "wgsiem" in d]
        assert len(meta) == 1
        assert "samples" not in meta[0]
        assert {"risk_score", "triage", "playbook"} <= set(meta[0])
    plain = SigmaRule.from_yaml((exported / "sigma" / "wireguard_unallowed_source_ip.yml").read_text())
    assert plain.custom_attributes["wgsiem"]["playbook"] == "peer-spoofing"


def test_searches_and_kibana_rules_written(exported: Path) -> None:
    conf = (exported / "splunk" / "savedsearches.conf").read_text()
    assert conf.count("\n[wgsiem - ") + conf.startswith("[wgsiem - ") == len(STATELESS | CORRELATION)
    for lang in ("lucene", "esql", "eql"):
        rows = [
            json.loads(x) for x in (exported / "elastic" / lang / "rules.ndjson").read_text().splitlines()
        ]
        assert {r["rule_id"] for r in rows} >= {r.id for r in RULES if r.kind == "sigma"}
        for r in rows:
            assert r["language"] == lang and r["query"] and r["threat"][0]["framework"] == "MITRE ATT&CK"


def test_readme_lists_the_engine_only_detectors(exported: Path) -> None:
    readme = (exported / "README.md").read_text()
    assert "Runs only in wgsiem's engine" in readme
    for name in DETECTORS:
        assert f"`{name}`" in readme
    pipeline = yaml.safe_load((exported / "pipelines" / "wgsiem_ecs.yml").read_text())
    assert ProcessingPipeline.from_dict(pipeline).items
