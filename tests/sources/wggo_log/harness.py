"""Building blocks shared by this folder's tests: a source with a real context, the captured fixtures
and the peers of the lab they were captured in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo
from wgsiem.sources.wggo_log.config import WggoLogSourceConfig
from wgsiem.sources.wggo_log.source import WggoLogSource

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "wggo_log"
HOST = "gw-test"


def fixture_peers() -> dict[str, Any]:
    return json.loads((FIX / "peers.json").read_text())


def fixture_directory() -> PeerDirectory:
    """Who is whose peer in the capture lab: the gateway has both clients, each client the gateway."""
    p = fixture_peers()
    d = PeerDirectory()
    gw = p["gateway"]
    d.publish(
        gw["interface"],
        [PeerInfo(gw["interface"], c["public_key"], None, (), None, 0.0) for c in p["clients"].values()],
        at=0.0,
    )
    for c in p["clients"].values():
        d.publish(c["interface"], [PeerInfo(c["interface"], gw["public_key"], None, (), None, 0.0)], at=0.0)
    return d


def make_source(
    state_dir: Path,
    peers: PeerDirectory | None = None,
    *,
    replay: bool = False,
    component_id: str = "wggo",
    **cfg: Any,
) -> WggoLogSource:
    cfg.setdefault("mode", "file")
    if cfg["mode"] == "file":
        cfg.setdefault("path", str(state_dir / "wg0.log"))
    cfg.setdefault("timezone", "UTC")
    reg = TelemetryRegistry()
    ctx = SourceContext(
        hostname=HOST,
        state_dir=state_dir,
        telemetry=reg.register(component_id, "source", "wggo_log"),
        peers=peers if peers is not None else PeerDirectory(),
        replay=replay,
    )
    return WggoLogSource(component_id, WggoLogSourceConfig(**cfg), ctx)


def replay_docs(source: WggoLogSource, path: Path) -> list[dict[str, Any]]:
    """What ``wgsiem replay`` makes of one file: ``replay_read`` then ``process`` in order."""
    out = []
    for item in WggoLogSource.replay_read(path):
        assert not isinstance(item.payload, Exception), item.payload
        out += [e.data for e in source.process(item.payload, item.time)]
    return out
