"""Unit tests of the lab's UAPI framing and its minimal ``get`` parser (pure; no socket)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wgsiem.lab.topology import LabError
from wgsiem.lab.uapi import bulk_peer_lines, parse_get, set_body

KEY_A = "a" * 64
KEY_B = "b" * 64


def test_parse_get() -> None:
    raw = (
        f"private_key={'1' * 64}\nlisten_port=51820\n"
        f"public_key={KEY_A}\npreshared_key={'0' * 64}\nprotocol_version=1\nendpoint=203.0.113.11:40000\n"
        "last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\ntx_bytes=92\nrx_bytes=180\n"
        "persistent_keepalive_interval=0\nallowed_ip=10.222.0.11/32\nallowed_ip=10.222.100.0/24\n"
        f"public_key={KEY_B}\npreshared_key={'2' * 64}\nallowed_ip=10.222.0.12/32\n"
        "errno=0\n\n"
    ).encode()
    device = parse_get(raw)
    assert device.listen_port == 51820
    assert list(device.peers) == [KEY_A, KEY_B]
    a, b = device.peers[KEY_A], device.peers[KEY_B]
    assert (a.endpoint, a.last_handshake_sec, a.rx_bytes, a.tx_bytes) == (
        "203.0.113.11:40000",
        1700000000,
        180,
        92,
    )
    assert a.allowed_ips == ["10.222.0.11/32", "10.222.100.0/24"]
    assert (a.has_preshared_key, b.has_preshared_key) == (False, True)
    assert (b.endpoint, b.last_handshake_sec) == (None, 0)


@pytest.mark.parametrize("raw", [b"errno=1\n\n", b"listen_port=1\n", b""])
def test_parse_get_requires_errno_zero(raw: bytes) -> None:
    with pytest.raises(LabError):
        parse_get(raw)


def test_set_body_frames_one_request() -> None:
    assert (
        set_body(["listen_port=1", "replace_peers=true"]) == b"set=1\nlisten_port=1\nreplace_peers=true\n\n"
    )


def test_bulk_peer_lines_continue_from_start() -> None:
    assert bulk_peer_lines(5, [b"\x01" * 32]) == [
        f"public_key={'01' * 32}",
        "endpoint=203.0.113.101:1029",
        "allowed_ip=10.223.0.5/32",
    ]


@given(
    st.lists(
        st.tuples(st.binary(min_size=32, max_size=32), st.integers(0, 2**63), st.integers(0, 2**63)),
        unique_by=lambda t: t[0],
        max_size=20,
    )
)
def test_parse_get_round_trips_what_it_is_given(peers: list[tuple[bytes, int, int]]) -> None:
    lines = ["listen_port=51820"]
    for key, rx, tx in peers:
        lines += [f"public_key={key.hex()}", f"rx_bytes={rx}", f"tx_bytes={tx}"]
    device = parse_get(("\n".join(lines) + "\nerrno=0\n\n").encode())
    assert [(p.public_key_hex, p.rx_bytes, p.tx_bytes) for p in device.peers.values()] == [
        (k.hex(), rx, tx) for k, rx, tx in peers
    ]


FIXTURES = Path(__file__).parent.parent / "fixtures" / "wg"


def test_captured_uapi_answer_agrees_with_the_captured_dump() -> None:
    """The two real captures of one gateway describe the same peers, keys and counters."""
    raw = (FIXTURES / "uapi_3_peers.txt").read_bytes()
    assert raw.endswith(b"\nerrno=0\n\n")
    device = parse_get(raw)
    dump = [line.split("\t") for line in (FIXTURES / "dump_3_peers.txt").read_text().splitlines()]
    interface, peers = dump[0], dump[1:]
    assert device.listen_port == int(interface[3])
    from_dump = {
        base64.b64decode(p[1]).hex(): (p[3] if p[3] != "(none)" else None, int(p[5]), int(p[6]), int(p[7]))
        for p in peers
    }
    from_uapi = {
        k: (p.endpoint, p.last_handshake_sec, p.rx_bytes, p.tx_bytes) for k, p in device.peers.items()
    }
    assert from_uapi == from_dump
