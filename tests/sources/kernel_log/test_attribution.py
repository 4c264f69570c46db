"""Kernel ``peer N`` → public key, against a PeerDirectory with published peers (unit)."""

from __future__ import annotations

from wgsiem.sources.kernel_log.attribution import Attribution, PeerAttributor
from wgsiem.sources.kernel_log.messages import parse_message
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

A = "A" * 43 + "="
B = "B" * 43 + "="
C = "C" * 43 + "="


def info(key: str, endpoint: str | None, first_seen: float = 100.0, iface: str = "wg0") -> PeerInfo:
    return PeerInfo(iface, key, endpoint, (), None, first_seen)


def directory(*peers: PeerInfo, at: float = 100.0) -> PeerDirectory:
    d = PeerDirectory()
    by_iface: dict[str, list[PeerInfo]] = {}
    for p in peers:
        by_iface.setdefault(p.interface, []).append(p)
    for iface, ps in by_iface.items():
        d.publish(iface, ps, at)
    return d


def attribute(att: PeerAttributor, text: str, at: float = 200.0) -> Attribution:
    msg = parse_message("wireguard: " + text)
    assert msg is not None
    if msg.action == "peer-created":
        att.observe(msg)
        return att.attribute(msg, at)
    got = att.attribute(msg, at)
    att.observe(msg)
    return got


def test_endpoint_then_peer_map_for_lines_without_endpoint() -> None:
    att = PeerAttributor(directory(info(A, "203.0.113.1:51820"), info(B, "203.0.113.2:51820")))
    assert attribute(
        att, "wg0: Receiving handshake initiation from peer 7 (203.0.113.2:51820)"
    ) == Attribution(B, "endpoint", "high")
    assert attribute(att, "wg0: Keypair 3 created for peer 7") == Attribution(B, "peer-map", "high")
    assert attribute(att, "wg0: Keypair 3 created for peer 8") == Attribution(None, "none", "none")


def test_ipv6_endpoint() -> None:
    att = PeerAttributor(directory(info(A, "[2001:db8::1]:51820"), info(B, "203.0.113.2:51820")))
    got = attribute(att, "wg0: Receiving keepalive packet from peer 3 ([2001:db8::1]:51820/0%0)")
    assert got == Attribution(A, "endpoint", "high")


def test_nat_rewrote_the_port_gives_medium() -> None:
    att = PeerAttributor(directory(info(A, "203.0.113.1:51820"), info(B, "203.0.113.2:51820")))
    got = attribute(att, "wg0: Receiving keepalive packet from peer 3 (203.0.113.1:40000)")
    assert got == Attribution(A, "endpoint-ip", "medium")


def test_two_peers_behind_one_address_is_ambiguous() -> None:
    att = PeerAttributor(directory(info(A, "203.0.113.1:1000"), info(B, "203.0.113.1:2000")))
    got = attribute(att, "wg0: Receiving keepalive packet from peer 3 (203.0.113.1:3000)")
    assert got == Attribution(None, "none", "none", 2)


def test_other_interface_does_not_match() -> None:
    att = PeerAttributor(directory(info(A, "203.0.113.1:51820", iface="wg1")))
    got = attribute(att, "wg0: Receiving keepalive packet from peer 3 (203.0.113.1:51820)")
    assert got.method == "none"


def test_endpoint_history_at_the_time_of_the_line() -> None:
    d = directory(info(A, "203.0.113.1:51820"), info(B, "203.0.113.2:51820"), at=100.0)
    d.publish("wg0", [info(A, "198.51.100.9:51820"), info(B, "203.0.113.2:51820")], 300.0)  # A roamed at 300
    att = PeerAttributor(d)
    old = attribute(att, "wg0: Receiving keepalive packet from peer 3 (203.0.113.1:51820)", at=200.0)
    assert old == Attribution(A, "endpoint", "high")


def test_creation_order() -> None:
    d = directory(info(A, None, 100.0), info(B, None, 100.0), info(C, None, 150.0))
    att = PeerAttributor(d)
    for n in (4, 5, 6):
        attribute(att, f"wg0: Peer {n} created")
    # "Peer 6 created" completed the count, so 6 was attributed (and learned) right then
    assert attribute(att, "wg0: Keypair 1 created for peer 6") == Attribution(C, "peer-map", "low")
    assert attribute(att, "wg0: Sending handshake initiation to peer 4 ((einval))") == Attribution(
        A, "creation-order", "low"
    )
    assert attribute(att, "wg0: Keypair 2 created for peer 4") == Attribution(A, "peer-map", "low")


def test_creation_order_needs_equal_counts() -> None:
    att = PeerAttributor(directory(info(A, None), info(B, None)))
    attribute(att, "wg0: Peer 4 created")
    assert attribute(att, "wg0: Keypair 1 created for peer 4").method == "none"


def test_module_reload_and_peer_destroyed_forget() -> None:
    att = PeerAttributor(directory(info(A, "203.0.113.1:51820")))
    attribute(att, "wg0: Receiving keepalive packet from peer 3 (203.0.113.1:51820)")
    assert 3 in att.map
    attribute(att, "wg0: Peer 3 (203.0.113.1:51820) destroyed")
    assert 3 not in att.map
    attribute(att, "wg0: Receiving keepalive packet from peer 3 (203.0.113.1:51820)")
    msg = parse_message("wireguard: WireGuard 1.0.0 loaded. See www.wireguard.com for information.")
    assert msg is not None
    att.observe(msg)
    assert att.map == {}


def test_map_is_bounded_and_persisted() -> None:
    peers = [info(chr(ord("A") + i) * 43 + "=", f"203.0.113.{i + 1}:51820") for i in range(20)]
    att = PeerAttributor(directory(*peers), max_entries=16)
    for i in range(20):
        attribute(att, f"wg0: Receiving keepalive packet from peer {i} (203.0.113.{i + 1}:51820)")
    assert list(att.map) == list(range(4, 20))
    again = PeerAttributor(PeerDirectory(), max_entries=16)
    again.restore_state(att.export_state())
    assert again.map == att.map
    assert attribute(again, "wg0: Keypair 1 created for peer 19").public_key == peers[19].public_key


def test_empty_directory_says_unknown() -> None:
    att = PeerAttributor(PeerDirectory())
    got = attribute(att, "wg0: Receiving keepalive packet from peer 3 (203.0.113.1:51820)")
    assert got == Attribution(None, "none", "none")
