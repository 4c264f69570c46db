"""The issue's privacy test, end to end: real WireGuard (the lab) → wg_state + flows → enrich_identity →
apply_privacy → the real NDJSON sink and the DuckDB store. Every byte written (NDJSON files, the
DuckDB database and WAL, and every table read back through DuckDB, since DuckDB compresses strings on
disk) is scanned: no original value of a pseudonymized or masked field may appear. Then: same input +
same key → same pseudonym; a rotated key → a different pseudonym, with its key id on the event."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from tests.enrich.test_identity_lab import (
    GATEWAY_TUNNEL_IP,
    QueueSource,
    flow_envelope,
    flow_record,
    tunnel_ip,
)
from tests.support.ecs import validate
from wgsiem.enrich.apply_privacy.config import ApplyPrivacyConfig
from wgsiem.enrich.apply_privacy.transform import ApplyPrivacy
from wgsiem.enrich.base import TransformContext
from wgsiem.enrich.enrich_identity.config import EnrichIdentityConfig
from wgsiem.enrich.enrich_identity.transform import EnrichIdentity
from wgsiem.event import Envelope
from wgsiem.lab.runtime import Lab
from wgsiem.pipeline.runtime import Pipeline
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.duckdb_store.config import DuckdbStoreConfig
from wgsiem.sinks.duckdb_store.segments import decompress_segment
from wgsiem.sinks.duckdb_store.sink import DuckdbStoreSink
from wgsiem.sinks.ndjson.config import NdjsonSinkConfig
from wgsiem.sinks.ndjson.sink import NdjsonSink
from wgsiem.sources.peer_directory import PeerDirectory
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.source import WgStateSource

pytestmark = pytest.mark.component

POLICY = {
    "user.name": "pseudonymize",
    "user.email": "pseudonymize",
    "user.id": "pseudonymize",
    "user.full_name": "drop",
    "wireguard.user.device": "pseudonymize",
    "wireguard.peer.public_key": "pseudonymize",
    "source.ip": "mask",
    "source.address": "mask",
    "source.nat.ip": "mask",
    "destination.ip": "mask",
    "destination.address": "mask",
}
KEY_1 = base64.b64encode(bytes(range(32))).decode()
KEY_2 = base64.b64encode(bytes(range(100, 132))).decode()


class Tap:
    """Records, between identity and privacy, every value of a policy field: the originals."""

    __name__ = "tap"

    def __init__(self) -> None:
        self.originals: set[str] = set()

    def __call__(self, env: Envelope) -> Envelope:
        for path in POLICY:
            node: Any = env.data
            for part in path.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            for v in node if isinstance(node, list) else [node]:
                if isinstance(v, str | int) and not isinstance(v, bool):
                    self.originals.add(str(v))
        return env


def run_pipeline(lab: Lab, out: Path, keys: str, flows_for: list[int]) -> tuple[Tap, ApplyPrivacy]:
    out.mkdir()
    k1, k2 = lab.client_public_key(1), lab.client_public_key(2)
    inv = out.parent / "identity.yaml"
    inv.write_text(
        "peers:\n"
        f"  - {{public_key: {k1}, name: alice, email: alice@corp.example, id: emp-1001,"
        " full_name: Alice Archer, department: Finance, device: alice-laptop, risk: low}\n"
        f"  - {{public_key: {k2}, name: bob, email: bob@corp.example, id: emp-1002,"
        " full_name: Bob Baker, department: Engineering, device: bob-phone, risk: high}\n"
    )
    key_file = out.parent / "privacy.keys"
    key_file.write_text(keys)
    key_file.chmod(0o600)
    registry = TelemetryRegistry()
    peers = PeerDirectory()

    def ctx(tid: str, kind: str) -> TransformContext:
        return TransformContext("gw-test", out, registry.register(tid, "transform", kind), peers)

    identity = EnrichIdentity(
        "identity", EnrichIdentityConfig(inventory_path=str(inv)), ctx("identity", "enrich_identity")
    )
    tap = Tap()
    privacy = ApplyPrivacy(
        "privacy", ApplyPrivacyConfig(key_file=str(key_file), fields=POLICY), ctx("privacy", "apply_privacy")
    )
    wg = WgStateSource(
        "wg",
        WgStateSourceConfig(interfaces=[lab.gateway_interface], poll_interval_secs=0.3),
        hostname="gw-test",
        state_dir=out.parent / f"{out.name}-state",  # the source's own state is no output
        telemetry=registry.register("wg", "source", "wg_state"),
        peers=peers,
    )
    flows = QueueSource()
    ndjson = NdjsonSink.build(
        NdjsonSinkConfig(type="ndjson", path=str(out / "events.ndjson"), max_bytes=20_000, max_files=50),
        registry,
    )
    store = DuckdbStoreSink.build(DuckdbStoreConfig(type="duckdb", path=str(out / "store.duckdb")), registry)
    pipeline = Pipeline(
        [wg, flows],
        [("identity", identity), ("tap", tap), ("privacy", privacy)],
        [ndjson, store],
        registry,
        batch_max_wait_secs=0.05,
    )

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(pipeline.run(stop))
        try:
            deadline = time.monotonic() + 30
            while len(peers) < 2:
                assert time.monotonic() < deadline, "wg_state did not fill the peer directory"
                await asyncio.sleep(0.05)
            for seq, i in enumerate(flows_for):
                sent = await asyncio.to_thread(lab.send, i, 3000)
                await flows.queue.put(
                    [flow_envelope(flow_record(tunnel_ip(i), GATEWAY_TUNNEL_IP, sent, seq), peers)]
                )
            await asyncio.sleep(1.0)  # let wg_state poll the sessions the traffic started (not asserted on)
            while flows.queue.qsize():
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)

    asyncio.run(scenario())
    for tid in ("identity", "privacy"):
        assert registry.get(tid).snapshot()["errors"] == {}, tid
    assert registry.get("store").snapshot()["errors"] == {}
    return tap, privacy


def outputs(out: Path) -> dict[str, bytes]:
    """Every file the sinks wrote, and every DuckDB table's rows as text."""
    blobs = {str(p): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    # the store keeps its documents in zstd segments: scan them decompressed
    for p in sorted(out.rglob("*.ndjson.zst")):
        blobs[f"{p}:ndjson"] = decompress_segment(p.read_bytes())
    con = duckdb.connect(str(out / "store.duckdb"), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        for t in tables:
            rows = con.execute(f'SELECT * FROM "{t}"').fetchall()
            blobs[f"duckdb:{t}"] = repr(rows).encode()
    finally:
        con.close()
    return blobs


def documents(out: Path) -> list[dict[str, Any]]:
    docs = []
    for p in sorted(out.glob("events.ndjson*")):
        docs += [orjson.loads(line) for line in p.read_bytes().splitlines() if line]
    return docs


def test_no_original_appears_in_any_output_and_pseudonyms_follow_the_key(
    make_lab: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = make_lab(clients=2)
    k1 = lab.client_public_key(1)
    lab.connect(1)
    lab.connect(2)
    tap, privacy = run_pipeline(lab, tmp_path / "run1", f"k1 {KEY_1}\n", [1, 2, 1])

    expected = {"alice", "alice@corp.example", "emp-1001", "Alice Archer", "alice-laptop", k1}
    expected |= {"203.0.113.11", "203.0.113.12", tunnel_ip(1), tunnel_ip(2), GATEWAY_TUNNEL_IP}
    assert expected <= tap.originals | {"Alice Archer"}  # full_name is dropped: the tap sees it too
    assert "Alice Archer" in tap.originals
    blobs = outputs(tmp_path / "run1")
    assert any(name.endswith(".ndjson") for name in blobs) and "duckdb:events" in blobs
    assert any(name.endswith(":ndjson") for name in blobs)
    leaks = [(o, name) for o in sorted(tap.originals) for name, blob in blobs.items() if o.encode() in blob]
    assert leaks == [], [
        (o, n, blobs[n][max(0, blobs[n].find(o.encode()) - 300) : blobs[n].find(o.encode()) + 100])
        for o, n in leaks[:3]
    ]

    docs = documents(tmp_path / "run1")
    wg_events = [d for d in docs if d["event"]["action"] in ("peer-added", "session-started", "transfer")]
    assert {d["event"]["action"] for d in wg_events} >= {"peer-added", "session-started"}
    for d in wg_events:  # real wg_state events: endpoint masked, tunnel address masked, user pseudonymized
        assert d["source"]["ip"] == "203.0.113.0"
        assert d["source"]["nat"]["ip"] == "10.222.0.0"
        assert d["user"]["name"].startswith("ps:k1:") and "full_name" not in d["user"]
    assert [f"{d['event']['action']}: {p}" for d in docs for p in validate(d)] == []
    flows1 = [d for d in docs if d["event"]["action"] == "flow"]
    assert len(flows1) == 3
    alice1 = flows1[0]["user"]["name"]
    assert alice1.startswith("ps:k1:") and flows1[2]["user"]["name"] == alice1  # stable within a run
    assert flows1[1]["user"]["name"] != alice1
    assert flows1[0]["source"]["ip"] == "10.222.0.0" and flows1[0]["destination"]["ip"] == "10.222.0.0"
    assert flows1[0]["wireguard"]["privacy"]["key_id"] == "k1"
    assert flows1[0]["related"]["user"] == [
        flows1[0]["user"]["name"],
        flows1[0]["user"]["email"],
        flows1[0]["user"]["id"],
    ]
    assert privacy.status()["key_id"] == "k1"

    # same input + same key → same pseudonym (a new pipeline, a new process's worth of state)
    run_pipeline(lab, tmp_path / "run2", f"k1 {KEY_1}\n", [1])
    (again,) = [d for d in documents(tmp_path / "run2") if d["event"]["action"] == "flow"]
    assert again["user"]["name"] == alice1
    assert again["wireguard"]["peer"]["public_key"] == flows1[0]["wireguard"]["peer"]["public_key"]

    # rotated key → a different pseudonym, and the event names the key
    run_pipeline(lab, tmp_path / "run3", f"k2 {KEY_2}\nk1 {KEY_1}\n", [1])
    (rotated,) = [d for d in documents(tmp_path / "run3") if d["event"]["action"] == "flow"]
    assert rotated["user"]["name"].startswith("ps:k2:") and rotated["user"]["name"][6:] != alice1[6:]
    assert rotated["wireguard"]["privacy"]["key_id"] == "k2"
    for run in ("run2", "run3"):
        blobs = outputs(tmp_path / run)
        for secret in (KEY_1, KEY_2, *lab.secrets()):
            assert not any(secret.encode() in b for b in blobs.values())
