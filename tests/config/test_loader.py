"""Config loading: typed models, unknown keys rejected, every problem located with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from wgsiem.config.loader import load_config, load_config_text
from wgsiem.errors import ConfigError
from wgsiem.sinks.duckdb_store.config import DuckdbStoreConfig
from wgsiem.sinks.ndjson.config import NdjsonSinkConfig


def test_no_config_monitors_every_interface_with_defaults() -> None:
    cfg = load_config(None)
    (src,) = cfg.sources.values()
    assert src.type == "wg_state"
    assert src.interfaces == []
    assert src.session_timeout_secs == 180.0
    store = cfg.with_default_store().sinks["store"]
    assert isinstance(store, DuckdbStoreConfig)
    assert store.path == "/var/lib/wgsiem/wgsiem.duckdb"


def test_full_config_parses() -> None:
    cfg = load_config_text(
        """
state_dir: /tmp/x
sources:
  gw:
    type: wg_state
    poll_interval_secs: 2
    interfaces: [wg0]
sinks:
  out:
    type: ndjson
    path: /tmp/x/events.ndjson
    max_bytes: 1000
"""
    )
    assert cfg.sources["gw"].poll_interval_secs == 2
    assert cfg.sources["gw"].interfaces == ["wg0"]
    assert isinstance(cfg.sinks["out"], NdjsonSinkConfig)
    assert cfg.sinks["out"].max_bytes == 1000


def test_unknown_key_names_line_column_and_suggests() -> None:
    text = "sources:\n  gw:\n    type: wg_state\n    poll_intervl_secs: 2\n"
    with pytest.raises(ConfigError) as ei:
        load_config_text(text, "wgsiem.yaml")
    (p,) = ei.value.problems
    assert p.location is not None
    assert (p.location.file, p.location.line, p.location.column) == ("wgsiem.yaml", 4, 5)
    assert "sources.gw.poll_intervl_secs" in p.what
    assert p.fix is not None and "poll_interval_secs" in p.fix


@pytest.mark.parametrize(
    ("section", "body", "path", "line", "col"),
    [
        (
            "sinks",
            "    type: webhook\n    url: http://127.0.0.1:9/\n    outbox:\n      max_bytes: lots\n",
            "sinks.c.outbox.max_bytes",
            6,
            18,
        ),
        (
            "sinks",
            "    type: webhook\n    url: http://127.0.0.1:9/\n    outbox:\n      overflw: block\n",
            "sinks.c.outbox.overflw",
            6,
            7,
        ),
        ("sources", "    type: netflow\n    listen_portt: 2055\n", "sources.c.listen_portt", 4, 5),
        ("transforms", "    type: detect\n    rule_dirz: []\n", "transforms.c.rule_dirz", 4, 5),
    ],
)
def test_an_error_in_any_component_type_points_at_the_bad_key(
    section: str, body: str, path: str, line: int, col: int
) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config_text(f"{section}:\n  c:\n{body}", "c.yaml")
    (p,) = ei.value.problems
    assert f"`{path}`" in p.what
    assert p.location is not None and (p.location.line, p.location.column) == (line, col), p


def test_every_problem_is_reported_at_once() -> None:
    text = (
        "bogus: 1\nsources:\n  gw:\n    type: wg_state\n    poll_interval_secs: -3\n"
        "sinks:\n  s:\n    type: nope\n"
    )
    with pytest.raises(ConfigError) as ei:
        load_config_text(text, "c.yaml")
    rendered = ei.value.render()
    lines = {(p.location.line if p.location else None) for p in ei.value.problems}
    assert lines == {1, 5, 8}
    assert "unknown key `bogus`" in rendered
    assert "greater than 0" in rendered
    assert "ndjson, duckdb, prometheus_exporter" in rendered and "(sinks)" in rendered


def test_yaml_syntax_error_has_location() -> None:
    with pytest.raises(ConfigError) as ei:
        load_config_text("sources:\n  gw: [unclosed\n", "bad.yaml")
    assert ei.value.location is not None
    assert ei.value.location.file == "bad.yaml"
    assert ei.value.location.line == 3


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(tmp_path / "nope.yaml")
    assert "nope.yaml" in ei.value.render()
    assert "--config" in ei.value.render()


def test_example_configs_in_docs_parse() -> None:
    root = Path(__file__).resolve().parents[2]
    examples = sorted((root / "docs" / "examples").glob("*.yaml"))
    assert examples, "docs/examples/*.yaml must exist"
    for ex in examples:
        load_config(ex)
