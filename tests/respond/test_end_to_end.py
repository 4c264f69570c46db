"""End to end on the lab: ``wgsiem run`` with the wireguard-go log source, the detect transform and
the respond sink. A real flood of invalid handshake initiations from client 1's address raises the
``wireguard_handshake_flood`` alert, whose tier-1 playbook (``handshake-abuse``) blocks the address
in the gateway's nftables — automatically, no human involved — and every step is audited and
emitted as a ``wireguard.respond`` event."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.support.ecs import validate
from wgsiem.lab.runtime import Lab
from wgsiem.respond.audit import verify

from .lab_support import blocked_elements, drop_table, flood_invalid_initiations, outer_ip, wait_for

pytestmark = [
    pytest.mark.component,
    pytest.mark.skipif(
        importlib.util.find_spec("wgsiem.respond.actions.block") is None,
        reason="the real block action is not in this tree",
    ),
]


def test_flood_is_blocked_by_the_running_service(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=1)
    out = tmp_path / "events.ndjson"
    cfg = tmp_path / "wgsiem.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "hostname": "gw-test",
                "sources": {
                    "gwlog": {
                        "type": "wggo_log",
                        "path": str(lab.log_path(lab.gateway_interface)),
                        "from_start": True,
                        "poll_interval_secs": 0.1,
                    }
                },
                "transforms": {"detect": {"type": "detect"}},
                "sinks": {
                    "out": {"type": "ndjson", "path": str(out)},
                    "respond": {
                        "type": "respond",
                        "executor": {"type": "local", "netns": lab.gateway_namespace},
                        "poll_interval_secs": 0.1,
                    },
                },
                "pipeline": {"batch_max_wait_secs": 0.1},
            }
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "wgsiem.cli.main", "run", "-c", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for(
            lambda: (tmp_path / "state" / "api.sock").exists() or proc.poll() is not None, 60, "wgsiem run"
        )
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        flood_invalid_initiations(lab, 1, n=15)
        wait_for(lambda: outer_ip(1) in blocked_elements(lab), 60, "the flood's address in the block set")
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drop_table(lab)
    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    alerts = [
        d
        for d in docs
        if d["event"].get("kind") == "alert" and d["rule"]["name"].startswith("WireGuard handshake flood")
    ]
    assert alerts and alerts[0]["source"]["ip"] == outer_ip(1)
    resp = [d for d in docs if d["event"]["dataset"] == "wireguard.respond"]
    actions = [d["event"]["action"] for d in resp]
    assert "response-action-succeeded" in actions, actions
    for d in resp:
        assert validate(d) == [], d
    audit = tmp_path / "state" / "audit.jsonl"
    assert verify(audit).ok
    rec = [json.loads(x) for x in audit.read_text().splitlines()]
    done = [r for r in rec if r.get("event") == "action-succeeded"]
    assert done[0]["action"] == "block_endpoint" and done[0]["target"]["endpoint_ip"] == outer_ip(1)
    assert done[0]["actor"] == "policy"
