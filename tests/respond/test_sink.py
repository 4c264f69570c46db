"""The ``respond`` sink in the real pipeline: alerts in → actions, and every audit record out again
as a valid ECS event (dataset ``wireguard.respond``) from ``<sink id>.events``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ecs import validate
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.runtime import Pipeline
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.service import sink_sources
from wgsiem.sinks.registry import SinkContext, build_sink
from wgsiem.sources.peer_directory import PeerDirectory

from . import fakes
from .harness import fake_state, sink_config


@pytest.fixture(autouse=True)
def _fakes() -> Iterator[None]:
    fakes.install()
    yield
    fakes.uninstall()


class OneShot:
    component_id = "alerts"

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    async def run(self, emit: Any, stop: asyncio.Event) -> None:
        await emit([Envelope(d, EventMeta(self.component_id, time.time_ns())) for d in self.docs])
        await stop.wait()


class Capture:
    component_id = "capture"

    def __init__(self, registry: TelemetryRegistry) -> None:
        self.telemetry = registry.register("capture", "sink", "capture")
        self.docs: list[dict[str, Any]] = []

    async def write(self, batch: list[Envelope]) -> None:
        self.docs.extend(e.data for e in batch)

    async def flush(self) -> None: ...

    async def close(self) -> None: ...

    async def health_check(self) -> None: ...


def test_alert_to_action_and_events(tmp_path: Path) -> None:
    registry = TelemetryRegistry()
    cfg = sink_config(tmp_path)
    ctx = SinkContext(registry, "respond", "gw-test", tmp_path / "state", PeerDirectory())
    (tmp_path / "state").mkdir()
    sink = build_sink(cfg, ctx)
    cap = Capture(registry)
    not_alert = {"event": {"kind": "event", "id": "e1"}}
    sources = [OneShot([not_alert, fakes.alert()]), *sink_sources([sink])]
    assert sources[1].component_id == "respond.events"

    async def main() -> None:
        stop = asyncio.Event()
        pipe = Pipeline(sources, [], [sink, cap], registry, batch_max_wait_secs=0.05)
        task = asyncio.create_task(pipe.run(stop))
        deadline = time.monotonic() + 20
        while not any(d.get("event", {}).get("action") == "response-run-done" for d in cap.docs):
            assert time.monotonic() < deadline, cap.docs
            await asyncio.sleep(0.02)
        stop.set()
        await task

    asyncio.run(main())
    assert fake_state(tmp_path)["blocked"] == ["203.0.113.7"]
    resp = [d for d in cap.docs if d.get("event", {}).get("dataset") == "wireguard.respond"]
    assert [d["event"]["action"] for d in resp] == [
        "response-proposed",
        "response-auto-approved",
        "response-action-started",
        "response-action-succeeded",
        "response-run-done",
    ]
    for d in resp:
        assert validate(d) == [], d
    ok = resp[3]
    assert ok["event"]["outcome"] == "success" and ok["related"]["ip"] == ["203.0.113.7"]
    assert ok["wireguard"]["respond"]["action_id"].endswith(".1")
    tel = registry.get("respond")
    assert tel.received == tel.sent == 2 + len(resp)  # the respond sink also sees its own events
    assert sink.status()["runs_done"] == 1


def test_the_service_gives_snapshots_the_stored_events_about_the_entity(tmp_path: Path) -> None:
    """With the embedded store configured, a snapshot's ``recent_events`` is a store query (unless the
    config sets one): the events about the incident's peer or the address it came from."""
    from wgsiem.config.model import Config
    from wgsiem.respond.actions.base import Target
    from wgsiem.service import Service

    cfg = Config.model_validate(
        {
            "state_dir": str(tmp_path / "state"),
            "sources": {},
            "sinks": {
                "store": {"type": "duckdb", "path": str(tmp_path / "state" / "w.duckdb")},
                "respond": sink_config(tmp_path).model_dump(mode="json"),
            },
        }
    )
    svc = Service(cfg)
    svc.build()
    try:
        (resp,) = [k for k in svc.sinks if k.component_type == "respond"]
        query = resp.engine.settings_extra["recent_events"]
        peer, other = "A" * 43 + "=", "B" * 43 + "="
        docs = [
            {
                "@timestamp": f"2026-11-25T10:00:0{i}.000Z",
                "event": {
                    "id": f"{i:032x}",
                    "kind": "event",
                    "action": "handshake",
                    "dataset": "wireguard.state",
                },
                "source": {"ip": ip},
                "wireguard": {"peer": {"public_key": key}},
            }
            for i, (key, ip) in enumerate(
                [(peer, "203.0.113.5"), (other, "198.51.100.1"), (other, "203.0.113.5")]
            )
        ]
        assert svc.store_sink is not None
        svc.store_sink.store.ingest(docs)
        got = asyncio.run(query(Target(peer_public_key=peer, endpoint_ip="203.0.113.5"), 10))
        assert [d["event"]["id"] for d in got] == [docs[0]["event"]["id"], docs[2]["event"]["id"]]
        assert asyncio.run(query(Target(peer_public_key=other), 1)) == [docs[2]]
    finally:
        if svc.store_sink is not None:
            asyncio.run(svc.store_sink.close())
