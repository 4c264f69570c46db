"""`wgsiem run` with every issue-3 source at once on a real lab: each signal becomes an ECS event in the
same envelope, each component reports the same telemetry, Prometheus metrics are served, and no secret
leaves the collector."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import dpkt
import pytest

from tests.behaviour.test_run_end_to_end import Run, wait_for
from tests.support.ecs import validate
from wgsiem.lab.runtime import Lab

pytestmark = pytest.mark.behaviour

FIXTURES = Path(__file__).parents[1] / "fixtures"
TOKEN = "behaviour-test-token-0123456789"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AllSources(Run):
    def __init__(self, tmp: Path, lab: Lab) -> None:
        super().__init__(tmp, lab)
        self.conf_dir = tmp / "etc-wireguard"
        self.conf_dir.mkdir()
        self.kern = tmp / "kern.log"
        self.kern.write_text("")
        self.flow_port = free_port(socket.SOCK_DGRAM)
        self.ctx_port = free_port()
        self.metrics_port = free_port()
        gw = lab.gateway_interface
        self.cfg.write_text(
            f"""
state_dir: {self.state}
hostname: gw-all
sources:
  wg:
    type: wg_state
    interfaces: [{gw}]
    poll_interval_secs: 0.5
    transfer_interval_secs: 1
  wggo:
    type: wggo_log
    mode: file
    path: {lab.log_path(gw)}
    interface: {gw}
    from_start: true
  kern:
    type: kernel_log
    journal: false
    files: [{self.kern}]
  conf:
    type: config_watch
    paths: ["{self.conf_dir}/*.conf"]
    drift_check_interval_secs: 1
    drift_grace_secs: 0
  flows:
    type: netflow
    listen_address: 127.0.0.1
    listen_port: {self.flow_port}
  ctx:
    type: context
    http:
      listen_port: {self.ctx_port}
      token: {TOKEN}
  host:
    type: host
    namespace: {lab.gateway_namespace}
sinks:
  siem:
    type: ndjson
    path: {self.out}
  metrics:
    type: prometheus_exporter
    port: {self.metrics_port}
pipeline:
  batch_max_wait_secs: 0.2
"""
        )

    def datasets(self) -> set[str]:
        return {d["event"]["dataset"] for d in self.docs()}


def send_netflow(port: int) -> int:
    """Send real softflowd exports (captured from the lab's tunnel traffic) to the collector."""
    sent = 0
    with (
        (FIXTURES / "netflow" / "softflowd_ipfix.pcap").open("rb") as f,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s,
    ):
        for _ts, frame in dpkt.pcap.Reader(f):
            payload = _udp_payload(frame)
            if payload:
                s.sendto(payload, ("127.0.0.1", port))
                sent += 1
    return sent


def _udp_payload(frame: bytes) -> bytes | None:
    for parse in (dpkt.ethernet.Ethernet, dpkt.sll.SLL, dpkt.loopback.Loopback, dpkt.ip.IP):
        try:
            pkt = parse(frame)
        except (dpkt.dpkt.UnpackError, ValueError):
            continue
        ip = pkt if isinstance(pkt, dpkt.ip.IP) else pkt.data
        if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) and isinstance(ip.data, dpkt.udp.UDP):
            return bytes(ip.data.data)
    return None


def test_every_source_feeds_one_pipeline(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=2)
    run = AllSources(tmp_path, lab)
    gw = lab.gateway_interface
    (run.conf_dir / f"{gw}.conf").write_text(lab.wg(lab.gateway_namespace, "showconf", gw))
    try:
        run.start()
        lab.connect(1)
        lab.send(1, 100_000)
        wait_for(lambda: run.actions("session-started"), 30, "a session from wg_state")
        # the kernel log (this host has no kernel module: real-format lines are appended to a file)
        with run.kern.open("a") as f:
            f.write(
                "Dec 11 12:56:38 poseidon kernel: [  265.694319] wireguard: wg0: Invalid handshake "
                "initiation from 198.51.100.7:39495\n"
            )
        # a live change that makes the running interface drift from its file
        lab.wg(
            lab.gateway_namespace, "set", gw, "peer", lab.client_public_key(2), "allowed-ips", "10.99.0.0/24"
        )
        # real softflowd exports
        assert send_netflow(run.flow_port) > 0
        # context: an identity event over the authenticated HTTP endpoint
        req = urllib.request.Request(
            f"http://127.0.0.1:{run.ctx_port}/v1/ingest/identity",
            data=json.dumps(
                {
                    "user": "alice",
                    "result": "success",
                    "time": "2026-11-25T10:00:00Z",
                    "provider": "okta",
                    "source_ip": "203.0.113.11",
                    "factor": "push",
                }
            ).encode()
            + b"\n",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read())["accepted"] == 1
        # host: a route hijack of client 1's tunnel address in the gateway namespace
        lab_ns = lab.gateway_namespace
        subprocess.run(
            ["ip", "-n", lab_ns, "link", "add", "hj0", "type", "veth", "peer", "name", "hj1"], check=True
        )
        subprocess.run(["ip", "-n", lab_ns, "link", "set", "hj0", "up"], check=True)
        tunnel_ip = run.actions("session-started")[0]["source"]["nat"]["ip"]
        subprocess.run(["ip", "-n", lab_ns, "route", "add", f"{tunnel_ip}/32", "dev", "hj0"], check=True)

        wanted = {
            "wireguard.state",
            "wireguard.wggo_log",
            "wireguard.kernel_log",
            "wireguard.config",
            "wireguard.flow",
            "wireguard.context",
            "wireguard.host",
        }
        wait_for(lambda: wanted <= run.datasets(), 60, f"events from every source ({wanted})")
        wait_for(lambda: run.actions("config-drift-detected"), 30, "config drift")

        metrics = urllib.request.urlopen(f"http://127.0.0.1:{run.metrics_port}/metrics", timeout=10).read()
        assert b"wgsiem_" in metrics
        status = run.cli("status", "--json")
        comps = {c["id"]: c for c in status["components"]}
        for cid in ("wg", "wggo", "kern", "conf", "flows", "ctx", "host"):
            assert comps[cid]["kind"] == "source" and comps[cid]["sent"] > 0, comps[cid]
        assert comps["siem"]["sent"] == comps["siem"]["received"]
        assert run.stop() == 0
    finally:
        run.kill()
    docs = run.docs()
    ids = [d["event"]["id"] for d in docs]
    assert len(ids) == len(set(ids))
    for d in docs:
        validate(d)
        assert d["event"]["module"] == "wireguard"
        if d["event"]["dataset"] == "wireguard.flow":  # the observer of a flow is its exporter
            assert d["observer"]["ip"] == ["127.0.0.1"]
        else:
            assert d["observer"].get("hostname") == "gw-all", (d["event"]["dataset"], d["observer"])
    everything = run.out.read_text() + (run.state / "..").resolve().joinpath("run.log").read_text()
    for secret in lab.secrets():
        assert secret not in everything
    for p in run.state.rglob("*"):
        if p.is_file() and p.suffix in (".json", ".pos", ".state", ""):
            data = p.read_bytes()
            for secret in lab.secrets():
                assert secret.encode() not in data, p
