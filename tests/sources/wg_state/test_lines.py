"""The byte-template NDJSON lines are ``encode_document(to_ecs(change))``, byte for byte."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.event import event_id
from wgsiem.sinks.ndjson.encoder import EncodeError, encode_document
from wgsiem.sources.wg_state.differ import Change
from wgsiem.sources.wg_state.lines import LineEncoder
from wgsiem.sources.wg_state.normalize import to_ecs
from wgsiem.sources.wg_state.records import InterfaceRecord, PeerRecord

T0 = 1_767_571_200.0


def _key(i: int) -> str:
    return base64.b64encode(hashlib.sha256(f"k{i}".encode()).digest()).decode()


IFACES = [
    InterfaceRecord("wg0", _key(100), True, "0123456789abcdef", 51820, 0),
    InterfaceRecord("wg1", None, False, None, 0, 0x1234),
]
ENDPOINTS = st.sampled_from([None, "203.0.113.7:51820", "[2001:db8::1]:4500", "198.51.100.200:1"])
ALLOWED = st.sampled_from(
    [(), ("10.8.0.2/32",), ("10.8.0.0/24", "fd00::2/128"), ("0.0.0.0/0", "::/0"), ("192.0.2.9/32",)]
)
COUNTER = st.one_of(st.integers(0, 10**12), st.integers(0, (1 << 64) - 1))
SESSION = st.one_of(st.none(), st.just(""), st.just("aba26aa595351f19d0afe29878e7aaab"))


def _peer(
    iface: InterfaceRecord, i: int, ep: str | None, allowed: tuple[str, ...], hs: int, rx: int, tx: int
):
    psk = "00aa11bb22cc33dd" if i % 2 else None
    return PeerRecord(iface.name, _key(i), psk is not None, psk, ep, allowed, hs, rx, tx, 25 * (i % 3 == 0))


def _expected(c: Change, host: str, at: float) -> object:
    """The encoded document, or the document itself when JSON cannot express it."""
    doc = to_ecs(c, hostname=host, observed_at=at)
    try:
        return encode_document(doc)
    except EncodeError:
        return doc


@given(
    host=st.sampled_from(["gw", 'g"w\\%s%d%%', "gäteway-ü", "\ue000wgsiem-slot-1\ue001"]),
    iface=st.sampled_from(IFACES),
    impl=st.sampled_from(["wireguard-go", "kernel", "userspace", "unknown"]),
    i=st.integers(0, 5),
    ep=ENDPOINTS,
    allowed=ALLOWED,
    hs=st.one_of(st.just(0), st.integers(1_700_000_000, 1_800_000_000)),
    rx=COUNTER,
    tx=COUNTER,
    trx=COUNTER,
    ttx=COUNTER,
    interval=st.floats(0, 10**6, allow_nan=False),
    dt=st.sampled_from([0.0, 0.001, 0.25, 0.999, 10.5]),
    sid=SESSION,
)
@settings(max_examples=400, deadline=None)
def test_transfer_and_handshake_lines_are_the_encoded_documents(
    host, iface, impl, i, ep, allowed, hs, rx, tx, trx, ttx, interval, dt, sid
) -> None:
    enc = LineEncoder(host)
    at = T0 + dt
    peer = _peer(iface, i, ep, allowed, hs, rx, tx)
    changes = [
        Change(
            "transfer",
            at,
            iface,
            impl,
            peer,
            {"rx_bytes": trx, "tx_bytes": ttx, "interval_secs": interval, "session_id": sid},
            event_id("t", i, rx, tx, dt),
        ),
        Change("handshake", float(hs or T0), iface, impl, peer, {"session_id": sid}, event_id("h", i, hs)),
    ]
    # twice: the first builds each template, the second fills it
    for _ in range(2):
        for c in changes:
            assert enc.line(c, at) == _expected(c, host, at)
    assert enc.lines(changes, at) == [_expected(c, host, at) for c in changes]


def test_templates_are_used_for_the_busy_actions_and_other_actions_fall_back() -> None:
    enc = LineEncoder("gw")
    iface = IFACES[0]
    peer = _peer(iface, 1, "203.0.113.7:51820", ("10.8.0.2/32",), int(T0), 100, 200)
    det = {"rx_bytes": 5, "tx_bytes": 6, "interval_secs": 60.0, "session_id": "ab"}
    busy = [Change("transfer", T0 + 10 * n, iface, "kernel", peer, det, f"{n:032x}") for n in range(5)]
    other = Change("peer-added", T0, iface, "kernel", peer, {"initial_sync": True}, "0" * 32)
    lines = enc.lines([*busy, other], T0)
    assert lines == [_expected(c, "gw", T0) for c in [*busy, other]]
    assert (enc.templated, enc.fallbacks) == (5, 1)


def test_a_counter_past_63_bits_is_written_by_the_encoder_itself() -> None:
    enc = LineEncoder("gw")
    iface = IFACES[0]
    peer = _peer(iface, 1, None, (), 0, (1 << 64) - 1, 0)
    c = Change("handshake", T0, iface, "kernel", peer, {"session_id": None}, "1" * 32)
    assert enc.line(c, T0) == _expected(c, "gw", T0)
    assert (enc.fallbacks, enc.unencodable) == (1, 0)


def test_an_event_json_cannot_express_comes_back_as_its_document() -> None:
    enc = LineEncoder("gw")
    iface = IFACES[0]
    peer = _peer(iface, 1, None, (), 0, 1, 1)
    big = (1 << 64) - 1
    det = {"rx_bytes": big, "tx_bytes": big, "interval_secs": 1.0, "session_id": None}
    c = Change("transfer", T0, iface, "kernel", peer, det, "2" * 32)
    assert enc.line(c, T0) == to_ecs(c, hostname="gw", observed_at=T0)
    assert enc.unencodable == 1
