"""Unit tests of the lab status report's shape (pure: built from state, liveness and the gateway view)."""

from __future__ import annotations

from pathlib import Path

from wgsiem.lab.report import down_report, lab_report
from wgsiem.lab.state import ClientState, InterfaceState, LabState
from wgsiem.lab.uapi import UapiPeer

GW_PUB = "A" * 43 + "="
C1_PUB = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="  # 32 bytes of 0x01


def state() -> LabState:
    st = LabState(name="demo", ipv6=False, clients_at_up=1)
    st.gateways["wgdemog0"] = InterfaceState(
        "wgdemog0", "wgsiem-demo-gw", "/k/g", GW_PUB, pid=10, listen_port=51820
    )
    st.client_interfaces[1] = InterfaceState("wgdemoc1", "wgsiem-demo-c1", "/k/c1", C1_PUB, pid=11)
    st.clients[1] = ClientState(1, "192.0.2.11/24", "192.0.2.1", None, None, idle=True)
    return st


def test_down_report() -> None:
    assert down_report("demo", Path("/s"), ["wgsiem-demo-c1"]) == {
        "name": "demo",
        "state_dir": "/s",
        "namespaces": ["wgsiem-demo-c1"],
        "up": False,
    }


def test_report_shows_the_gateway_view_of_each_client() -> None:
    seen = {"01" * 32: UapiPeer("01" * 32, "192.0.2.11:4000", 1700000000, 10, 20, ["10.222.0.11/32"])}
    report = lab_report(state(), Path("/s"), ["wgsiem-demo-gw"], {"wgdemog0": True, "wgdemoc1": True}, seen)
    assert report["up"] is True and report["gateway_peers"] == 1
    assert report["gateways"][0]["log"] == "/s/wgdemog0.log"
    (client,) = report["clients"]
    assert (
        client["outer"] == ["192.0.2.11/24"] and client["idle"] is True and client["preshared_key"] is False
    )
    assert client["gateway_view"] == {
        "endpoint": "192.0.2.11:4000",
        "latest_handshake": 1700000000,
        "rx_bytes": 10,
        "tx_bytes": 20,
        "allowed_ips": ["10.222.0.11/32"],
    }


def test_report_when_the_gateway_does_not_answer() -> None:
    report = lab_report(state(), Path("/s"), [], {"wgdemog0": False}, None)
    assert report["up"] is False and report["clients"][0]["gateway_view"] is None
    assert report["clients"][0]["running"] is False
