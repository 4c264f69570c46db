"""Behaviour tier: a replayed scenario for every built-in rule.

Each ``tests/fixtures/detect/scenarios/<rule>/`` holds an attack and its benign twin in the replay
formats (state snapshots, config versions, wireguard-go logs, context NDJSON, NetFlow pcaps — recorded
from the lab or written by ``wgsiem simulate``; see that folder's README). Both go through the real
``wgsiem replay DIR --config CONFIG -o FILE`` — the click command itself, run in this process (the
same code path as the shell command, without an interpreter start per run) — with enrichment and the
``detect`` transform configured as a gateway would run them. The attack must raise the rule's alert
about the right entity; the twin must raise none of that rule.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from tests.enrich.geo_mmdb import write_asn, write_city
from tests.support.ecs import validate
from wgsiem.cli.main import cli
from wgsiem.detect import BUILTIN_RULES, load_rules

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "detect" / "scenarios"


@cache
def builtin_rule_names() -> list[str]:
    return sorted(r.name for r in load_rules([BUILTIN_RULES]))


def scenario_dirs() -> list[str]:
    return sorted(p.parent.name for p in SCENARIOS.glob("*/scenario.json"))


@pytest.fixture(scope="module")
def test_geo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The test GeoIP databases (documentation ranges placed in NL, DE, KP, JP, …)."""
    d = tmp_path_factory.mktemp("geo")
    return write_city(d / "city.mmdb"), write_asn(d / "asn.mmdb")


def _config(d: Path, part: str, spec: dict[str, Any], geo: tuple[Path, Path], out: Path) -> Path:
    transforms: dict[str, Any] = {}
    if spec["enrich"] == "simulation":
        inputs = d / part / "inputs"
        transforms["geo"] = {
            "type": "enrich_geo",
            "city_db_path": str(inputs / "geo" / "sim-city.mmdb"),
            "asn_db_path": str(inputs / "geo" / "sim-asn.mmdb"),
            "fallback": "none",
        }
        transforms["identity"] = {"type": "enrich_identity", "inventory_path": str(inputs / "identity.csv")}
        transforms["assets"] = {"type": "enrich_assets", "inventory_path": str(inputs / "assets.yaml")}
    elif spec["enrich"] == "test_geo":
        transforms["geo"] = {
            "type": "enrich_geo",
            "city_db_path": str(geo[0]),
            "asn_db_path": str(geo[1]),
            "fallback": "none",
        }
    elif spec["enrich"] == "assets":
        transforms["assets"] = {"type": "enrich_assets", "inventory_path": str(d / "assets.yaml")}
    transforms["detect"] = {"type": "detect", "detector_options": spec["detector_options"]}
    config: dict[str, Any] = {"hostname": spec["hostname"]}
    # source settings a scenario needs, e.g. a drift timer scaled to a time-compressed lab capture
    if spec.get("sources"):
        config["sources"] = {name: {"type": name, **opts} for name, opts in spec["sources"].items()}
    config["transforms"] = transforms
    path = out / f"{part}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def replay(
    d: Path, part: str, spec: dict[str, Any], geo: tuple[Path, Path], out: Path
) -> list[dict[str, Any]]:
    """``wgsiem replay <part> --config <cfg> -o <file> --state-dir <dir> -q``; the documents written."""
    config = _config(d, part, spec, geo, out)
    target = d / part / "telemetry" if spec["enrich"] == "simulation" else d / part
    ndjson = out / f"{part}.ndjson"
    args = ["replay", str(target), "--config", str(config), "-o", str(ndjson)]
    res = CliRunner().invoke(cli, [*args, "--state-dir", str(out / f"{part}-state"), "-q"])
    assert res.exit_code == 0, (res.output, res.exception)
    return [orjson.loads(line) for line in ndjson.read_bytes().splitlines()]


def alerts_of(docs: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if d["event"].get("dataset") == "wireguard.detect" and d["wireguard"]["alert"]["rule_name"] == rule
    ]


def test_every_builtin_rule_has_a_replayed_scenario() -> None:
    assert scenario_dirs() == builtin_rule_names()


@pytest.mark.parametrize("rule", scenario_dirs())
def test_scenario_alerts_and_its_benign_twin_does_not(
    rule: str, tmp_path: Path, test_geo: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")  # wireguard-go log lines carry the lab host's local (UTC) time
    d = SCENARIOS / rule
    spec = json.loads((d / "scenario.json").read_text())
    assert spec["rule"] == rule

    attack = alerts_of(replay(d, "attack", spec, test_geo, tmp_path), rule)
    want = spec["entity"]
    entities = [a["wireguard"]["alert"]["entity"] for a in attack]
    assert want in entities, f"{rule}: no alert about {want}; alerts about {entities}"
    for a in attack:
        validate(a)

    benign = alerts_of(replay(d, "benign", spec, test_geo, tmp_path), rule)
    assert benign == [], f"{rule}: the benign twin raised {[a['event']['reason'] for a in benign]}"


def test_the_shell_command_raises_the_same_alerts(
    tmp_path: Path, test_geo: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once as a process (``python -m wgsiem replay …``): the same alerts, ids included, as the
    in-process runs above (alert ids are a function of rule, entity and evidence)."""
    monkeypatch.setenv("TZ", "UTC")
    rule = "wireguard_handshake_flood"
    d = SCENARIOS / rule
    spec = json.loads((d / "scenario.json").read_text())
    config = _config(d, "attack", spec, test_geo, tmp_path)
    out = tmp_path / "shell.ndjson"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "wgsiem",
            "replay",
            str(d / "attack"),
            "--config",
            str(config),
            "-o",
            str(out),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": "UTC", "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert res.returncode == 0, res.stderr
    shell = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    in_process = replay(d, "attack", spec, test_geo, tmp_path)

    def ids(docs: list[dict[str, Any]]) -> list[str]:
        return sorted(a["event"]["id"] for a in docs if a["event"].get("dataset") == "wireguard.detect")

    assert ids(shell) == ids(in_process) != []


EDGE_CASES = [
    # a peer added and used between two wg_state polls gives peer-added + session-started and no
    # handshake event: the correlation's base rule takes session-started as use too
    pytest.param(
        "wireguard_new_peer_used", "attack_same_poll", id="new_peer_used-added-and-used-within-one-poll"
    ),
    # a running interface drifting from an unchanged file: replay runs config_watch's drift timer in
    # event time after each record, as the live loop does every drift_check_interval_secs
    pytest.param(
        "wireguard_config_drift", "attack_no_file_edit", id="config_drift-without-a-later-file-edit"
    ),
]


@pytest.mark.parametrize(("rule", "part"), EDGE_CASES)
def test_edge_case_capture(
    rule: str, part: str, tmp_path: Path, test_geo: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real captures of the harder shapes of an attack (each scenario's README says what it shows)."""
    monkeypatch.setenv("TZ", "UTC")
    d = SCENARIOS / rule
    spec = json.loads((d / "scenario.json").read_text())
    want = json.loads((d / f"{part}.json").read_text())["entity"]
    got = alerts_of(replay(d, part, spec, test_geo, tmp_path), rule)
    assert want in [a["wireguard"]["alert"]["entity"] for a in got]


_SECRET = re.compile(
    rb"(?im)^\s*(?:PrivateKey|PresharedKey)\s*=\s*(?!fp:)\S+"  # a config key not written as a fingerprint
)


def test_scenarios_hold_no_key_material() -> None:
    """Captures store fingerprints only: no private or preshared key in a config version, and the
    snapshots' private-key and preshared-key columns are ``fp:…`` or ``(none)``."""
    offenders = []
    for f in SCENARIOS.rglob("*"):
        if not f.is_file():
            continue
        data = f.read_bytes()
        if f.suffix == ".conf" and _SECRET.search(data):
            offenders.append(str(f))
        if f.suffix == ".dump":
            for line in data.decode().splitlines():
                cols = line.split("\t")
                secret = cols[1] if len(cols) == 5 else cols[2] if len(cols) == 9 else None
                if secret is not None and secret != "(none)" and not secret.startswith("fp:"):
                    offenders.append(f"{f}: {line[:40]}")
    assert offenders == []
