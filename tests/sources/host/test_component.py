"""The host source against the real kernel: a namespace we build, and the real WireGuard lab."""

from __future__ import annotations

import asyncio
import errno
import struct
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ecs import validate
from wgsiem.errors import SourceError
from wgsiem.lab.runtime import Lab
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.host.config import HostSourceConfig
from wgsiem.sources.host.source import HostSource
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.source import WgStateSource

pytestmark = pytest.mark.component

Doc = dict[str, Any]
KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="


def ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True)


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"wgsiem-host-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        ip(name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        ip(name, "tuntap", "add", "dev", "wgt0", "mode", "tun")  # what wireguard-go creates
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


class Running:
    """A HostSource run in a background event loop thread-free: the test drives it with ``until``."""

    def __init__(self, cfg: HostSourceConfig, peers: PeerDirectory, tmp: Path) -> None:
        tel = TelemetryRegistry().register("host", "source", "host")
        self.ctx = SourceContext("gw-test", tmp, tel, peers)
        self.source = HostSource("host", cfg, self.ctx)
        self.docs: list[Doc] = []

    async def emit(self, batch: list[Any]) -> None:
        self.docs.extend(e.data for e in batch)

    def actions(self, action: str) -> list[Doc]:
        return [d for d in self.docs if d["event"]["action"] == action]

    async def until(self, pred: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not pred():
                    await asyncio.sleep(0.02)
        except TimeoutError:
            pytest.fail(f"timed out waiting for {what}; saw {[d['event']['action'] for d in self.docs]}")


async def _in_thread(*args: str) -> None:
    await asyncio.to_thread(ip, *args)


def test_links_addresses_routes_in_a_real_namespace(namespace: str, tmp_path: Path) -> None:
    async def scenario() -> Running:
        run = Running(HostSourceConfig(namespace=namespace), PeerDirectory(), tmp_path)
        stop = asyncio.Event()
        task = asyncio.create_task(run.source.run(run.emit, stop))
        try:
            await asyncio.wait_for(run.source.ready.wait(), 10)
            await _in_thread(namespace, "link", "set", "wgt0", "mtu", "1380")
            await run.until(lambda: len(run.actions("mtu-changed")) == 1, "mtu-changed")
            await _in_thread(namespace, "link", "set", "wgt0", "up")
            await run.until(lambda: len(run.actions("interface-up")) == 1, "interface-up")
            await _in_thread(namespace, "addr", "add", "10.66.0.1/24", "dev", "wgt0")
            await _in_thread(namespace, "route", "add", "10.66.8.0/24", "dev", "wgt0", "metric", "7")
            await run.until(
                lambda: any(
                    d["wireguard"]["route"]["destination"] == "10.66.8.0/24"
                    for d in run.actions("route-added")
                ),
                "route-added 10.66.8.0/24",
            )
            await _in_thread(namespace, "route", "del", "10.66.8.0/24", "dev", "wgt0")
            await run.until(lambda: len(run.actions("route-removed")) == 1, "route-removed")
            await _in_thread(namespace, "link", "set", "wgt0", "down")
            await run.until(lambda: len(run.actions("interface-down")) == 1, "interface-down")
            await _in_thread(namespace, "tuntap", "add", "dev", "wgt1", "mode", "tun")
            await run.until(lambda: len(run.actions("link-created")) == 1, "link-created")
            await _in_thread(namespace, "link", "del", "wgt1")
            await run.until(lambda: len(run.actions("link-deleted")) == 1, "link-deleted")
            await _in_thread(namespace, "link", "set", "v0", "mtu", "1400")  # not WireGuard: ignored
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        return run

    run = asyncio.run(scenario())
    (mtu,) = run.actions("mtu-changed")
    assert mtu["wireguard"]["change"]["mtu"] == {"old": 1500, "new": 1380}
    assert mtu["wireguard"]["interface"]["name"] == "wgt0"
    assert mtu["wireguard"]["link"]["kind"] == "tun"
    (addr,) = run.actions("address-added")
    assert addr["wireguard"]["address"]["address"] == "10.66.0.1"
    route = next(
        d for d in run.actions("route-added") if d["wireguard"]["route"]["destination"] == "10.66.8.0/24"
    )
    assert route["wireguard"]["route"]["metric"] == 7
    assert route["wireguard"]["route"]["devices"] == ["wgt0"]
    assert run.actions("link-created")[0]["wireguard"]["interface"]["name"] == "wgt1"
    assert all(d["wireguard"]["interface"]["name"] != "v0" for d in run.docs)
    assert [p for d in run.docs for p in validate(d)] == []
    assert run.ctx.telemetry.sent == len(run.docs)
    assert run.ctx.telemetry.errors == {}


def test_hijack_in_a_real_namespace_reported_live_and_at_restart(namespace: str, tmp_path: Path) -> None:
    peers = PeerDirectory()
    peers.publish("wgt0", [PeerInfo("wgt0", KEY, "203.0.113.11:51820", ("10.66.0.7/32",), None, 0.0)], 0.0)
    ip(namespace, "link", "set", "wgt0", "up")
    ip(namespace, "link", "set", "v0", "up")

    async def live() -> Running:
        run = Running(HostSourceConfig(namespace=namespace), peers, tmp_path)
        stop = asyncio.Event()
        task = asyncio.create_task(run.source.run(run.emit, stop))
        try:
            await asyncio.wait_for(run.source.ready.wait(), 10)
            await _in_thread(namespace, "route", "add", "10.66.0.7/32", "dev", "v0")
            await run.until(lambda: len(run.actions("route-hijack")) == 1, "route-hijack")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        return run

    run = asyncio.run(live())
    (alert,) = run.actions("route-hijack")
    assert alert["event"]["kind"] == "alert"
    assert alert["wireguard"]["peer"]["public_key"] == KEY
    assert alert["wireguard"]["route"]["devices"] == ["v0"]

    async def restart() -> Running:  # the poisoned route is still there when wgsiem starts
        run = Running(HostSourceConfig(namespace=namespace), peers, tmp_path)
        stop = asyncio.Event()
        task = asyncio.create_task(run.source.run(run.emit, stop))
        try:
            await run.until(lambda: len(run.actions("route-hijack")) == 1, "route-hijack at start")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        return run

    again = asyncio.run(restart())
    assert again.actions("route-hijack")[0]["wireguard"]["route"]["initial_sync"] is True
    assert [p for d in [*run.docs, *again.docs] for p in validate(d)] == []


def test_missing_namespace_is_a_source_error(tmp_path: Path) -> None:
    run = Running(HostSourceConfig(namespace="wgsiem-no-such-ns"), PeerDirectory(), tmp_path)

    async def go() -> None:
        await asyncio.wait_for(run.source.run(run.emit, asyncio.Event()), 10)

    with pytest.raises(SourceError) as info:
        asyncio.run(go())
    assert "wgsiem-no-such-ns" in str(info.value)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert "wgsiem-no-such-ns" not in listed  # pyroute2 would create it by default; we must not


def test_route_poisoning_in_the_real_lab(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=2)
    peers = PeerDirectory()
    reg = TelemetryRegistry()
    wg = WgStateSource(
        "wg",
        WgStateSourceConfig(interfaces=[lab.gateway_interface]),
        hostname="gw-test",
        state_dir=tmp_path,
        telemetry=reg.register("wg", "source", "wg_state"),
        peers=peers,
    )
    asyncio.run(wg.poll_once())  # the directory now holds the lab's real peers
    key1 = lab.client_public_key(1)
    assert peers.by_key(key1) is not None
    victim = peers.by_key(key1)
    assert victim is not None
    target = next(c for c in victim.allowed_ips if c.endswith("/32"))
    ns = lab.gateway_namespace

    async def scenario() -> Running:
        run = Running(HostSourceConfig(namespace=ns), peers, tmp_path)
        stop = asyncio.Event()
        task = asyncio.create_task(run.source.run(run.emit, stop))
        try:
            await asyncio.wait_for(run.source.ready.wait(), 10)
            await _in_thread(ns, "route", "add", target, "dev", "br0")
            await run.until(lambda: len(run.actions("route-hijack")) == 1, "route-hijack")
            await _in_thread(ns, "route", "del", target, "dev", "br0")
            await run.until(lambda: len(run.actions("route-hijack-removed")) == 1, "route-hijack-removed")
            await _in_thread(ns, "link", "set", lab.gateway_interface, "mtu", "1300")
            await run.until(lambda: len(run.actions("mtu-changed")) == 1, "mtu-changed")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        return run

    run = asyncio.run(scenario())
    (alert,) = run.actions("route-hijack")
    assert alert["wireguard"]["peer"]["public_key"] == key1
    assert alert["wireguard"]["peer"]["interface"] == lab.gateway_interface
    assert alert["wireguard"]["route"]["destination"] == target
    assert alert["wireguard"]["route"]["devices"] == ["br0"]
    assert alert["event"]["severity"] == 73
    (mtu,) = run.actions("mtu-changed")
    assert mtu["wireguard"]["interface"]["name"] == lab.gateway_interface
    assert [p for d in run.docs for p in validate(d)] == []
    blob = str(run.docs)
    for secret in lab.secrets():
        assert secret not in blob


def test_overrun_is_counted_and_the_tables_re_read(namespace: str, tmp_path: Path) -> None:
    """An ENOBUFS (what pyroute2 queues when the kernel dropped messages) triggers a fresh dump."""
    ip(namespace, "link", "set", "wgt0", "up")

    async def scenario() -> Running:
        run = Running(HostSourceConfig(namespace=namespace), PeerDirectory(), tmp_path)
        stop = asyncio.Event()
        task = asyncio.create_task(run.source.run(run.emit, stop))
        try:
            await asyncio.wait_for(run.source.ready.wait(), 10)
            assert run.source.process(struct.pack("IHHQIQQ", 28, 2, 0, 0, errno.ENOBUFS, 0, 0), 0.0) == []
            assert run.source.resync
            await _in_thread(namespace, "link", "set", "wgt0", "mtu", "1300")
            await run.until(lambda: not run.source.resync, "the re-dump")
            await run.until(lambda: len(run.actions("mtu-changed")) == 1, "mtu-changed after the overrun")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        return run

    run = asyncio.run(scenario())
    assert run.source.overruns == 1
    assert run.ctx.telemetry.errors == {"overrun@receive": 1}
    assert run.ctx.telemetry.dropped["netlink_overrun"] == 1
