"""The real captures (tests/fixtures/wggo_log/, see its README) read through the replay contract:
exact expected events, full public keys resolved, valid ECS, no key material."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.sources.wggo_log.harness import (
    FIX,
    HOST,
    fixture_directory,
    fixture_peers,
    make_source,
    replay_docs,
)
from tests.support.ecs import validate
from wgsiem.event import Envelope
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.replay.driver import ReplaySource, plan_replay
from wgsiem.sources.wggo_log.lines import is_banner
from wgsiem.sources.wggo_log.source import WggoLogSource

NOISE = (
    "routine-",
    "uapi-allowed",
    "uapi-pre",
    "uapi-persist",
    "uapi-endpoint",
    "uapi-listen",
    "uapi-private",
    "interface-up",
    "bind-",
    "peer-st",
    "device-",
)


def names() -> dict[str, str]:
    p = fixture_peers()
    return {p["gateway"]["public_key"]: "GW", **{c["public_key"]: f"C{i}" for i, c in p["clients"].items()}}


def story(docs: list[dict[str, Any]]) -> list[tuple[int, str, str | None, str | None]]:
    """(line, action, whose key, endpoint) of everything but routine/config noise."""
    who = names()
    return [
        (
            d["event"]["sequence"],
            d["event"]["action"],
            who.get(d["wireguard"].get("peer", {}).get("public_key", "")),
            d["wireguard"].get("endpoint", {}).get("text"),
        )
        for d in docs
        if not d["event"]["action"].startswith(NOISE)
    ]


def test_gateway_story(tmp_path: Path) -> None:
    docs = replay_docs(make_source(tmp_path, fixture_directory(), replay=True), FIX / "gateway.log")
    assert story(docs) == [
        (10, "daemon-started", None, None),
        (32, "uapi-peer-created", "C1", None),
        (38, "uapi-peer-created", "C2", None),
        (48, "uapi-error", None, None),
        (49, "uapi-error", None, None),
        (50, "uapi-error", None, None),
        (51, "uapi-error", None, None),
        (52, "uapi-invalid-operation", None, None),
        (53, "handshake-initiation-received", "C1", None),
        (54, "handshake-response-sent", "C1", None),
        (55, "keepalive", "C1", None),
        (56, "handshake-initiation-received", "C2", None),
        (57, "handshake-response-sent", "C2", None),
        (58, "uapi-peer-removed", "C2", None),
        (62, "invalid-handshake", None, "203.0.113.12:41694"),
        (63, "invalid-handshake", None, "203.0.113.12:41694"),
        (64, "uapi-peer-created", "C2", None),
        (71, "handshake-initiation-received", "C2", None),
        (72, "handshake-response-sent", "C2", None),
        (90, "daemon-stopping", None, None),
        (100, "daemon-started", None, None),
        (121, "uapi-peer-created", "C1", None),
        (126, "uapi-peer-created", "C2", None),
        (138, "handshake-initiation-received", "C1", None),
        (139, "handshake-response-sent", "C1", None),
    ]
    started = [d for d in docs if d["event"]["action"] == "daemon-started"]
    assert [d["wireguard"]["daemon"]["version"] for d in started] == ["0.0.20220316"] * 2


def test_client2_story(tmp_path: Path) -> None:
    docs = replay_docs(make_source(tmp_path, fixture_directory(), replay=True), FIX / "client2.log")
    assert story(docs) == [
        (10, "daemon-started", None, None),
        (27, "uapi-peer-created", "GW", None),
        (37, "uapi-peer-removed", "GW", None),
        (41, "uapi-peer-created", "GW", None),
        (50, "uapi-peer-removed", "GW", None),
        (54, "uapi-peer-created", "GW", None),
        (63, "handshake-initiation-sent", "GW", None),
        (64, "handshake-response-received", "GW", None),
        (65, "uapi-peer-removed", "GW", None),
        (69, "uapi-peer-created", "GW", None),
        (78, "handshake-initiation-sent", "GW", None),
        (79, "handshake-timeout", "GW", None),
        (80, "handshake-initiation-sent", "GW", None),
        (81, "uapi-peer-removed", "GW", None),
        (85, "uapi-peer-created", "GW", None),
        (94, "handshake-initiation-sent", "GW", None),
        (95, "handshake-response-received", "GW", None),
    ]


@pytest.mark.parametrize("name", ["gateway.log", "client1.log", "client2.log"])
def test_every_line_is_read_valid_and_resolved(tmp_path: Path, name: str) -> None:
    path = FIX / name
    lines = path.read_text().splitlines()
    items = list(WggoLogSource.replay_read(path))
    assert [i.payload for i in items if isinstance(i.payload, Exception)] == []
    assert len(items) == sum(1 for x in lines if x and not is_banner(x))
    times = [i.time for i in items]
    assert times == sorted(times)  # local time order = file order here
    docs = replay_docs(make_source(tmp_path, fixture_directory(), replay=True), path)
    assert [p for d in docs for p in validate(d)] == []
    assert len({d["event"]["id"] for d in docs}) == len(docs)
    assert [d["event"]["sequence"] for d in docs] == [
        n for n, x in enumerate(lines, 1) if x and not is_banner(x)
    ]
    assert "unrecognized" not in {d["event"]["action"] for d in docs}  # every real line is in the catalogue
    peers = [d["wireguard"]["peer"] for d in docs if "peer" in d["wireguard"]]
    assert peers and {p["resolution"] for p in peers} == {"resolved"}
    assert {d["observer"]["ingress"]["interface"]["name"] for d in docs} == {lines[-1].split()[1].strip("()")}
    blob = orjson.dumps(docs).decode()
    assert re.search(r"[0-9a-f]{64}", blob) is None  # the echoed key-shaped UAPI line is redacted


def test_replay_detect() -> None:
    for name in ("gateway.log", "client1.log", "client2.log"):
        path = FIX / name
        assert WggoLogSource.replay_detect(path, path.read_bytes()[:4096])
    assert not WggoLogSource.replay_detect(FIX / "peers.json", (FIX / "peers.json").read_bytes())
    kernel = b"[   15.753760] wireguard: wg0: Interface created\n"
    assert not WggoLogSource.replay_detect(Path("dmesg.txt"), kernel)
    assert not WggoLogSource.replay_detect(Path("empty.log"), b"")


def test_the_replay_driver_claims_and_replays_the_captures(tmp_path: Path) -> None:
    """`wgsiem replay` over the fixture folder: the three logs are claimed by wggo_log, merged by time,
    and give exactly the events each file gives alone."""
    plan = plan_replay([FIX])
    assert sorted(p.name for p, t in plan.files if t == "wggo_log") == [
        "client1.log",
        "client2.log",
        "gateway.log",
    ]
    rs = ReplaySource(plan, {}, hostname=HOST, state_dir=tmp_path, registry=TelemetryRegistry())
    docs: list[dict[str, Any]] = []

    async def emit(batch: list[Envelope]) -> None:
        docs.extend(e.data for e in batch)

    asyncio.run(rs.run(emit, asyncio.Event()))
    alone = [
        d
        for name in ("gateway.log", "client1.log", "client2.log")
        for d in replay_docs(make_source(tmp_path / name, replay=True), FIX / name)
    ]
    assert sorted(d["event"]["id"] for d in docs) == sorted(d["event"]["id"] for d in alone)
    stamps = [d["@timestamp"] for d in docs]
    assert stamps == sorted(stamps)
