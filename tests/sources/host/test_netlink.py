"""The pure rtnetlink parser and the tracker, on real datagrams captured from a namespace."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.ecs import validate
from wgsiem.errors import ParseError
from wgsiem.sources.host.netlink import AddrRecord, LinkRecord, RouteRecord, parse_netlink
from wgsiem.sources.host.normalize import to_ecs
from wgsiem.sources.host.tracker import HostTracker
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

FIXTURE = Path(__file__).parents[2] / "fixtures" / "host" / "rtnetlink_session.ndjson"
PEER_KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="


def datagrams() -> list[tuple[str, bytes]]:
    out = []
    for line in FIXTURE.read_text().splitlines():
        o = json.loads(line)
        out.append((o["command"], bytes.fromhex(o["hex"])))
    return out


def records_for(command: str) -> list[Any]:
    recs: list[Any] = []
    for cmd, data in datagrams():
        if cmd == command:
            r, errors = parse_netlink(data)
            assert errors == []
            recs.extend(r)
    return recs


def test_link_mtu_message() -> None:
    assert records_for("ip link set wgcap0 mtu 1420") == [
        LinkRecord(op="new", index=2, name="wgcap0", kind="tun", mtu=1420, up=False, oper_state="DOWN")
    ]


def test_address_and_its_kernel_routes() -> None:
    assert records_for("ip addr add 10.77.0.1/24 dev wgcap0") == [
        AddrRecord(op="new", index=2, address="10.77.0.1", prefix_length=24, label="wgcap0"),
        RouteRecord("new", "10.77.0.1/32", 255, (2,), None, "kernel", "host", "local", None, "10.77.0.1"),
        RouteRecord("new", "10.77.0.0/24", 254, (2,), None, "kernel", "link", "unicast", None, "10.77.0.1"),
        RouteRecord(
            "new", "10.77.0.255/32", 255, (2,), None, "kernel", "link", "broadcast", None, "10.77.0.1"
        ),
    ]


def test_ipv6_route() -> None:
    assert records_for("ip -6 route add 2001:db8:77::/64 dev wgcap0") == [
        RouteRecord("new", "2001:db8:77::/64", 254, (2,), None, "boot", "universe", "unicast", 1024, None)
    ]


def directory(*peers: PeerInfo) -> PeerDirectory:
    pd = PeerDirectory()
    by_iface: dict[str, list[PeerInfo]] = {}
    for p in peers:
        by_iface.setdefault(p.interface, []).append(p)
    for iface, ps in by_iface.items():
        pd.publish(iface, ps, 0.0)
    return pd


def baseline_tracker(pd: PeerDirectory) -> HostTracker:
    tracker = HostTracker(pd)
    tracker.baseline(
        [
            LinkRecord("new", 1, "lo", None, 65536, True, "UNKNOWN"),
            LinkRecord("new", 2, "wgcap0", "tun", 1500, False, "DOWN"),
            LinkRecord("new", 4, "v0", "veth", 1500, False, "DOWN"),
        ]
    )
    return tracker


def replay_session(tracker: HostTracker) -> list[tuple[str, str | None, dict[str, Any]]]:
    out = []
    for _cmd, data in datagrams():
        records, errors = parse_netlink(data)
        assert errors == []
        out.extend((c.action, c.interface, c.details) for c in tracker.update(records))
    return out


def test_session_changes_without_peers() -> None:
    changes = replay_session(baseline_tracker(PeerDirectory()))
    assert [(a, i) for a, i, _ in changes] == [
        ("mtu-changed", "wgcap0"),
        ("interface-up", "wgcap0"),
        ("address-added", "wgcap0"),
        ("route-added", "wgcap0"),  # 10.77.0.0/24, the address's kernel route
        ("route-added", "wgcap0"),  # 10.77.1.0/24
        ("route-added", "wgcap0"),  # 2001:db8:77::/64
        ("interface-down", "wgcap0"),
        ("route-removed", "wgcap0"),
        ("address-removed", "wgcap0"),
        ("link-deleted", "wgcap0"),
    ]
    assert changes[0][2]["mtu"] == {"old": 1500, "new": 1420}
    assert changes[1][2]["state"] == {"old": "down", "new": "up"}
    assert changes[4][2]["destination"] == "10.77.1.0/24"


def test_route_through_other_device_into_allowed_ips_is_a_hijack_of_that_peer() -> None:
    peer = PeerInfo("wgcap0", PEER_KEY, "203.0.113.11:51820", ("10.77.0.5/32",), None, 0.0)
    tracker = baseline_tracker(directory(peer))
    changes = [c for c in _changes(tracker) if c.action.startswith("route-hijack")]
    assert [(c.action, c.interface, c.details["destination"], c.peers) for c in changes] == [
        ("route-hijack", "wgcap0", "10.77.0.5/32", (peer,)),
        ("route-hijack-removed", "wgcap0", "10.77.0.5/32", (peer,)),
    ]


def test_less_specific_route_or_route_on_the_peer_interface_is_no_hijack() -> None:
    peer = PeerInfo("wgcap0", PEER_KEY, None, ("10.77.0.5/32", "10.77.1.0/25"), None, 0.0)
    tracker = baseline_tracker(directory(peer))
    tracker.update([LinkRecord("new", 4, "v0", "veth", 1500, True, "UP")])
    less_specific = RouteRecord("new", "10.77.0.0/16", 254, (4,), None, "boot", "link", "unicast", None, None)
    default = RouteRecord(
        "new", "0.0.0.0/0", 254, (4,), "10.0.0.1", "boot", "universe", "unicast", None, None
    )
    own = RouteRecord("new", "10.77.1.0/25", 254, (2,), None, "boot", "link", "unicast", None, None)
    changes = tracker.update([less_specific, default, own])
    assert [(c.action, c.peers) for c in changes] == [("route-added", (peer,))]


def test_existing_hijack_is_reported_at_start() -> None:
    peer = PeerInfo("wgcap0", PEER_KEY, None, ("10.77.0.5/32",), None, 0.0)
    tracker = HostTracker(directory(peer))
    changes = tracker.baseline(
        [
            LinkRecord("new", 2, "wgcap0", "tun", 1420, True, "UP"),
            LinkRecord("new", 4, "v0", "veth", 1500, True, "UP"),
            RouteRecord("new", "10.77.0.5/32", 254, (4,), None, "boot", "link", "unicast", None, None),
        ]
    )
    assert [(c.action, c.details["initial_sync"]) for c in changes] == [("route-hijack", True)]


def _changes(tracker: HostTracker) -> list[Any]:
    out = []
    for _cmd, data in datagrams():
        records, _ = parse_netlink(data)
        out.extend(tracker.update(records))
    return out


def test_every_document_is_ecs_and_hijack_is_an_alert() -> None:
    peer = PeerInfo("wgcap0", PEER_KEY, None, ("10.77.0.5/32",), None, 0.0)
    tracker = baseline_tracker(directory(peer))
    docs = [
        to_ecs(c, hostname="gw", namespace="ns1", at=1_700_000_000.5 + i, sequence=i)
        for i, c in enumerate(_changes(tracker))
    ]
    assert [p for d in docs for p in validate(d)] == []
    (alert,) = [d for d in docs if d["event"]["kind"] == "alert"]
    assert alert["event"]["action"] == "route-hijack"
    assert alert["event"]["severity"] == 73
    assert alert["wireguard"]["peer"]["public_key"] == PEER_KEY
    assert alert["wireguard"]["route"]["devices"] == ["v0"]
    assert alert["destination"]["ip"] == "10.77.0.5"
    assert alert["rule"]["id"] == "wgsiem-host-route-hijack"
    assert alert["threat"]["technique"]["id"] == ["T1557"]
    ids = [d["event"]["id"] for d in docs]
    assert len(set(ids)) == len(ids)
    again = [
        to_ecs(c, hostname="gw", namespace="ns1", at=1_700_000_000.5 + i, sequence=i)
        for i, c in enumerate(_changes(baseline_tracker(directory(peer))))
    ]
    assert [d["event"]["id"] for d in again] == ids  # same observation, same id
    assert orjson.dumps(docs)  # serialisable


def test_truncated_and_garbage_datagrams_are_parse_errors_with_offset() -> None:
    good = datagrams()[0][1]
    records, errors = parse_netlink(good[:-8])
    assert records == [] and len(errors) == 1
    assert errors[0].location is not None and errors[0].location.offset == 0
    _, errors = parse_netlink(b"\x01\x02\x03")
    assert "truncated netlink header" in errors[0].what


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    records, errors = parse_netlink(data)
    assert all(isinstance(e, ParseError) for e in errors)
    assert all(isinstance(r, LinkRecord | AddrRecord | RouteRecord) for r in records)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=15), st.binary(min_size=1, max_size=64), st.integers(0, 100))
def test_corrupted_real_datagrams_never_raise(which: int, junk: bytes, at: int) -> None:
    data = bytearray(datagrams()[which][1])
    pos = min(at, len(data) - 1)
    data[pos : pos + len(junk)] = junk[: len(data) - pos]
    _records, errors = parse_netlink(bytes(data))
    assert all(isinstance(e, ParseError) for e in errors)


def test_good_datagram_after_bad_one_is_kept() -> None:
    """One bad datagram costs only itself: the runtime parses datagram by datagram."""
    bad = struct.pack("=IHHII", 9999, 16, 0, 0, 0)
    tracker = baseline_tracker(PeerDirectory())
    seen = []
    errors = []
    for data in (bad, datagrams()[0][1]):
        recs, errs = parse_netlink(data)
        errors += errs
        seen += tracker.update(recs)
    assert len(errors) == 1 and [c.action for c in seen] == ["mtu-changed"]


def test_struct_decoder_agrees_with_pyroute2_on_every_captured_datagram() -> None:
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl

    from wgsiem.sources.host.netlink import records_from_messages

    for _cmd, data in datagrams():
        ours, errors = parse_netlink(data)
        theirs, their_errors = records_from_messages(MarshalRtnl().parse(data))
        assert (ours, errors) == (theirs, their_errors == [] and [])


def test_socket_error_marker_is_recognised() -> None:
    from wgsiem.sources.host.source import socket_error

    assert socket_error(struct.pack("IHHQIQQ", 28, 2, 0, 0, 105, 0, 0)) == 105  # what pyroute2 queues
    assert all(socket_error(d) is None for _c, d in datagrams())


def test_resync_after_overrun_reports_what_changed_meanwhile() -> None:
    tracker = baseline_tracker(PeerDirectory())
    changes = tracker.baseline(
        [
            LinkRecord("new", 1, "lo", None, 65536, True, "UNKNOWN"),
            LinkRecord("new", 2, "wgcap0", "tun", 1280, True, "UP"),  # MTU and state changed unseen
            LinkRecord("new", 7, "wgnew0", "tun", 1420, False, "DOWN"),  # created unseen
        ]  # v0 (index 4) is gone: not WireGuard, so no event
    )
    assert [(c.action, c.interface) for c in changes] == [
        ("mtu-changed", "wgcap0"),
        ("interface-up", "wgcap0"),
        ("link-created", "wgnew0"),
    ]
    assert 4 not in tracker.links


def test_bad_message_inside_a_datagram_costs_only_itself() -> None:
    route = records_for("ip route add 10.77.1.0/24 dev wgcap0")[0]
    raw = next(d for c, d in datagrams() if c == "ip route add 10.77.1.0/24 dev wgcap0")
    broken = bytearray(raw)
    struct.pack_into("=H", broken, 16 + 12, 999)  # first attribute claims more bytes than the message has
    link = datagrams()[0][1]
    records, errors = parse_netlink(bytes(broken) + link + raw, "dgram")
    assert records == [records_for("ip link set wgcap0 mtu 1420")[0], route]
    assert [(e.what, e.location.offset if e.location else None) for e in errors] == [
        ("malformed message type 24: attribute at byte 28 claims 999 bytes", 0)
    ]


def test_interfaces_filter_reports_only_matching_links() -> None:
    tracker = HostTracker(PeerDirectory(), interfaces=("v*",))
    tracker.baseline(
        [
            LinkRecord("new", 2, "wgcap0", "tun", 1500, False, "DOWN"),
            LinkRecord("new", 4, "v0", "veth", 1500, False, "DOWN"),
        ]
    )
    changes = tracker.update(
        [
            LinkRecord("new", 2, "wgcap0", "tun", 1420, False, "DOWN"),
            LinkRecord("new", 4, "v0", "veth", 1400, False, "DOWN"),
        ]
    )
    assert [(c.action, c.interface) for c in changes] == [("mtu-changed", "v0")]
