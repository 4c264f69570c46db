"""ECS documents of flows, Community ID against the ``communityid`` package, peer attribution."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import communityid
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sources.netflow.test_decoder import VARIANTS, decode_fixture
from tests.support.ecs import validate
from wgsiem.sources.netflow.attribution import TunnelIndex
from wgsiem.sources.netflow.community_id import community_id
from wgsiem.sources.netflow.normalize import iso, to_ecs
from wgsiem.sources.netflow.records import FlowRecord
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

KEY1 = "gyzvY6Bok2VuXviRNOG/4iOGP/T0VXxMIj6PKXEoHFU="
KEY2 = "phWJN9+0baRoeK/T93Y5AFPgbwLYkDRNLGPM+2V90Rs="


def directory() -> PeerDirectory:
    d = PeerDirectory()
    d.publish(
        "wg0",
        [
            PeerInfo("wg0", KEY1, "203.0.113.11:40000", ("10.222.0.11/32", "10.222.100.0/24"), None, 0.0),
            PeerInfo("wg0", KEY2, "203.0.113.12:40001", ("10.222.0.12/32", "fd00:222::12/128"), None, 0.0),
        ],
        0.0,
    )
    return d


def rec(**kw: object) -> FlowRecord:
    base = FlowRecord(
        10, "127.0.0.1", 0, 1024, 1795629750.0, 10, 100, "10.222.0.11", "10.222.0.1", 38158, 9, 17, 4,
        24560, 20, None, None, 1795629750.207, 1795629750.212, 0, 0, None, None, 0, 0, 1, 1, None, None, 1,
    )  # fmt: skip
    return base._replace(**kw)  # type: ignore[arg-type]


def test_udp_flow_document_exact() -> None:
    idx = TunnelIndex(directory())
    doc = to_ecs(rec(), hostname="gw1", received_at=1795629751.5, lookup=idx.lookup)
    assert doc["@timestamp"] == "2026-11-25T18:02:30.212Z"
    ev = doc["event"]
    assert (ev["action"], ev["dataset"], ev["category"], ev["type"]) == (
        "flow",
        "wireguard.flow",
        ["network"],
        ["connection"],
    )
    assert (ev["start"], ev["end"], ev["duration"], ev["created"]) == (
        "2026-11-25T18:02:30.207Z",
        "2026-11-25T18:02:30.212Z",
        5_000_000,
        "2026-11-25T18:02:31.500Z",
    )
    assert doc["source"] == {
        "ip": "10.222.0.11",
        "address": "10.222.0.11",
        "port": 38158,
        "bytes": 24560,
        "packets": 20,
    }
    assert doc["destination"] == {"ip": "10.222.0.1", "address": "10.222.0.1", "port": 9}
    assert doc["network"] == {
        "iana_number": "17",
        "transport": "udp",
        "bytes": 24560,
        "packets": 20,
        "type": "ipv4",
        "direction": "egress",
        "community_id": communityid.CommunityID().calc(
            communityid.FlowTuple.make_udp("10.222.0.11", "10.222.0.1", 38158, 9)
        ),
    }
    assert doc["observer"] == {"ip": ["127.0.0.1"], "type": "sensor"}
    assert doc["wireguard"]["peer"] == {
        "attribution": "tunnel-ip",
        "side": "source",
        "tunnel_ip": "10.222.0.11",
        "public_key": KEY1,
        "interface": "wg0",
    }
    assert doc["wireguard"]["flow"]["end_reason"] == "idle-timeout"
    assert validate(doc) == []


def test_event_id_is_stable_and_distinct_per_record() -> None:
    idx = TunnelIndex(directory())
    a = to_ecs(rec(), hostname="gw1", received_at=1.0, lookup=idx.lookup)["event"]["id"]
    assert a == to_ecs(rec(), hostname="gw1", received_at=2.0, lookup=idx.lookup)["event"]["id"]
    assert a != to_ecs(rec(offset=148), hostname="gw1", received_at=1.0, lookup=idx.lookup)["event"]["id"]
    assert a != to_ecs(rec(sequence=11), hostname="gw1", received_at=1.0, lookup=idx.lookup)["event"]["id"]


def test_attribution_destination_side_and_unknown() -> None:
    idx = TunnelIndex(directory())
    doc = to_ecs(
        rec(src_ip="10.222.0.1", dst_ip="10.222.100.7"), hostname="h", received_at=0, lookup=idx.lookup
    )
    assert doc["wireguard"]["peer"]["side"] == "destination"
    assert doc["wireguard"]["peer"]["public_key"] == KEY1
    doc = to_ecs(rec(src_ip="10.222.0.1", dst_ip="192.0.2.4"), hostname="h", received_at=0, lookup=idx.lookup)
    assert doc["wireguard"]["peer"] == {"attribution": "unknown"}
    doc = to_ecs(rec(), hostname="h", received_at=0, lookup=idx.lookup, peer_interface="wg9")
    assert doc["wireguard"]["peer"] == {"attribution": "unknown"}


def test_sampling_scales_or_records() -> None:
    idx = TunnelIndex(PeerDirectory())
    r = rec(sampling_interval=100, rev_bytes=10, rev_packets=1)
    doc = to_ecs(r, hostname="h", received_at=0, lookup=idx.lookup)
    assert (doc["source"]["bytes"], doc["destination"]["bytes"], doc["network"]["bytes"]) == (
        2_456_000,
        1000,
        2_457_000,
    )
    assert doc["wireguard"]["flow"]["sampling"] == {
        "interval": 100,
        "scaled": True,
        "raw_bytes": 24560,
        "raw_packets": 20,
        "raw_reverse_bytes": 10,
        "raw_reverse_packets": 1,
    }
    doc = to_ecs(r, hostname="h", received_at=0, lookup=idx.lookup, scale_sampling=False)
    assert doc["network"]["bytes"] == 24570
    assert doc["wireguard"]["flow"]["sampling"] == {"interval": 100, "scaled": False}


def test_every_fixture_document_is_valid_ecs() -> None:
    idx = TunnelIndex(directory())
    problems = []
    for name in VARIANTS:
        for r in decode_fixture(name):
            doc = to_ecs(r, hostname="gw", received_at=r.export_time, lookup=idx.lookup)
            problems += [f"{name}: {p}" for p in validate(doc)]
            if r.protocol == 1:
                assert "port" not in doc["destination"] and doc["wireguard"]["flow"]["icmp"] == {
                    "type": 3,
                    "code": 3,
                }
    assert problems == []


# --- Community ID

addr4 = st.ip_addresses(v=4).map(str)
addr6 = st.ip_addresses(v=6).map(str)


@settings(max_examples=200)
@given(
    st.one_of(st.tuples(addr4, addr4), st.tuples(addr6, addr6)),
    st.sampled_from([1, 6, 17, 58, 132, 47, 50]),
    st.integers(0, 65535),
    st.integers(0, 65535),
)
def test_community_id_equals_the_communityid_package(
    addrs: tuple[str, str], proto: int, sport: int, dport: int
) -> None:
    src, dst = addrs
    if proto in (1, 58):
        sport, dport = sport % 256, dport % 256
    ref_ports = (sport, dport) if proto in (1, 6, 17, 58, 132) else (None, None)
    ref = communityid.CommunityID().calc(communityid.FlowTuple(proto, src, dst, *ref_ports))
    assert community_id(proto, src, dst, sport, dport) == ref


def test_community_id_reference_vector() -> None:
    # the Community ID spec's baseline tuple (TCP 128.232.110.120:34855 -> 66.35.250.204:80), both ways
    assert community_id(6, "128.232.110.120", "66.35.250.204", 34855, 80) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert community_id(6, "66.35.250.204", "128.232.110.120", 80, 34855) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="


# --- attribution index

nets = st.tuples(st.integers(0, 255), st.integers(0, 255), st.sampled_from([8, 16, 24, 30, 32, 0])).map(
    lambda t: str(ipaddress.ip_network(f"10.{t[0]}.{t[1]}.0/{t[2]}", strict=False))
)


@settings(max_examples=100)
@given(
    st.lists(st.tuples(st.sampled_from(["wg0", "wg1"]), st.lists(nets, max_size=3)), max_size=8),
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)), max_size=20),
    st.sampled_from([None, "wg0", "wg1"]),
)
def test_tunnel_index_agrees_with_peer_directory(
    peers: list[tuple[str, list[str]]], ips: list[tuple[int, int, int]], iface: str | None
) -> None:
    d = PeerDirectory()
    by_iface: dict[str, list[PeerInfo]] = {}
    for n, (i, allowed) in enumerate(peers):
        by_iface.setdefault(i, []).append(PeerInfo(i, f"key{n}", None, tuple(allowed), None, 0.0))
    for i, ps in by_iface.items():
        d.publish(i, ps, 0.0)
    idx = TunnelIndex(d)
    for a, b, c in ips:
        ip = f"10.{a}.{b}.{c}"
        assert idx.lookup(ip, iface) == d.by_tunnel_ip(ip, iface)


def test_tunnel_index_follows_directory_changes() -> None:
    d = directory()
    idx = TunnelIndex(d)
    assert idx.lookup("10.222.0.12") is not None and idx.lookup("fd00:222::12").public_key == KEY2  # type: ignore[union-attr]
    d.publish("wg0", [], 1.0)
    assert idx.lookup("10.222.0.12") is None


@settings(max_examples=300)
@given(st.floats(min_value=0, max_value=4102444800, allow_nan=False))
def test_iso_equals_datetime_formatting(t: float) -> None:
    assert iso(t) == datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
