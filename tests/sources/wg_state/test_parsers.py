"""Dump and UAPI parsers on verbatim captures (tests/fixtures/wg/, real wireguard-go output) and on
arbitrary bytes (property tests)."""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.sources.wg_state.dump_parser import parse_dump, parse_dump_peer
from wgsiem.sources.wg_state.records import Fingerprinter, PeerRecord, split_endpoint
from wgsiem.sources.wg_state.uapi_parser import parse_uapi, parse_uapi_peer

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "wg"
FP = Fingerprinter(b"f" * 32)


def fixture(name: str) -> bytes:
    return (FIX / name).read_bytes()


def peers_of(data: bytes) -> dict[str, PeerRecord]:
    res = parse_dump(data, FP)
    assert res.errors == []
    return {
        r.public_key: r
        for si in res.interfaces.values()
        for r in (parse_dump_peer(x, FP) for x in si.peers.values())
    }


def test_dump_3_peers() -> None:
    res = parse_dump(fixture("dump_3_peers.txt"), FP)
    assert res.errors == []
    (iface,) = res.interfaces.values()
    assert iface.info.name == "wgfxg0"
    assert iface.info.public_key == "qz0GISMZ/W480H3UtC9TwjINLTYjj7xN/MROhLhm5Vo="
    assert iface.info.listen_port == 51820
    assert iface.info.fwmark == 0
    assert iface.info.private_key_present is True
    assert iface.info.private_key_fingerprint == FP.of_b64("oFsJXnerzsGRBysHbCPRpJLCoeLlqqfP712k+JimSno=")
    peers = peers_of(fixture("dump_3_peers.txt"))
    one = peers["d+jmLNQndGWP3LnG+idZjah/lfKqbMP8iJ5gYIK8mRM="]
    assert one == PeerRecord(
        interface="wgfxg0",
        public_key="d+jmLNQndGWP3LnG+idZjah/lfKqbMP8iJ5gYIK8mRM=",
        preshared_key_present=False,
        preshared_key_fingerprint=None,
        endpoint="203.0.113.11:49437",
        allowed_ips=("10.222.0.11/32", "10.222.100.0/24"),
        latest_handshake=1795622682,
        rx_bytes=4468,
        tx_bytes=2508,
        persistent_keepalive=0,
    )
    psk = peers["LMRy47Sg4S6IpX0TapE5XKyBED4Mbj15lG56zxQYzkM="]
    assert psk.preshared_key_present is True
    assert psk.preshared_key_fingerprint == FP.of_b64("Z2oRfL7ws4qZq56jZ90SuV6XXCKnXWtvrktf2kygOFc=")
    never = peers["piIgYnPUjoQQgE53+rN3poqqbKYf/185pcAeQjNF2F0="]
    assert (never.endpoint, never.latest_handshake, never.rx_bytes, never.allowed_ips) == (
        None,
        0,
        0,
        ("10.222.0.13/32",),
    )


def test_dump_2_interfaces() -> None:
    res = parse_dump(fixture("dump_2_interfaces.txt"), FP)
    assert res.errors == []
    assert list(res.interfaces) == ["wgfxg1", "wgfxg0"]  # kernel/UAPI order, as captured
    assert [len(i.peers) for i in res.interfaces.values()] == [2, 3]
    assert res.interfaces["wgfxg1"].info.listen_port == 51821


def test_dump_ipv6_endpoint() -> None:
    peers = peers_of(fixture("dump_ipv6.txt"))
    p = peers["5dW9U122tU9yPl4P4Op5XlegyWunv1leC7I4gYhpzzI="]
    assert p.endpoint == "[2001:db8:1::12]:37227"
    assert split_endpoint(p.endpoint) == ("2001:db8:1::12", 37227)


def test_uapi_matches_dump_of_the_same_interface() -> None:
    """The UAPI answer and `wg show all dump` of the same gateway give the same records."""
    res = parse_uapi("wgfxg0", fixture("uapi_3_peers.txt"), FP)
    assert res.errors == [] and res.errno == 0
    assert res.info is not None
    dump_iface = parse_dump(fixture("dump_3_peers.txt"), FP).interfaces["wgfxg0"]
    assert res.info == dump_iface.info  # public key derived from the private key, same fingerprint
    from_uapi = {r.public_key: r for r in (parse_uapi_peer("wgfxg0", b, FP) for b in res.peers.values())}
    assert from_uapi == peers_of(fixture("dump_3_peers.txt"))


def test_split_endpoint_forms() -> None:
    assert split_endpoint("192.0.2.1:51820") == ("192.0.2.1", 51820)
    assert split_endpoint("[2001:db8::1]:443") == ("2001:db8::1", 443)
    assert split_endpoint("[fe80::1%eth0]:51820") == ("fe80::1", 51820)
    assert split_endpoint(None) == (None, None)
    assert split_endpoint("Name or service not known") == (None, None)


def test_bad_lines_are_located_counted_and_skipped() -> None:
    good = fixture("dump_3_peers.txt").split(b"\n")
    data = (
        b"\n".join([good[0], good[1], b"garbage\tline", good[2], b"wgfxg0\tshort\t(none)", good[3]]) + b"\n"
    )
    res = parse_dump(data, FP, origin="capture.txt")
    assert [(e.location.line if e.location else None) for e in res.errors] == [3, 5]
    assert all(e.location and e.location.file == "capture.txt" for e in res.errors)
    assert len(res.interfaces["wgfxg0"].peers) == 3  # the good peers around the bad lines are kept


def test_errors_never_carry_key_material() -> None:
    priv = b"oFsJXnerzsGRBysHbCPRpJLCoeLlqqfP712k+JimSno="
    bad = b"wgfxg0\t" + priv + b"\tnot-a-key\tnotaport\toff\n"
    res = parse_dump(bad, FP)
    assert len(res.errors) == 1
    assert priv.decode() not in res.errors[0].render()


def test_uapi_truncated_answer_keeps_complete_peers() -> None:
    data = fixture("uapi_3_peers.txt")
    cut = data[: data.rindex(b"public_key=") + 40]  # last peer cut mid-key, terminator missing
    res = parse_uapi("wgfxg0", cut, FP)
    assert any("errno" in e.what for e in res.errors)
    assert len(res.peers) == 2


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_dump_parser_survives_arbitrary_bytes(data: bytes) -> None:
    res = parse_dump(data, FP)
    for si in res.interfaces.values():
        for raw in si.peers.values():
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                parse_dump_peer(raw, FP)
    for e in res.errors:
        assert e.location is not None and e.location.line is not None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(fixture("dump_3_peers.txt").split(b"\n")[1:4]) | st.binary(max_size=80), max_size=12
    )
)
def test_dump_parser_keeps_good_lines_between_bad_ones(lines: list[bytes]) -> None:
    head = fixture("dump_3_peers.txt").split(b"\n")[0]
    res = parse_dump(b"\n".join([head, *lines]), FP)
    good = {ln for ln in lines if ln in fixture("dump_3_peers.txt").split(b"\n")[1:4]}
    kept = set(res.interfaces["wgfxg0"].peers.values()) if "wgfxg0" in res.interfaces else set()
    assert good <= kept


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_uapi_parser_survives_arbitrary_bytes(data: bytes) -> None:
    res = parse_uapi("x", data, FP)
    for raw in res.peers.values():
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            parse_uapi_peer("x", raw, FP)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=600), st.integers(0, 3000))
def test_uapi_parser_survives_corruption_of_a_real_answer(noise: bytes, at: int) -> None:
    data = fixture("uapi_3_peers.txt")
    at = min(at, len(data))
    res = parse_uapi("wgfxg0", data[:at] + noise + data[at:], FP)
    for raw in res.peers.values():
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            parse_uapi_peer("wgfxg0", raw, FP)


def test_fingerprints_are_keyed() -> None:
    k = base64.b64encode(b"\x01" * 32).decode()
    assert Fingerprinter(b"a" * 32).of_b64(k) != Fingerprinter(b"b" * 32).of_b64(k)
    assert "secret" not in repr(FP) or "<secret>" in repr(FP)
