"""`wgsiem run` with the detect stage as a subprocess on a real lab, triaged with `wgsiem alerts` while
it runs: a rogue peer raises an alert that `alerts list` shows; a suppression added by the CLI is
honoured by the running engine (a second rogue peer on the suppressed entity raises nothing); ack and
close keep their history."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.behaviour.test_run_end_to_end import WGSIEM, Run, wait_for
from wgsiem.lab.runtime import Lab

pytestmark = pytest.mark.behaviour


class DetectRun(Run):
    def __init__(self, tmp: Path, lab: Lab) -> None:
        super().__init__(tmp, lab)
        self.cfg.write_text(
            f"""
state_dir: {self.state}
hostname: gw-e2e
sources:
  wg:
    type: wg_state
    interfaces: [{lab.gateway_interface}]
    poll_interval_secs: 0.5
transforms:
  detect:
    type: detect
    suppression_check_interval_secs: 0.2
    detector_options:
      wireguard_unapproved_config_change:
        production_hosts: [gw-e2e]
sinks:
  siem:
    type: ndjson
    path: {self.out}
pipeline:
  batch_max_wait_secs: 0.2
"""
        )

    def alerts(self, *args: str) -> Any:
        r = subprocess.run(
            [*WGSIEM, "alerts", *args, "--config", str(self.cfg)], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stderr
        return r.stdout


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_run_raises_and_cli_triages(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=1)
    run = DetectRun(tmp_path, lab)
    gw, ns = lab.gateway_interface, lab.gateway_namespace
    rogue1, rogue2, rogue3 = _key(), _key(), _key()
    try:
        run.start()
        wait_for(lambda: run.actions("peer-added"), 30, "the initial peers")
        lab.wg(ns, "set", gw, "peer", rogue1, "allowed-ips", "10.222.0.91/32")

        def listed() -> list[dict[str, Any]]:
            return [json.loads(x) for x in run.alerts("list", "--json").splitlines() if x.startswith("{")]

        wait_for(lambda: (tmp_path / "state" / "alerts.db").exists() and listed(), 30, "the rogue-peer alert")
        (first,) = listed()
        assert first["entity_value"] == rogue1 and first["status"] == "open"
        assert first["rule_name"] == "wireguard_unapproved_config_change"

        run.alerts("suppress", "--entity", rogue2, "--for", "1h", "--reason", "planned test peer")
        lab.wg(ns, "set", gw, "peer", rogue2, "allowed-ips", "10.222.0.92/32")
        wait_for(lambda: run.actions("peer-added", rogue2), 30, "the suppressed peer's event")
        lab.wg(ns, "set", gw, "peer", rogue3, "allowed-ips", "10.222.0.93/32")
        wait_for(lambda: len(listed()) == 2, 30, "the third peer's alert")
        assert {a["entity_value"] for a in listed()} == {rogue1, rogue3}  # rogue2 was muted

        run.alerts("ack", first["id"], "--reason", "checking", "--actor", "ana")
        run.alerts("close", first["id"], "--reason", "lab peer", "--actor", "ana")
        shown = json.loads(run.alerts("show", first["id"], "--json"))
        assert [(h["status"], h["actor"]) for h in shown["history"]] == [
            ("acknowledged", "ana"),
            ("closed", "ana"),
        ]
        assert "open" in run.alerts("list", "--status", "open")
        assert run.stop() == 0
    finally:
        run.kill()
    alerts = [d for d in run.docs() if d["event"].get("kind") == "alert"]
    assert sorted(a["wireguard"]["alert"]["entity"]["value"] for a in alerts) == sorted([rogue1, rogue3])
    assert (tmp_path / "state" / "detect" / "detect.json").exists()
