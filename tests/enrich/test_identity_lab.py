"""enrich_identity in the real Pipeline on the lab: wg_state fills the PeerDirectory from real
WireGuard, real traffic goes through client tunnels (``lab.send``), and flows built by the netflow
normalizer for that traffic are attributed to the right user — also after an inventory edit, live."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.ecs import validate
from wgsiem.enrich.base import TransformContext
from wgsiem.enrich.enrich_identity.config import EnrichIdentityConfig
from wgsiem.enrich.enrich_identity.transform import EnrichIdentity
from wgsiem.event import Envelope, EventMeta
from wgsiem.lab.runtime import Lab
from wgsiem.pipeline.runtime import Emit, Pipeline
from wgsiem.pipeline.telemetry import ComponentTelemetry, TelemetryRegistry
from wgsiem.sources.netflow.normalize import to_ecs
from wgsiem.sources.netflow.records import FlowRecord
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.source import WgStateSource

pytestmark = pytest.mark.component

GATEWAY_TUNNEL_IP = "10.222.0.1"


def tunnel_ip(i: int) -> str:
    return f"10.222.0.{10 + i}"


def flow_record(src: str, dst: str, nbytes: int, seq: int) -> FlowRecord:
    now = time.time()
    return FlowRecord(
        version=10, exporter="127.0.0.1", domain=1, template_id=256, export_time=now, sequence=seq,
        offset=16, src_ip=src, dst_ip=dst, src_port=40000 + seq, dst_port=9, protocol=17, ip_version=4,
        bytes=nbytes, packets=max(1, nbytes // 1000), rev_bytes=None, rev_packets=None, start=now - 1,
        end=now, tcp_flags=None, tos=None, icmp_type=None, icmp_code=None, input_if=None, output_if=None,
        direction=None, end_reason=None, interface_name=None, next_hop=None, sampling_interval=1,
    )  # fmt: skip


def flow_envelope(rec: FlowRecord, peers: PeerDirectory | None) -> Envelope:
    """What the netflow source emits; ``peers=None``: a flow it could not attribute (the directory
    was not filled yet), which identity then attributes by tunnel address."""

    def lookup(ip: str, iface: str | None) -> PeerInfo | None:
        return peers.by_tunnel_ip(ip, iface) if peers is not None else None

    doc = to_ecs(rec, hostname="gw-test", received_at=time.time(), lookup=lookup)
    return Envelope(doc, EventMeta("flows", time.time_ns()))


class QueueSource:
    """Emits what the test puts in its queue (stands in for the netflow collector)."""

    component_id = "flows"
    component_type = "netflow"

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[Envelope]] = asyncio.Queue()

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                batch = await asyncio.wait_for(self.queue.get(), 0.1)
            except TimeoutError:
                continue
            await emit(batch)


class ListSink:
    component_id = "collect"

    def __init__(self, registry: TelemetryRegistry) -> None:
        self.telemetry: ComponentTelemetry = registry.register("collect", "sink", "list")
        self.docs: list[dict[str, Any]] = []

    async def write(self, batch: list[Envelope]) -> None:
        self.docs.extend(e.data for e in batch)

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def health_check(self) -> None:
        pass

    def flows(self, src: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["event"]["action"] == "flow" and d["source"]["ip"] == src]


async def until(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def inventory(rows: list[tuple[str, str, str]]) -> str:
    out = "peers:\n"
    for key, name, dept in rows:
        out += f"  - public_key: {key}\n    name: {name}\n    email: {name}@corp.example\n"
        out += f"    department: {dept}\n"
    return out


def test_lab_flows_are_attributed_to_the_right_user_and_inventory_edits_apply_live(
    make_lab: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = make_lab(clients=2)
    k1, k2 = lab.client_public_key(1), lab.client_public_key(2)
    inv = tmp_path / "identity.yaml"
    inv.write_text(inventory([(k1, "alice", "Finance")]))  # client 2 is nobody's yet
    registry = TelemetryRegistry()
    peers = PeerDirectory()
    identity = EnrichIdentity(
        "identity",
        EnrichIdentityConfig(inventory_path=str(inv), reload_check_interval_secs=0),
        TransformContext(
            "gw-test", tmp_path, registry.register("identity", "transform", "enrich_identity"), peers
        ),
    )
    wg = WgStateSource(
        "wg",
        WgStateSourceConfig(interfaces=[lab.gateway_interface], poll_interval_secs=0.3),
        hostname="gw-test",
        state_dir=tmp_path,
        telemetry=registry.register("wg", "source", "wg_state"),
        peers=peers,
    )
    flows = QueueSource()
    sink = ListSink(registry)
    pipeline = Pipeline([wg, flows], [("identity", identity)], [sink], registry, batch_max_wait_secs=0.05)
    seq = 0

    async def traffic(i: int, attributed_by_source: bool) -> None:
        nonlocal seq
        sent = await asyncio.to_thread(lab.send, i, 4000)
        seq += 1
        env = flow_envelope(
            flow_record(tunnel_ip(i), GATEWAY_TUNNEL_IP, sent, seq), peers if attributed_by_source else None
        )
        await flows.queue.put([env])

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(pipeline.run(stop))
        try:
            await until(lambda: len(peers) == 2, "wg_state to fill the peer directory")
            await asyncio.to_thread(lab.connect, 1)
            await asyncio.to_thread(lab.connect, 2)
            await traffic(1, True)
            await traffic(1, False)
            await traffic(2, False)
            await until(lambda: len(sink.flows(tunnel_ip(2))) == 1, "the first flows")
            # the inventory is edited while running: client 2 becomes bob's, alice moves department
            inv.write_text(inventory([(k1, "alice", "Audit"), (k2, "bob", "Engineering")]))
            os.utime(inv, ns=(10**9, 10**9))
            await traffic(2, True)
            await traffic(1, False)
            await until(lambda: len(sink.flows(tunnel_ip(1))) == 3, "the flows after the edit")
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    asyncio.run(scenario())

    a1, a2, a3 = sink.flows(tunnel_ip(1))
    b1, b2 = sink.flows(tunnel_ip(2))
    assert a1["wireguard"]["peer"]["attribution"] == "tunnel-ip"  # by the netflow normalizer
    assert a2["wireguard"]["peer"]["attribution"] == "tunnel-ip"  # by enrich_identity
    for d in (a1, a2, a3):
        assert d["wireguard"]["peer"]["public_key"] == k1
        assert d["wireguard"]["peer"]["known"] is True
        assert d["user"] == {"name": "alice", "email": "alice@corp.example"}
        assert "alice" in d["related"]["user"]
    assert [d["wireguard"]["user"]["department"] for d in (a1, a2, a3)] == ["Finance", "Finance", "Audit"]
    assert b1["wireguard"]["peer"]["public_key"] == k2 and b1["wireguard"]["peer"]["known"] is False
    assert "user" not in b1
    assert b2["user"]["name"] == "bob" and b2["wireguard"]["peer"]["known"] is True
    assert identity.status()["reloads"] == 1

    # wg_state's own events (peer-added, session-started) carry the same identities
    started = {
        d["wireguard"]["peer"]["public_key"]: d
        for d in sink.docs
        if d["event"]["action"] == "session-started"
    }
    assert started[k1]["user"]["name"] == "alice"
    assert [f"{d['event']['action']}: {p}" for d in sink.docs for p in validate(d)] == []
    snap = registry.get("identity").snapshot()
    assert snap["errors"] == {} and snap["received"] == snap["sent"] == len(sink.docs)
