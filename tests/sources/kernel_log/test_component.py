"""Peer attribution against a real lab: the PeerDirectory is fed by a real WgStateSource polling
wireguard-go in network namespaces, and kernel lines carry the endpoints the gateway really saw.

This machine has no WireGuard kernel module, so the kernel lines themselves are rendered from the
kernel's format strings (``02_kernel_log.md``) with those real endpoints.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from tests.sources.kernel_log.helpers import make_source
from tests.support.ecs import validate
from wgsiem.lab.runtime import Lab
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.kernel_log.source import KernelLogSource
from wgsiem.sources.peer_directory import PeerDirectory
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.source import WgStateSource

pytestmark = pytest.mark.component


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def test_peer_n_attribution_with_real_wg_state(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=2)
    gw = lab.gateway_interface
    lab.connect(2)
    lab.connect(1)
    peers = PeerDirectory()
    wg = WgStateSource(
        "wg",
        WgStateSourceConfig(interfaces=[gw]),
        hostname="gw-test",
        state_dir=tmp_path / "wg",
        telemetry=TelemetryRegistry().register("wg", "source", "wg_state"),
        peers=peers,
    )
    asyncio.run(wg.poll_once())
    key0, key1 = lab.client_public_key(2), lab.client_public_key(1)
    ep0 = peers.by_key(key0, gw).endpoint  # type: ignore[union-attr]
    ep1 = peers.by_key(key1, gw).endpoint  # type: ignore[union-attr]
    assert ep0 and ep1 and ep0 != ep1
    t_before = time.time()
    new_ep0 = lab.roam(2)
    asyncio.run(wg.poll_once())
    assert peers.by_key(key0, gw).endpoint == new_ep0  # type: ignore[union-attr]
    t_after = time.time()

    lines = [
        (t_before, f"wireguard: {gw}: Receiving handshake initiation from peer 12 ({ep1})"),
        (t_before, f"wireguard: {gw}: Keypair 5 created for peer 12"),
        (t_before, f"wireguard: {gw}: Receiving handshake initiation from peer 11 ({ep0})"),  # before roaming
        (t_after, f"wireguard: {gw}: Receiving keepalive packet from peer 11 ({new_ep0})"),
        (
            t_after,
            f"wireguard: {gw}: Zeroing out all keys for peer 11 ({new_ep0}), since we haven't "
            "received a new one in 540 seconds",
        ),
        (t_after, f"wireguard: {gw}: Keypair 6 destroyed for peer 11"),
        (t_after, f"wireguard: {gw}: Keypair 7 created for peer 13"),
    ]
    log = tmp_path / "kern.log"
    log.write_text("".join(f"{stamp(t)} gw kernel: {text}\n" for t, text in lines))
    src = make_source(tmp_path / "kl", peers, replay=True, journal=False)
    docs = []
    for item in KernelLogSource.replay_read(log):
        docs += [e.data for e in src.process(item.payload, item.time)]
    got = [
        (
            d["wireguard"]["peer"]["id"],
            d["wireguard"]["peer"].get("public_key"),
            d["wireguard"]["peer"]["attribution"],
            d["wireguard"]["peer"]["attribution_confidence"],
        )
        for d in docs
    ]
    assert got == [
        (12, key1, "endpoint", "high"),
        (12, key1, "peer-map", "high"),
        (11, key0, "endpoint", "high"),  # the endpoint it had then (endpoint history)
        (11, key0, "endpoint", "high"),
        (11, key0, "endpoint", "high"),
        (11, key0, "peer-map", "high"),
        (13, None, "none", "none"),
    ]
    for d in docs:
        assert validate(d) == []
    src.save_state()
    state = (tmp_path / "kl" / "kernel_log" / "kl.json").read_bytes()
    assert orjson.loads(state)["peers"]["map"] == [
        [12, gw, key1, "endpoint", "high"],
        [11, gw, key0, "endpoint", "high"],
    ]
    blob = orjson.dumps(docs) + state
    for secret in lab.secrets():
        assert secret.encode() not in blob
