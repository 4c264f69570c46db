"""``packet_capture``: opt-in, filter, bounds, and a real capture in the lab during ``lab.send``."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wgsiem.errors import ConfigError
from wgsiem.lab.runtime import Lab
from wgsiem.respond.actions.base import Target
from wgsiem.respond.actions.capture import PacketCapture, bpf_filter, read_pcap

from .support import FakeExecutor, context, local_executor

NETFLOW = Path(__file__).resolve().parents[2] / "fixtures" / "netflow"


def test_filters() -> None:
    assert bpf_filter("outer", "203.0.113.7", 51820, []) == "udp and host 203.0.113.7 and port 51820"
    assert bpf_filter("outer", "2001:db8::7", None, []) == "udp and host 2001:db8::7"
    nets = [ipaddress.ip_network("10.222.0.11/32"), ipaddress.ip_network("10.222.100.0/24")]
    assert bpf_filter("tunnel", None, None, nets) == "host 10.222.0.11 or net 10.222.100.0/24"
    with pytest.raises(ConfigError):
        bpf_filter("tunnel", None, None, [])


def test_disabled_by_default_and_the_plan_says_why(tmp_path: Path) -> None:
    ctx = context(FakeExecutor({}), tmp_path)
    action = PacketCapture()

    async def run() -> Any:
        plan = await action.plan(Target(endpoint_ip="203.0.113.7", endpoint_port=1), {}, ctx)
        return plan, await action.apply(plan, ctx)

    plan, result = asyncio.run(run())
    assert "opt-in" in plan.summary and "enabled: true" in plan.summary
    assert result.ok and not result.verified and result.details["skipped"]
    assert ctx.executor.calls == [] and not (tmp_path / "case").exists()


def test_bad_params_and_injection_refused(tmp_path: Path) -> None:
    action = PacketCapture()
    for params in ({"max_secs": 0}, {"where": "both"}, {"outer_interface": "eth0; rm -rf /"}, {"x": 1}):
        with pytest.raises(ConfigError):
            action.validate_params({"enabled": True, **params})
    ctx = context(FakeExecutor({}), tmp_path)
    with pytest.raises(ValueError):
        asyncio.run(action.plan(Target(endpoint_ip="1.2.3.4 or host 10.0.0.1"), {"enabled": True}, ctx))


def test_bounds_in_the_command(tmp_path: Path) -> None:
    ctx = context(FakeExecutor({}), tmp_path, outer_interface="eth1")
    action = PacketCapture()
    params = {"enabled": True, "max_packets": 5000, "max_bytes": 100_000, "max_secs": 30, "snaplen": 200}
    plan = asyncio.run(action.plan(Target(endpoint_ip="203.0.113.7", endpoint_port=4500), params, ctx))
    assert plan.details["packet_limit"] == (100_000 - 24) // 216  # bytes bound beats the packet bound
    assert action.argv(plan.details) == [
        "timeout", "-s", "INT", "30", "tcpdump", "-n", "-p", "-U", "-i", "eth1", "-s", "200",
        "-c", "462", "-w", "-", "udp and host 203.0.113.7 and port 4500",
    ]  # fmt: skip


def test_read_pcap_of_a_real_capture() -> None:
    packets = read_pcap((NETFLOW / "tunnel.pcap").read_bytes())
    assert packets and all(p[0] is not None for p in packets)
    with pytest.raises(ValueError):
        read_pcap(b"not a pcap at all, definitely not")


def _packet_sockets(namespace: str) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", namespace, "cat", "/proc/net/packet"], capture_output=True, check=True
    ).stdout
    return len(out.splitlines()) - 1


@pytest.mark.component
@pytest.mark.parametrize("where", ["outer", "tunnel"])
def test_capture_during_lab_traffic_holds_that_peer_only(
    make_lab: Callable[..., Lab], tmp_path: Path, where: str
) -> None:
    lab = make_lab(clients=2)
    lab.connect(1)
    lab.connect(2)
    peer = lab.gateway_peer(1)
    assert peer is not None and peer.endpoint is not None
    host, _, port = peer.endpoint.rpartition(":")
    ctx = context(local_executor(lab.gateway_namespace), tmp_path)
    target = Target(
        interface=lab.gateway_interface,
        peer_public_key=lab.client_public_key(1),
        endpoint_ip=host,
        endpoint_port=int(port),
    )
    action = PacketCapture()
    params = {"enabled": True, "where": where, "max_packets": 12, "max_secs": 60}

    async def run() -> Any:
        plan = await action.plan(target, params, ctx)
        before = _packet_sockets(lab.gateway_namespace)
        task = asyncio.create_task(action.apply(plan, ctx))
        deadline = time.monotonic() + 20
        while _packet_sockets(lab.gateway_namespace) <= before:  # tcpdump is listening
            assert time.monotonic() < deadline and not task.done(), "tcpdump did not start"
            await asyncio.sleep(0.02)
        deadline = time.monotonic() + 60
        while not task.done():  # both clients talk until the capture has its 12 packets
            assert time.monotonic() < deadline, "capture did not complete"
            await asyncio.to_thread(lab.send, 2, 2000)
            await asyncio.to_thread(lab.send, 1, 2000)
        return plan, await task

    plan, result = asyncio.run(run())
    assert result.ok and result.verified, result
    pcap = Path(result.details["path"])
    assert stat.S_IMODE(pcap.stat().st_mode) == 0o600
    packets = read_pcap(pcap.read_bytes())
    assert len(packets) == 12 and result.details["stopped_by"] == "packet count"
    if where == "outer":
        assert all(host in (p[0], p[1]) and int(port) in (p[2], p[3]) for p in packets)
    else:
        tunnel_ip = "10.222.0.11"  # client 1's AllowedIPs on the gateway
        assert plan.details["filter"].startswith(f"host {tunnel_ip}")
        assert all(tunnel_ip in (p[0], p[1]) for p in packets)
    sidecar = json.loads(pcap.with_suffix(".json").read_text())
    assert sidecar["packets"] == 12 and sidecar["filter"] == plan.details["filter"]
