"""The detect stage in the real pipeline on real WireGuard (the lab): wg_state → enrich_geo →
enrich_assets → detect. Three attacks each raise their alert within two poll intervals of event time:

* a rogue peer added with ``wg set`` on a gateway the inventory marks production;
* a burst 10× above the peer's learned baseline — the baseline is **pre-seeded** in the engine's state
  file (as if learned over past weeks) to keep the test short;
* a roam of a client from the Netherlands (203.0.113.0/24 in the test GeoIP database) to North Korea
  (192.0.2.0/24): a new country and impossible travel.

"Within two poll intervals" is checked on event time (the alert's ``@timestamp`` against the wall time
at which the attack started), so a slow shared machine delays the test, not the verdict.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.enrich.geo_mmdb import context, write_asn, write_city
from tests.support.ecs import validate
from wgsiem.detect import BUILTIN_RULES, DetectConfig, DetectionEngine, load_rules
from wgsiem.detect.alert import event_time
from wgsiem.detect.lifecycle import AlertStore
from wgsiem.enrich.enrich_assets.config import EnrichAssetsConfig
from wgsiem.enrich.enrich_assets.transform import EnrichAssets
from wgsiem.enrich.enrich_geo.config import EnrichGeoConfig
from wgsiem.enrich.enrich_geo.transform import EnrichGeo
from wgsiem.event import Envelope
from wgsiem.lab.runtime import Lab
from wgsiem.pipeline.runtime import Pipeline
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.source import WgStateSource

from .seed import seed_baseline

pytestmark = pytest.mark.component

POLL = 1.0
INVENTORY = """\
assets:
  - hostname: gw-test
    name: vpn-gateway
    criticality: very-high
    environment: production
"""


class ListSink:
    component_id = "collect"

    def __init__(self, registry: TelemetryRegistry) -> None:
        self.telemetry = registry.register("collect", "sink", "test")
        self.docs: list[dict[str, Any]] = []

    async def write(self, batch: list[Envelope]) -> None:
        self.docs.extend(e.data for e in batch)
        self.telemetry.sent += len(batch)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def health_check(self) -> None:
        return None

    def alerts(self, rule: str) -> list[dict[str, Any]]:
        return [
            d
            for d in self.docs
            if d["event"].get("kind") == "alert" and d["wireguard"]["alert"]["rule_name"] == rule
        ]


async def _until(cond: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := cond()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)
    return got


def test_lab_attacks_raise_their_alerts(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=2)
    (tmp_path / "assets.yaml").write_text(INVENTORY)
    registry = TelemetryRegistry()
    peers = PeerDirectory()
    key1 = lab.client_public_key(1)
    rules = load_rules([BUILTIN_RULES])
    spike = next(r for r in rules if r.name == "wireguard_traffic_spike")
    seed_baseline(tmp_path, spike.id, key1, 20_000.0)

    def ctx(tid: str, kind: str) -> Any:
        c = context(tmp_path, tid, kind)
        c.telemetry = registry.register(tid, "transform", kind)
        c.peers = peers
        return c

    geo = EnrichGeo(
        "geo",
        EnrichGeoConfig(
            city_db_path=str(write_city(tmp_path / "city.mmdb")),
            asn_db_path=str(write_asn(tmp_path / "asn.mmdb")),
        ),
        ctx("geo", "enrich_geo"),
    )
    assets = EnrichAssets(
        "assets",
        EnrichAssetsConfig(inventory_path=str(tmp_path / "assets.yaml")),
        ctx("assets", "enrich_assets"),
    )
    detect = DetectionEngine(
        "detect",
        DetectConfig(
            detector_options={
                "wireguard_unexpected_geography": {"learning_days": 0},
                "wireguard_traffic_spike": {"min_bytes": 200_000},
            }
        ),
        ctx("detect", "detect"),
    )
    source = WgStateSource(
        "wg",
        WgStateSourceConfig(
            interfaces=[lab.gateway_interface], poll_interval_secs=POLL, transfer_interval_secs=POLL
        ),
        hostname="gw-test",
        state_dir=tmp_path,
        telemetry=registry.register("wg", "source", "wg_state"),
        peers=peers,
    )
    sink = ListSink(registry)
    pipeline = Pipeline(
        [source],
        [("geo", geo), ("assets", assets), ("detect", detect)],
        [sink],
        registry,
        batch_max_wait_secs=0.1,
    )
    started: dict[str, float] = {}

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(pipeline.run(stop))
        try:
            await _until(lambda: [d for d in sink.docs if d["event"]["action"] == "peer-added"], "the peers")
            await asyncio.to_thread(lab.connect, 1)
            await asyncio.to_thread(lab.connect, 2)
            await _until(
                lambda: len([d for d in sink.docs if d["event"]["action"] == "session-started"]) == 2,
                "sessions",
            )
            # 1. a rogue peer, live
            rogue = base64.b64encode(os.urandom(32)).decode()
            started["rogue"] = time.time()
            await asyncio.to_thread(
                lab.wg,
                lab.gateway_namespace,
                "set",
                lab.gateway_interface,
                "peer",
                rogue,
                "allowed-ips",
                "10.222.0.99/32",
            )
            await _until(lambda: sink.alerts("wireguard_unapproved_config_change"), "the rogue-peer alert")
            # 2. a burst: 1 MB against a 20 kB baseline
            started["burst"] = time.time()
            await asyncio.to_thread(lab.send, 1, 1_000_000)
            await _until(lambda: sink.alerts("wireguard_traffic_spike"), "the traffic-spike alert")
            # 3. roam to another country
            started["roam"] = time.time()
            await asyncio.to_thread(lab.roam, 2)
            await _until(lambda: sink.alerts("wireguard_unexpected_geography"), "the geography alert")
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            detect.close()

    asyncio.run(scenario())

    (rogue_alert,) = sink.alerts("wireguard_unapproved_config_change")
    assert rogue_alert["event"]["severity"] == 73
    assert rogue_alert["wireguard"]["alert"]["entity"]["field"] == "wireguard.peer.public_key"
    assert rogue_alert["wireguard"]["alert"]["details"]["gateway"] == "gw-test"

    spikes = sink.alerts("wireguard_traffic_spike")
    assert spikes[0]["wireguard"]["alert"]["entity"]["value"] == key1
    assert spikes[0]["wireguard"]["alert"]["details"]["ratio"] >= 10

    geo_alerts = sink.alerts("wireguard_unexpected_geography")
    assert len(geo_alerts) == 1, [
        (a["event"]["reason"], a["wireguard"]["alert"]["entity"], a["@timestamp"]) for a in geo_alerts
    ]
    (geo_alert,) = geo_alerts
    reason = geo_alert["event"]["reason"]
    assert "first connection from country KP (known: NL)" in reason and "impossible travel" in reason
    assert geo_alert["wireguard"]["alert"]["entity"]["value"] == lab.client_public_key(2)

    for name, alert in (("rogue", rogue_alert), ("burst", spikes[0]), ("roam", geo_alert)):
        at = event_time(alert)
        assert at is not None and at - started[name] <= 2 * POLL, (name, at - started[name])

    # the alerts are in the lifecycle file, valid ECS, and no secret went anywhere
    store = AlertStore(tmp_path / "alerts.db")
    recorded = {r.rule_name for r in store.list()}
    store.close()
    assert {
        "wireguard_unapproved_config_change",
        "wireguard_traffic_spike",
        "wireguard_unexpected_geography",
    } <= recorded
    alerts = [d for d in sink.docs if d["event"].get("kind") == "alert"]
    assert [f"{d['event']['action']}: {p}" for d in alerts for p in validate(d)] == []
    blob = orjson.dumps(sink.docs).decode() + (tmp_path / "detect" / "detect.json").read_text()
    for secret in lab.secrets():
        assert secret not in blob
    assert registry.get("detect").snapshot()["errors"] == {}
    capture = os.environ.get("WGSIEM_CAPTURE_DETECT_LAB")
    if capture:  # how tests/fixtures/detect/lab_attacks.ndjson was made (see its README)
        events = [d for d in sink.docs if d["event"].get("kind") != "alert"]
        Path(capture).write_text("".join(json.dumps(d, sort_keys=True) + "\n" for d in events))
        Path(capture).with_suffix(".expected.json").write_text(
            json.dumps(
                {"peer": key1, "alerts": sorted((a["event"]["action"], a["event"]["id"]) for a in alerts)},
                indent=1,
            )
        )
