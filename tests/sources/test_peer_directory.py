"""The shared peer directory: the lookups other sources correlate with."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

K = [f"{c * 43}=" for c in "ABCDEF"]


def _p(i: int, endpoint: str | None, *allowed: str, iface: str = "wg0") -> PeerInfo:
    return PeerInfo(iface, K[i], endpoint, tuple(allowed), None, 1000.0 + i)


def test_lookups_by_key_abbreviation_endpoint_and_tunnel_ip() -> None:
    d = PeerDirectory()
    d.publish(
        "wg0",
        [
            _p(0, "192.0.2.1:51820", "10.0.0.2/32"),
            _p(1, "[2001:db8::1]:4500", "10.0.0.0/24", "fd00::/64"),
            _p(2, None, "0.0.0.0/0"),
        ],
        at=10.0,
    )
    assert d.by_key(K[0]) is not None and d.by_key(K[0]).endpoint == "192.0.2.1:51820"
    assert d.by_key(K[0], interface="wg9") is None
    assert [p.public_key for p in d.by_abbreviation("AAAA", "AAAA")] == [K[0]]  # key[0:4]…key[39:43]
    assert [p.public_key for p in d.by_abbreviation("AAAA", "AAA=")] == [K[0]]
    assert [p.public_key for p in d.by_endpoint("2001:db8::1", 4500)] == [K[1]]
    assert d.by_endpoint("2001:db8::1", 9) == []
    assert d.by_tunnel_ip("10.0.0.2").public_key == K[0]  # /32 beats /24
    assert d.by_tunnel_ip("10.0.0.77").public_key == K[1]
    assert d.by_tunnel_ip("fd00::5").public_key == K[1]
    assert d.by_tunnel_ip("198.51.100.1") is None  # only the /0 holds it: no owner
    assert d.by_tunnel_ip("not an ip") is None


def test_endpoint_history_answers_for_a_past_time() -> None:
    d = PeerDirectory()
    d.publish("wg0", [_p(0, "192.0.2.1:1")], at=10.0)
    d.publish("wg0", [_p(0, "198.51.100.7:2")], at=20.0)  # roamed
    assert [p.public_key for p in d.by_endpoint("192.0.2.1", at=15.0)] == [K[0]]
    assert d.by_endpoint("192.0.2.1") == []  # not its endpoint now
    assert d.endpoint_history(K[0]) == [(10.0, "192.0.2.1:1"), (20.0, "198.51.100.7:2")]


def test_providers_are_read_lazily_once_per_generation() -> None:
    calls = []

    def provider() -> list[PeerInfo]:
        calls.append(1)
        return [_p(3, "192.0.2.9:1", "10.9.0.1/32")]

    d = PeerDirectory()
    d.attach(provider)
    assert calls == []
    assert d.by_tunnel_ip("10.9.0.1").public_key == K[3]
    assert len(d) == 1
    assert calls == [1]
    d.invalidate()
    d.by_key(K[3])
    assert calls == [1, 1]


nets = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 32)).map(
    lambda t: str(ipaddress.ip_network((t[0] >> (32 - t[1]) << (32 - t[1]), t[1])))
)


@given(st.lists(st.lists(nets, min_size=1, max_size=3), min_size=1, max_size=6), st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_tunnel_ip_is_the_longest_prefix_match(allowed: list[list[str]], addr: int) -> None:
    d = PeerDirectory()
    peers = [_p(i, None, *a) for i, a in enumerate(allowed)]
    d.publish("wg0", peers, at=0.0)
    ip = ipaddress.ip_address(addr)
    best: tuple[int, str] | None = None
    for p in peers:  # the first peer listing a network wins a tie, as the index keeps the first
        for cidr in p.allowed_ips:
            n = ipaddress.ip_network(cidr)
            if ip in n and (best is None or n.prefixlen > best[0]):
                best = (n.prefixlen, p.public_key)
    got = d.by_tunnel_ip(str(ip))
    assert (got.public_key if got else None) == (best[1] if best else None)
