"""`wgsiem run` end to end on a real lab: telemetry in → events in NDJSON and the store, CLI while
running, graceful stop, restart without duplicate sessions, and no secret anywhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.ecs import validate
from wgsiem.lab.runtime import Lab
from wgsiem.sinks.duckdb_store.segments import decompress_segment

pytestmark = pytest.mark.behaviour

WGSIEM = [sys.executable, "-m", "wgsiem"]


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


class Run:
    """A `wgsiem run` subprocess with its own config and state dir."""

    def __init__(self, tmp: Path, lab: Lab) -> None:
        self.state = tmp / "state"
        self.out = tmp / "events.ndjson"
        self.log = tmp / "run.log"
        self.cfg = tmp / "wgsiem.yaml"
        self.cfg.write_text(
            f"""
state_dir: {self.state}
hostname: gw-e2e
sources:
  wg:
    type: wg_state
    interfaces: [{lab.gateway_interface}]
    poll_interval_secs: 0.5
    session_timeout_secs: 4
    session_grace_secs: 1
    transfer_interval_secs: 1
sinks:
  siem:
    type: ndjson
    path: {self.out}
pipeline:
  batch_max_wait_secs: 0.2
"""
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.outputs: list[str] = []

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([*WGSIEM, "run", "--config", str(self.cfg)], stdout=log, stderr=log)
        wait_for(self.answers, 30, "wgsiem run to answer on its API")

    def answers(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
        r = subprocess.run(
            [*WGSIEM, "status", "--json", "--config", str(self.cfg)], capture_output=True, text=True
        )
        return r.returncode == 0 and json.loads(r.stdout).get("running") is True

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self.proc = None
        return rc

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def cli(self, *args: str) -> Any:
        r = subprocess.run(
            [*WGSIEM, *args, "--config", str(self.cfg)], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stderr
        self.outputs.append(r.stdout + r.stderr)
        return json.loads(r.stdout) if "--json" in args else r.stdout

    def docs(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line]

    def actions(self, action: str, peer: str | None = None) -> list[dict[str, Any]]:
        return [
            d
            for d in self.docs()
            if d["event"]["action"] == action
            and (peer is None or d["wireguard"].get("peer", {}).get("public_key") == peer)
        ]


def test_run_collects_stores_serves_and_restarts(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=2)
    run = Run(tmp_path, lab)
    key1 = lab.client_public_key(1)
    try:
        run.start()
        # events --follow sees new events while run is running
        follow = subprocess.Popen(
            [*WGSIEM, "events", "--follow", "--format", "json", "--config", str(run.cfg)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        followed: list[dict[str, Any]] = []

        def reader() -> None:
            assert follow.stdout is not None
            for line in follow.stdout:
                followed.append(json.loads(line))

        threading.Thread(target=reader, daemon=True).start()
        lab.connect(1)
        lab.send(1, 150_000)
        wait_for(lambda: run.actions("session-started", key1), 30, "session-started in the NDJSON output")

        peers = {p["public_key"]: p for p in run.cli("peers", "--json")}
        assert peers[key1]["connected"] is True
        assert peers[key1]["endpoint"].startswith("203.0.113.11:")
        assert peers[lab.client_public_key(2)]["connected"] is False
        sessions = wait_for(
            lambda: [
                s
                for s in run.cli("sessions", "--json", "--since", "1h")
                if s["peer_key"] == key1 and s["rx_bytes"] > 0
            ],
            20,
            "the open session with its bytes",
        )
        # one session, still open: a session that ended while the peer kept talking would be a flap
        assert len(sessions) == 1 and sessions[0]["end"] is None, (
            sessions,
            run.actions("session-ended", key1),
        )
        status = run.cli("status", "--json")
        comps = {c["id"]: c for c in status["components"]}
        assert comps["wg"]["sent"] > 0 and comps["siem"]["sent"] > 0 and comps["store"]["sent"] > 0
        wait_for(
            lambda: any(d["event"]["action"] == "session-started" for d in followed), 20, "events --follow"
        )
        follow.terminate()
        follow.wait(timeout=10)
        assert "session-started" in run.cli("events", "--since", "1h")

        # graceful stop: everything emitted is in both sinks
        assert run.stop() == 0
        ndjson_ids = [d["event"]["id"] for d in run.docs()]
        assert len(ndjson_ids) == len(set(ndjson_ids))
        stored = run.cli("events", "--since", "1d", "--format", "json")
        stored_ids = {json.loads(line)["event"]["id"] for line in stored.splitlines()}
        assert stored_ids == set(ndjson_ids)

        # restart mid-session: no second start; the end is recorded
        run.start()
        lab.idle(1)
        wait_for(lambda: run.actions("session-ended", key1), 40, "session-ended after the restart")
        assert len(run.actions("session-started", key1)) == 1
        (end,) = run.actions("session-ended", key1)
        assert (
            end["wireguard"]["session"]["id"]
            == run.actions("session-started", key1)[0]["wireguard"]["session"]["id"]
        )
        final = lab.gateway_peer(1)
        assert final is not None
        assert end["wireguard"]["session"]["rx_bytes"] == final.rx_bytes
        ended = wait_for(
            lambda: [
                s
                for s in run.cli("sessions", "--json", "--since", "1h")
                if s["peer_key"] == key1 and s["end"]
            ],
            20,
            "the session end in the store",
        )
        assert ended[0]["end_reason"] == "expired" and ended[0]["rx_bytes"] == final.rx_bytes
        assert run.stop() == 0
    finally:
        run.kill()

    # every document valid ECS
    problems = [f"{d['event']['action']}: {p}" for d in run.docs() for p in validate(d)]
    assert problems == []
    # no secret anywhere: NDJSON, store file, state files, logs, CLI output
    blobs = [run.out.read_bytes(), run.log.read_bytes(), *(o.encode() for o in run.outputs)]
    for path in run.state.rglob("*"):
        if path.is_file() and path.name != "fingerprint.key":
            blobs.append(path.read_bytes())
        if path.name.endswith(".ndjson.zst"):  # the store's documents, compressed
            blobs.append(decompress_segment(path.read_bytes()))
    for secret in lab.secrets():
        raw = secret.encode()
        hexed = __import__("base64").b64decode(secret).hex().encode()
        for blob in blobs:
            assert raw not in blob and hexed not in blob


def test_validate_and_bad_config_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  wg:\n    type: wg_state\n    poll_intervl_secs: 2\n")
    r = subprocess.run([*WGSIEM, "validate", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{bad}:4:5" in r.stderr and "poll_interval_secs" in r.stderr
    r = subprocess.run([*WGSIEM, "run", "--config", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "error:" in r.stderr
    assert "Traceback" not in r.stderr


def test_read_commands_without_a_running_service(tmp_path: Path) -> None:
    r = subprocess.run([*WGSIEM, "peers", "--state-dir", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "no running wgsiem and no store" in r.stderr
    assert os.environ.get("NO_SUCH") is None
