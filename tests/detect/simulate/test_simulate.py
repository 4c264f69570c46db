"""The simulator: attack specs, determinism, replay formats, labels, GeoIP, no secrets."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import maxminddb
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from wgsiem.cli.simulate import simulate as simulate_cmd
from wgsiem.detect.simulate import ATTACK_CLASSES, SimulationSpec, parse_attacks, simulate
from wgsiem.errors import ConfigError
from wgsiem.replay.driver import plan_replay


def test_parse_all_then_overrides() -> None:
    expected = {**dict.fromkeys(ATTACK_CLASSES, 2), "spike": 5}
    del expected["geo"]
    assert parse_attacks("all:2,spike:5,geo:0") == expected
    assert parse_attacks("spike:3, travel:1") == {"spike": 3, "travel": 1}
    assert parse_attacks("") == {}


@pytest.mark.parametrize("bad", ["all", "spike:x", "nosuch:3", "spike:-1", ":4"])
def test_parse_rejects_with_a_fix(bad: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_attacks(bad)
    assert e.value.fix


@given(st.text(max_size=60))
def test_parse_attacks_raises_only_config_error(text: str) -> None:
    try:
        out = parse_attacks(text)
    except ConfigError:
        return
    assert all(k in ATTACK_CLASSES and v > 0 for k, v in out.items())


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "a"
    spec = SimulationSpec(peers=24, days=1.5, attacks=parse_attacks("all:1"), seed=3, learning_days=0.5)
    simulate(spec, out)
    return out


def _digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.suffix != ".mmdb" and p.name != "manifest.json"
    }


def test_same_seed_same_directory(small: Path, tmp_path: Path) -> None:
    spec = SimulationSpec(peers=24, days=1.5, attacks=parse_attacks("all:1"), seed=3, learning_days=0.5)
    simulate(spec, tmp_path / "b")
    assert _digest(tmp_path / "b") == _digest(small)


def test_other_seed_other_labels(small: Path, tmp_path: Path) -> None:
    spec = SimulationSpec(peers=24, days=1.5, attacks=parse_attacks("all:1"), seed=4, learning_days=0.5)
    simulate(spec, tmp_path / "c")
    assert (tmp_path / "c" / "labels.ndjson").read_text() != (small / "labels.ndjson").read_text()


def test_every_telemetry_file_is_claimed_by_a_replay_source(small: Path) -> None:
    plan = plan_replay([small / "telemetry"])
    assert plan.unclaimed == []
    assert set(plan.counts()) == {"wg_state", "config_watch", "kernel_log", "context", "netflow"}


def test_captures_are_keyframes_then_deltas(small: Path) -> None:
    files = sorted((small / "telemetry" / "wg_state").iterdir(), key=lambda p: float(p.name[:-5]))
    assert len(files) == 1.5 * 86400 / 60 + 1
    first = files[0].read_text().splitlines()
    assert first[0] == "# wgsiem-capture implementation wg0 kernel"
    assert files[1].read_text().startswith("# wgsiem-capture delta\n")
    assert not files[60].read_text().startswith("# wgsiem-capture delta")  # an hour later: a keyframe


def test_no_key_material_in_captures_or_configs(small: Path) -> None:
    for p in (small / "telemetry").rglob("*"):
        if p.suffix not in (".dump", ".conf"):
            continue
        text = p.read_text()
        assert "PrivateKey" not in text and "PresharedKey" not in text
        for line in text.splitlines():
            cols = line.split("\t")
            if len(cols) == 5:  # interface line: private key only as a fingerprint
                assert cols[1].startswith("fp:")
            if len(cols) == 9:  # peer line: no preshared key
                assert cols[2] == "(none)"


def test_labels_one_per_requested_attack(small: Path) -> None:
    labels = [json.loads(x) for x in (small / "labels.ndjson").read_text().splitlines()]
    attacks = [lb for lb in labels if not lb["benign"]]
    assert sorted(lb["class"] for lb in attacks) == sorted(ATTACK_CLASSES)
    start = SimulationSpec().start_epoch
    for lb in attacks:
        assert start + 0.5 * 86400 <= lb["start"] < lb["end"] <= start + 1.5 * 86400
        assert lb["entity"]
    assert len({lb["id"] for lb in labels}) == len(labels)
    manifest = json.loads((small / "manifest.json").read_text())
    assert manifest["result"]["attacks"] == dict.fromkeys(ATTACK_CLASSES, 1)
    assert manifest["result"]["shortfall"] == {}


def test_flood_lines_come_from_the_labelled_endpoint(small: Path) -> None:
    (flood,) = [
        json.loads(x) for x in (small / "labels.ndjson").read_text().splitlines() if '"handshake_flood"' in x
    ]
    ip = flood["entity"]["source_ip"]
    lines = [ln for ln in (small / "telemetry/logs/kern.log").read_text().splitlines() if ip in ln]
    assert len(lines) == flood["detail"]["lines"]
    assert all(re.search(r"Invalid (handshake initiation|MAC of handshake)", ln) for ln in lines)


def test_geoip_database_places_the_attack_country(small: Path) -> None:
    (geo,) = [
        json.loads(x) for x in (small / "labels.ndjson").read_text().splitlines() if '"class": "geo"' in x
    ]
    with maxminddb.open_database(str(small / "inputs/geo/sim-city.mmdb")) as db:
        rec = db.get(geo["entity"]["source_ip"])
    assert isinstance(rec, dict)
    assert rec["country"]["iso_code"] == geo["detail"]["country"]


def test_cli_writes_and_reports(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        simulate_cmd,
        [
            "--peers",
            "5",
            "--days",
            "0.5",
            "--attacks",
            "spoofing:1",
            "--learning-days",
            "0.1",
            "--out",
            str(tmp_path / "s"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "1 attacks" in res.output
    again = CliRunner().invoke(simulate_cmd, ["--peers", "5", "--days", "0.5", "--out", str(tmp_path / "s")])
    assert again.exit_code != 0 and "not empty" in again.output


def test_attacks_need_time_after_learning(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        simulate(SimulationSpec(peers=3, days=1, learning_days=1, attacks={"geo": 1}), tmp_path / "x")
    assert "--learning-days" in (e.value.fix or "")


# -- labels that hold by construction (session 5) ---------------------------------------------


def _timeline(peers: int, attacks: dict[str, int], days: float = 7.0) -> Any:
    import random

    from wgsiem.detect.simulate.generator import Timeline

    spec = SimulationSpec(peers=peers, days=days, attacks=attacks, poll_interval_secs=300.0)
    tl = Timeline(spec, random.Random(spec.seed))
    tl.plan_benign()
    tl.plan_sessions()
    tl.plan_attacks(list(attacks))
    return tl


def test_attacks_on_one_key_come_from_different_countries() -> None:
    """A small population reuses victims: a key attacked twice is attacked from two countries, so a
    geography or escalation label's "never seen" country was never shown by an earlier attack."""
    tl = _timeline(30, {"geo": 15, "escalation": 15, "travel": 10})
    by_key: dict[str, list[str]] = {}
    for lb in tl.labels:
        if lb["class"] in ("geo", "escalation", "travel"):
            by_key.setdefault(lb["entity"]["peer_key"], []).append(lb["detail"]["country"])
    reused = [cs for cs in by_key.values() if len(cs) > 1]
    assert reused  # 40 attacks on at most 30 victims
    for countries in reused:
        assert len(set(countries)) == len(countries), countries


def test_off_hours_victims_worked_a_day_the_gateway_saw_before_the_attack() -> None:
    tl = _timeline(120, {"off_hours": 30})
    by_key = {p.key: p for p in tl.pop.peers}
    labels = [lb for lb in tl.labels if lb["class"] == "off_hours"]
    assert labels
    for lb in labels:
        p = by_key[lb["entity"]["peer_key"]]
        worked = [
            (s, e)
            for s, e in p.sessions
            if tl.spec.start_epoch <= s and e <= lb["start"] and e - s >= 4 * 3600
        ]
        assert worked, lb["id"]


def test_scanners_send_one_or_two_probes(small: Path) -> None:
    labels = [json.loads(x) for x in (small / "labels.ndjson").read_text().splitlines()]
    scanners = [lb for lb in labels if lb["class"] == "scanner"]
    assert scanners and {lb["detail"]["probes"] for lb in scanners} <= {1, 2}
    lines = (small / "telemetry/logs/kern.log").read_text()
    for lb in scanners:
        ip = lb["entity"]["source_ip"]
        assert lines.count(f" {ip}:") + lines.count(f"[{ip}]:") >= lb["detail"]["probes"]
