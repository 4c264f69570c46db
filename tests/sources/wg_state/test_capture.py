"""Captures: keyframes + deltas rebuild exactly the full snapshots; keys never written."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.sources.wg_state.capture import CaptureReader, CaptureWriter, capture_text, read_capture
from wgsiem.sources.wg_state.records import Fingerprinter, InterfaceRecord, PeerRecord

FP = Fingerprinter(b"s" * 32)
KEYS = [f"{c * 43}=" for c in "ABCDEFGH"]


def _iface(name: str) -> InterfaceRecord:
    return InterfaceRecord(name, KEYS[7], True, "00112233445566aa", 51820, 0)


def _peer(iface: str, k: int, rx: int, ep: int) -> PeerRecord:
    return PeerRecord(
        iface,
        KEYS[k],
        k % 2 == 0,
        "ffeeddccbbaa9988" if k % 2 == 0 else None,
        f"192.0.2.{ep}:51820",
        (f"10.0.0.{k + 2}/32",),
        1700000000 + rx,
        rx,
        rx * 2,
        25,
    )


states = st.lists(  # a sequence of snapshots: which peers exist and their counters
    st.dictionaries(st.integers(0, 6), st.tuples(st.integers(0, 50), st.integers(1, 3)), max_size=7),
    min_size=1,
    max_size=8,
)


@given(seq=states, keyframe=st.sampled_from([1.0, 2.5, 100.0]))
@settings(max_examples=60, deadline=None)
def test_deltas_rebuild_every_full_snapshot(tmp_path_factory, seq, keyframe) -> None:
    d: Path = tmp_path_factory.mktemp("cap")
    writer = CaptureWriter(d, keyframe_secs=keyframe)
    expected = []
    for t, peers in enumerate(seq):
        triple = [
            (
                _iface("wg0"),
                "wireguard-go",
                [_peer("wg0", k, rx, ep) for k, (rx, ep) in sorted(peers.items())],
            )
        ]
        writer.write(1700000000.0 + t, triple)
        expected.append(read_capture(capture_text(triple).encode(), 0.0, FP, "x"))
    reader = CaptureReader()
    for t, exp in enumerate(expected):
        data = (d / f"{1700000000.0 + t:.3f}.dump").read_bytes()
        got = read_capture(reader.full(data, "x"), 0.0, FP, "x")
        assert got.errors == []
        assert set(got.interfaces) == set(exp.interfaces)
        for name, si in exp.interfaces.items():
            assert sorted(got.interfaces[name].records) == sorted(si.records)
            assert got.interfaces[name].info == si.info
            assert got.interfaces[name].implementation == "wireguard-go"


def test_a_delta_without_its_keyframe_is_refused(tmp_path: Path) -> None:
    w = CaptureWriter(tmp_path, keyframe_secs=100)
    trip = [(_iface("wg0"), "kernel", [_peer("wg0", 1, 1, 1)])]
    w.write(1700000000.0, trip)
    w.write(1700000010.0, [(_iface("wg0"), "kernel", [_peer("wg0", 1, 2, 1)])])
    delta = (tmp_path / "1700000010.000.dump").read_bytes()
    assert delta.startswith(b"# wgsiem-capture delta")
    try:
        CaptureReader().full(delta, "1700000010.000.dump")
    except ValueError as exc:
        assert "no full snapshot before it" in str(exc)
    else:
        raise AssertionError("a lone delta was accepted")


def test_captured_fingerprints_replace_keys_and_round_trip() -> None:
    trip = [(_iface("wg0"), "kernel", [_peer("wg0", 0, 5, 1)])]
    text = capture_text(trip)
    assert "fp:00112233445566aa" in text and "fp:ffeeddccbbaa9988" in text
    snap = read_capture(text.encode(), 1.0, FP, "x")
    si = snap.interfaces["wg0"]
    assert si.info.private_key_fingerprint == "00112233445566aa"
    assert si.implementation == "kernel"
