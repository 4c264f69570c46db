"""geo → assets → risk inside the real Pipeline, on wg_state events from real WireGuard (the lab).

The lab's client endpoints are in 203.0.113.0/24 (documentation), so the test writes MaxMind-format
databases that place them: the range in the Netherlands, AS64500, and client 2's address
(203.0.113.12) a Tor exit. The inventory lists the gateway (``gw-test``) as a very-high asset.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.enrich.geo_mmdb import context, write_anonymous, write_asn, write_city
from tests.support.ecs import validate
from wgsiem.enrich.enrich_assets.config import EnrichAssetsConfig
from wgsiem.enrich.enrich_assets.transform import EnrichAssets
from wgsiem.enrich.enrich_geo.config import EnrichGeoConfig
from wgsiem.enrich.enrich_geo.transform import EnrichGeo
from wgsiem.enrich.score_risk.config import ScoreRiskConfig
from wgsiem.enrich.score_risk.transform import ScoreRisk
from wgsiem.event import Envelope
from wgsiem.lab.runtime import Lab
from wgsiem.pipeline.runtime import Pipeline
from wgsiem.pipeline.telemetry import ComponentTelemetry, TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.source import WgStateSource

pytestmark = pytest.mark.component

INVENTORY = """\
assets:
  - hostname: gw-test
    name: vpn-gateway
    owner: netops@corp.example
    criticality: very-high
    environment: production
    tags: [vpn]
"""


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

    def actions(self, action: str, endpoint_ip: str | None = None) -> list[dict[str, Any]]:
        return [
            d
            for d in self.docs
            if d["event"]["action"] == action
            and (endpoint_ip is None or d.get("source", {}).get("ip") == endpoint_ip)
        ]


async def _until(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def test_lab_sessions_are_enriched_and_scored_in_the_pipeline(
    make_lab: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = make_lab(clients=2)
    (tmp_path / "assets.yaml").write_text(INVENTORY)
    registry = TelemetryRegistry()
    peers = PeerDirectory()

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
            anonymous_ip_db_path=str(write_anonymous(tmp_path / "anon.mmdb")),
        ),
        ctx("geo", "enrich_geo"),
    )
    assets = EnrichAssets(
        "assets",
        EnrichAssetsConfig(inventory_path=str(tmp_path / "assets.yaml")),
        ctx("assets", "enrich_assets"),
    )
    risk = ScoreRisk(
        "risk",
        ScoreRiskConfig.model_validate(
            {
                "asset_criticality": {"sides": ["destination", "observer"]},
                "country": {"countries": {"NL": 0.5}},
            }
        ),
        ctx("risk", "score_risk"),
    )
    source = WgStateSource(
        "wg",
        WgStateSourceConfig(interfaces=[lab.gateway_interface], poll_interval_secs=0.3),
        hostname="gw-test",
        state_dir=tmp_path,
        telemetry=registry.register("wg", "source", "wg_state"),
        peers=peers,
    )
    sink = ListSink(registry)
    pipeline = Pipeline(
        [source],
        [("geo", geo), ("assets", assets), ("risk", risk)],
        [sink],
        registry,
        batch_max_wait_secs=0.1,
    )

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(pipeline.run(stop))
        try:
            await _until(lambda: len(sink.actions("peer-added")) == 2, "the peers")
            await asyncio.to_thread(lab.connect, 1)
            await asyncio.to_thread(lab.connect, 2)
            await _until(lambda: len(sink.actions("session-started")) == 2, "both sessions")
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    asyncio.run(scenario())

    (s1,) = sink.actions("session-started", "203.0.113.11")
    (s2,) = sink.actions("session-started", "203.0.113.12")
    for s in (s1, s2):
        assert s["source"]["geo"]["country_iso_code"] == "NL"
        assert s["source"]["geo"]["city_name"] == "Amsterdam"
        assert s["source"]["as"] == {"number": 64500, "organization": {"name": "Example Transit B.V."}}
        assert s["wireguard"]["geo"]["source"]["scope"] == "documentation"
        assert "geo" not in s["source"]["nat"]  # the tunnel address is not looked up
        assert s["wireguard"]["asset"]["observer"]["name"] == "vpn-gateway"
    assert "anonymizer" not in s1["wireguard"]["geo"]["source"]
    assert s2["wireguard"]["geo"]["source"]["anonymizer"] == {"any": True, "tor": True}
    f1 = {f["name"]: f["score"] for f in s1["wireguard"]["risk"]["factors"]}
    f2 = {f["name"]: f["score"] for f in s2["wireguard"]["risk"]["factors"]}
    assert f1 == {"asset_criticality": 24.0, "country": 10.0}  # sensitivity reads destinations only
    assert f2 == {**f1, "anonymizer": 30.0}
    assert (s1["event"]["risk_score"], s1["wireguard"]["risk"]["level"]) == (34.0, "medium")
    assert (s2["event"]["risk_score"], s2["wireguard"]["risk"]["level"]) == (64.0, "high")

    # every event went through all three transforms, none was lost, none failed
    assert all("risk_score" in d["event"] for d in sink.docs)
    assert all(d["wireguard"]["asset"]["observer"]["name"] == "vpn-gateway" for d in sink.docs)
    for tid in ("geo", "assets", "risk"):
        snap = registry.get(tid).snapshot()
        assert snap["received"] == snap["sent"] == len(sink.docs), tid
        assert snap["errors"] == {} and snap["dropped"] == {}, tid
    assert geo.status()["cache"]["hits"] > 0

    assert [f"{d['event']['action']}: {p}" for d in sink.docs for p in validate(d)] == []
    blob = orjson.dumps(sink.docs).decode()
    for secret in lab.secrets():
        assert secret not in blob
