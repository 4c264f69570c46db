"""The wg_state source against real WireGuard: wireguard-go in network namespaces (the lab)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.ecs import validate
from wgsiem.lab.runtime import Lab
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.source import WgStateSource

pytestmark = pytest.mark.component

Doc = dict[str, Any]


class Harness:
    """One wg_state source watching the lab's gateway interface; collects every document it emits."""

    def __init__(self, lab: Lab, state_dir: Path, **cfg: Any) -> None:
        self.lab = lab
        self.state_dir = state_dir
        self.cfg = WgStateSourceConfig(
            interfaces=[lab.gateway_interface],
            poll_interval_secs=0.5,
            session_timeout_secs=cfg.pop("session_timeout_secs", 180.0),
            session_grace_secs=cfg.pop("session_grace_secs", 15.0),
            transfer_interval_secs=cfg.pop("transfer_interval_secs", 0.1),
            **cfg,
        )
        self.docs: list[Doc] = []
        self.source = self._new_source()

    def _new_source(self) -> WgStateSource:
        reg = TelemetryRegistry()
        return WgStateSource(
            "wg",
            self.cfg,
            hostname="gw-test",
            state_dir=self.state_dir,
            telemetry=reg.register("wg", "source", "wg_state"),
        )

    def restart(self) -> None:
        """What `wgsiem run` does on stop and start: flush + save, then a new process restores."""
        self.docs += [e.data for e in self.source.drain()]
        self.source.save_state()
        self.source = self._new_source()

    def poll(self) -> list[Doc]:
        new = [e.data for e in asyncio.run(self.source.poll_once())]
        self.docs += new
        return new

    def poll_until(
        self, pred: Callable[[list[Doc]], bool], timeout: float = 30.0, what: str = ""
    ) -> list[Doc]:
        """Poll every 0.2 s until ``pred(all docs so far)`` holds; fail with what was seen otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if pred(self.docs):
                return self.docs
            if time.monotonic() > deadline:
                seen = [
                    (d["event"]["action"], d.get("wireguard", {}).get("peer", {}).get("public_key", "")[:8])
                    for d in self.docs
                ]
                pytest.fail(f"timed out waiting for {what}; saw {seen}")
            time.sleep(0.2)

    def actions(self, action: str, peer: str | None = None) -> list[Doc]:
        return [
            d
            for d in self.docs
            if d["event"]["action"] == action
            and (peer is None or d.get("wireguard", {}).get("peer", {}).get("public_key") == peer)
        ]


def has(h: Harness, action: str, peer: str | None = None, n: int = 1) -> Callable[[list[Doc]], bool]:
    return lambda _docs: len(h.actions(action, peer)) >= n


def check_all_docs(h: Harness, lab: Lab) -> None:
    """Every document is valid ECS and carries no private or preshared key of the lab."""
    problems = [f"{d['event']['action']}: {p}" for d in h.docs for p in validate(d)]
    assert problems == []
    blob = orjson.dumps(h.docs).decode()
    for secret in lab.secrets():
        assert secret not in blob
    state = (
        (h.state_dir / "wg_state" / "wg.json").read_text()
        if (h.state_dir / "wg_state" / "wg.json").exists()
        else ""
    )
    for secret in lab.secrets():
        assert secret not in state


def test_connect_transfer_idle_session_lifecycle(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=2)
    h = Harness(lab, tmp_path, session_timeout_secs=4.0, session_grace_secs=1.0)
    h.poll()  # baseline: interface and both peers, nobody connected yet
    assert len(h.actions("peer-added")) == 2 and h.actions("session-started") == []
    key1 = lab.client_public_key(1)

    lab.connect(1)
    h.poll_until(has(h, "session-started", key1), what="session-started for client 1")
    (start,) = h.actions("session-started", key1)
    assert start["source"]["ip"] == "203.0.113.11"
    assert start["source"]["nat"]["ip"] == "10.222.0.11"
    assert start["wireguard"]["peer"]["allowed_ips"] == ["10.222.0.11/32", "10.222.100.0/24"]
    assert start["observer"]["ingress"]["interface"]["name"] == lab.gateway_interface

    # X bytes → transfer deltas that sum to what wg reports
    lab.send(1, 200_000)
    peer = lab.gateway_peer(1)
    assert peer is not None
    h.poll_until(
        lambda _d: (
            sum(t["wireguard"]["transfer"]["rx_bytes"] for t in h.actions("transfer", key1)) >= peer.rx_bytes
        ),
        what="transfer deltas adding up",
    )
    lab.idle(1)
    final = lab.gateway_peer(1)
    assert final is not None
    h.poll_until(has(h, "session-ended", key1), timeout=40, what="session-ended after the timeout")
    rx = sum(t["wireguard"]["transfer"]["rx_bytes"] for t in h.actions("transfer", key1))
    tx = sum(t["wireguard"]["transfer"]["tx_bytes"] for t in h.actions("transfer", key1))
    assert (rx, tx) == (final.rx_bytes, final.tx_bytes)
    (end,) = h.actions("session-ended", key1)
    s = end["wireguard"]["session"]
    assert s["end_reason"] == "expired"
    assert s["rx_bytes"] == final.rx_bytes and s["tx_bytes"] == final.tx_bytes
    assert s["duration_secs"] >= 0
    assert s["endpoints"] == ["203.0.113.11:" + str(start["source"]["port"])]
    assert len(h.actions("session-started", key1)) == 1  # no flapping
    # keep polling well past the end: the session must not flap back
    for _ in range(5):
        h.poll()
    assert len(h.actions("session-started", key1)) == 1 and len(h.actions("session-ended", key1)) == 1
    assert all(t["wireguard"]["transfer"]["rx_bytes"] >= 0 for t in h.actions("transfer"))
    check_all_docs(h, lab)


def test_roam_remove_and_add_live(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=2)
    h = Harness(lab, tmp_path)
    h.poll()
    key1, key2 = lab.client_public_key(1), lab.client_public_key(2)
    lab.connect(1)
    h.poll_until(has(h, "session-started", key1), what="session-started")
    old = h.actions("session-started", key1)[0]["wireguard"]["peer"]["endpoint"]
    new = lab.roam(1)
    h.poll_until(has(h, "endpoint-changed", key1), what="endpoint-changed")
    (roam,) = h.actions("endpoint-changed", key1)
    assert roam["wireguard"]["change"]["endpoint"] == {"old": old, "new": new}
    assert roam["source"]["ip"] == new.rpartition(":")[0]
    assert (
        roam["wireguard"]["session"]["id"]
        == h.actions("session-started", key1)[0]["wireguard"]["session"]["id"]
    )

    lab.remove_peer(2)
    h.poll_until(has(h, "peer-removed", key2), what="peer-removed")
    i = lab.add_client()
    key3 = lab.client_public_key(i)
    h.poll_until(has(h, "peer-added", key3), what="peer-added for the live-added client")
    (added,) = h.actions("peer-added", key3)
    assert added["wireguard"]["peer"]["initial_sync"] is False
    check_all_docs(h, lab)


def test_restart_mid_session_keeps_one_start_and_records_the_end(
    make_lab: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = make_lab(clients=1)
    h = Harness(lab, tmp_path, session_timeout_secs=4.0, session_grace_secs=1.0)
    h.poll()
    key1 = lab.client_public_key(1)
    lab.connect(1)
    h.poll_until(has(h, "session-started", key1), what="session-started")
    h.restart()
    h.poll()
    h.poll()
    assert len(h.actions("session-started", key1)) == 1, "a restart must not fabricate a session start"
    assert [d["event"]["action"] for d in h.docs].count("interface-added") == 1
    lab.idle(1)
    h.poll_until(has(h, "session-ended", key1), timeout=40, what="the session end after the restart")
    sid = h.actions("session-started", key1)[0]["wireguard"]["session"]["id"]
    assert h.actions("session-ended", key1)[0]["wireguard"]["session"]["id"] == sid
    check_all_docs(h, lab)


def test_session_end_during_downtime_is_recorded(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=1)
    h = Harness(lab, tmp_path, session_timeout_secs=3.0, session_grace_secs=1.0)
    h.poll()
    key1 = lab.client_public_key(1)
    lab.connect(1)
    h.poll_until(has(h, "session-started", key1), what="session-started")
    lab.idle(1)
    h.restart()  # stopped now; the session times out while nothing runs
    saved = h.source
    deadline = time.monotonic() + 20
    while time.time() - (lab.gateway_peer(1).last_handshake_sec) <= 5.0:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert saved is h.source
    h.poll()
    (end,) = h.actions("session-ended", key1)
    assert end["wireguard"]["session"]["end_reason"] == "expired"


def test_interface_recreated_counter_reset(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=1)
    h = Harness(lab, tmp_path)
    h.poll()
    key1 = lab.client_public_key(1)
    lab.connect(1)
    lab.send(1, 50_000)
    h.poll_until(has(h, "session-started", key1), what="session-started")
    h.poll()
    lab.restart_gateway()
    h.poll_until(has(h, "counter-reset", key1), what="counter-reset after the gateway restart")
    (reset,) = h.actions("counter-reset", key1)
    c = reset["wireguard"]["change"]["counters"]
    assert c["new_rx_bytes"] < c["old_rx_bytes"]
    (end,) = h.actions("session-ended", key1)
    assert end["wireguard"]["session"]["end_reason"] == "counter-reset"
    # traffic after the restart: a new session, and deltas are never negative
    lab.connect(1)
    h.poll_until(has(h, "session-started", key1, n=2), what="a new session after the restart")
    assert all(
        t["wireguard"]["transfer"]["rx_bytes"] >= 0 and t["wireguard"]["transfer"]["tx_bytes"] >= 0
        for t in h.actions("transfer")
    )
    check_all_docs(h, lab)


def test_thousands_of_peers_none_dropped(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=0)
    keys = lab.add_bulk_peers(5000)
    h = Harness(lab, tmp_path)
    h.poll()
    added = {d["wireguard"]["peer"]["public_key"] for d in h.actions("peer-added")}
    assert added == set(keys)
    dump_keys = {
        cols[1] for cols in (ln.split("\t") for ln in lab.gateway_dump().splitlines()) if len(cols) == 9
    }
    assert added == dump_keys
