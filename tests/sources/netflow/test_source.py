"""The runtime: a live UDP collector on loopback, the pcap/pcapng replay contract, and the config."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from typing import Any

import dpkt
import pytest
import yaml
from pydantic import ValidationError

from tests.sources.netflow.packets import FIXTURES
from tests.support.ecs import validate
from wgsiem.errors import ParseError, SourceError
from wgsiem.event import Envelope
from wgsiem.pipeline.runtime import Source
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.netflow.config import NetflowSourceConfig
from wgsiem.sources.netflow.pcap import read_datagrams
from wgsiem.sources.netflow.records import Datagram
from wgsiem.sources.netflow.source import NetflowSource
from wgsiem.sources.peer_directory import PeerDirectory
from wgsiem.sources.registry import build_source

DOCS = Path(__file__).resolve().parents[3] / "docs" / "sources" / "netflow.md"


def make(tmp_path: Path, replay: bool = False, **cfg: Any) -> NetflowSource:
    tel = TelemetryRegistry().register("nf", "source", "netflow")
    ctx = SourceContext("gw-test", tmp_path, tel, PeerDirectory(), replay=replay)
    src = build_source("nf", NetflowSourceConfig(**cfg), ctx)
    assert isinstance(src, NetflowSource) and isinstance(src, Source)
    return src


def replay(src: NetflowSource, path: Path) -> tuple[list[dict[str, Any]], list[ParseError]]:
    docs: list[dict[str, Any]] = []
    errors: list[ParseError] = []
    for item in NetflowSource.replay_read(path):
        if isinstance(item.payload, ParseError):
            errors.append(item.payload)
        else:
            docs += [e.data for e in src.process(item.payload, item.time)]
    return docs, errors


def test_replay_detect_by_capture_magic(tmp_path: Path) -> None:
    pcap = FIXTURES / "softflowd_v9.pcap"
    assert NetflowSource.replay_detect(pcap, pcap.read_bytes()[:4096])
    assert not NetflowSource.replay_detect(Path("x.dump"), b"wg0\tabc\n")


def test_replay_is_deterministic_and_uses_capture_time(tmp_path: Path) -> None:
    path = FIXTURES / "softflowd_ipfix.pcap"
    a, errs = replay(make(tmp_path), path)
    b, _ = replay(make(tmp_path), path)
    assert errs == [] and len(a) == 10
    assert a == b  # same ids, same event.created (capture time, not wall clock)
    ts = [t for t, _ in read_datagrams(path)]
    assert a[0]["event"]["created"].startswith(
        __import__("datetime")
        .datetime.fromtimestamp(ts[0], __import__("datetime").UTC)
        .strftime("%Y-%m-%dT%H:%M:%S")
    )
    assert all(validate(d) == [] for d in a)


def test_pcapng_gives_the_same_events(tmp_path: Path) -> None:
    src_path = FIXTURES / "softflowd_v9.pcap"
    ng = tmp_path / "v9.pcapng"
    with open(src_path, "rb") as f, open(ng, "wb") as out:
        reader = dpkt.pcap.Reader(f)
        writer = dpkt.pcapng.Writer(out, linktype=reader.datalink())
        for ts, frame in reader:
            writer.writepkt(frame, ts)
    assert NetflowSource.replay_detect(ng, ng.read_bytes()[:4])
    assert replay(make(tmp_path), ng)[0] == replay(make(tmp_path), src_path)[0]


def test_damaged_capture_keeps_what_came_before(tmp_path: Path) -> None:
    with open(FIXTURES / "softflowd_v5.pcap", "rb") as f:
        frames = list(dpkt.pcap.Reader(f))
    twice = tmp_path / "twice.pcap"
    with open(twice, "wb") as f:
        w = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, frame in [*frames, *frames]:
            w.writepkt(frame, ts)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(twice.read_bytes()[:-20])  # the second packet record is cut short
    docs, errors = replay(make(tmp_path), cut)
    assert len(docs) == 8 and len(errors) == 1
    assert errors[0].location is not None and str(errors[0].location).endswith("#packet2")
    # a frame cut by the snap length is reported, not decoded half
    snap = tmp_path / "snap.pcap"
    with open(snap, "wb") as f:
        w = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_EN10MB, snaplen=100)
        w.writepkt(frames[0][1][:100], frames[0][0])
    docs, errors = replay(make(tmp_path), snap)
    assert docs == [] and len(errors) == 1 and "cut to" in errors[0].what
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 5)
    docs, errors = replay(make(tmp_path), garbage)
    assert docs == [] and len(errors) == 1


def test_non_netflow_udp_in_a_capture_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcap"
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_RAW)
        udp = dpkt.udp.UDP(sport=53, dport=5353, data=b"\x12\x34 not netflow")
        udp.ulen = len(udp)
        ip = dpkt.ip.IP(src=socket.inet_aton("192.0.2.1"), dst=socket.inet_aton("192.0.2.2"), p=17, data=udp)
        ip.len = len(ip)
        w.writepkt(bytes(ip), 1.0)
    assert list(read_datagrams(path)) == []


async def _live(src: NetflowSource, datagrams: list[bytes], expect: int) -> list[Envelope]:
    got: list[Envelope] = []

    async def emit(batch: list[Envelope]) -> None:
        got.extend(batch)

    stop = asyncio.Event()
    task = asyncio.create_task(src.run(emit, stop))
    for _ in range(200):
        if src.bound:
            break
        await asyncio.sleep(0.01)
    assert src.bound is not None
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for d in datagrams:
        s.sendto(d, src.bound)
    s.close()
    for _ in range(500):
        if len(got) >= expect and src.ctx.telemetry.received >= len(datagrams):
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    return got


def test_live_collector_emits_what_replay_emits(tmp_path: Path) -> None:
    path = FIXTURES / "softflowd_ipfix_biflow.pcap"
    datagrams = [d.data for _, d in read_datagrams(path) if isinstance(d, Datagram)]
    expected, _ = replay(make(tmp_path), path)
    src = make(tmp_path, listen_port=0)
    got = asyncio.run(_live(src, datagrams, len(expected)))
    assert [e.data["event"]["id"] for e in got] == [d["event"]["id"] for d in expected]
    assert all(e.meta.source_id == "nf" for e in got)
    tel = src.ctx.telemetry
    assert (tel.received, tel.sent) == (len(datagrams), len(expected))
    st = src.status()
    assert st["records"] == len(expected) and st["templates"] == 5 and st["exporters"] == ["127.0.0.1/0"]


def test_exporters_outside_the_allow_list_are_dropped(tmp_path: Path) -> None:
    datagrams = [d.data for _, d in read_datagrams(FIXTURES / "softflowd_v5.pcap") if isinstance(d, Datagram)]
    src = make(tmp_path, listen_port=0, allowed_exporters=["192.0.2.0/24"])
    assert asyncio.run(_live(src, datagrams, 0)) == []
    assert src.ctx.telemetry.dropped["exporter_not_allowed"] == len(datagrams)


def test_bad_datagrams_are_counted_with_location(tmp_path: Path) -> None:
    src = make(tmp_path)
    assert src.process(Datagram("192.0.2.5", 2055, b"\x00\x07garbage", 1.0), 1.0) == []
    tel = src.ctx.telemetry
    assert tel.errors["parse@decode"] == 1 and tel.last_error is not None
    assert "192.0.2.5@0" in tel.last_error


def test_busy_port_is_a_source_error(tmp_path: Path) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        src = make(tmp_path, listen_port=s.getsockname()[1])

        async def emit(batch: list[Envelope]) -> None:
            return None

        with pytest.raises(SourceError, match="cannot listen on udp"):
            asyncio.run(src.run(emit, asyncio.Event()))
    finally:
        s.close()


def test_config_rejects_unknown_keys_and_bad_cidrs() -> None:
    with pytest.raises(ValidationError):
        NetflowSourceConfig(listen_prot=2055)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        NetflowSourceConfig(allowed_exporters=["not-an-address"])


def test_example_config_in_the_docs_parses() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert blocks
    for block in blocks:
        for cfg in yaml.safe_load(block)["sources"].values():
            NetflowSourceConfig(**cfg)
