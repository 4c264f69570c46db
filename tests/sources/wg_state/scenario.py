"""A synthetic history (as dump text) that makes the differ produce every ``wg_state`` action once."""

from __future__ import annotations

import base64

from wgsiem.sources.wg_state.differ import Change, Differ, DiffSettings
from wgsiem.sources.wg_state.dump_parser import parse_dump
from wgsiem.sources.wg_state.records import Fingerprinter, Snapshot

FP = Fingerprinter(b"s" * 32)


def key(i: int) -> str:
    return base64.b64encode(bytes([i]) * 32).decode()


def dump(port: int, priv: int, peers: list[tuple[int, int | None, str, str, int, int, int]]) -> bytes:
    """peers: (key id, psk id or None, endpoint, allowed, handshake, rx, tx)."""
    lines = [f"wg0\t{key(priv)}\t{key(priv + 1)}\t{port}\toff"]
    for i, psk, ep, allowed, hs, rx, tx in peers:
        lines.append(f"wg0\t{key(i)}\t{key(psk) if psk else '(none)'}\t{ep}\t{allowed}\t{hs}\t{rx}\t{tx}\t25")
    return ("\n".join(lines) + "\n").encode()


T0 = 1_764_000_000


def every_action() -> list[Change]:
    d = Differ(FP, DiffSettings(transfer_interval_secs=10), host="gw-test")
    steps: list[tuple[int, bytes | None]] = [
        (T0, dump(51820, 100, [(1, None, "(none)", "10.9.0.2/32", 0, 0, 0)])),
        (T0 + 10, dump(51820, 100, [(1, None, "203.0.113.7:40000", "10.9.0.2/32", T0 + 9, 1000, 2000)])),
        (T0 + 20, dump(51820, 100, [(1, None, "198.51.100.9:40001", "10.9.0.2/32", T0 + 9, 3000, 2500)])),
        (
            T0 + 30,
            dump(
                51820,
                100,
                [
                    (1, 50, "198.51.100.9:40001", "10.9.0.2/32,10.9.1.0/24", T0 + 29, 3000, 2500),
                    (2, None, "[2001:db8::7]:51000", "10.9.0.3/32,fd00:9::3/128", T0 + 28, 10, 10),
                ],
            ),
        ),
        (
            T0 + 40,
            dump(51821, 102, [(1, 50, "198.51.100.9:40001", "10.9.0.2/32,10.9.1.0/24", T0 + 29, 5, 5)]),
        ),
        (
            T0 + 400,
            dump(51821, 102, [(1, 50, "198.51.100.9:40001", "10.9.0.2/32,10.9.1.0/24", T0 + 399, 9, 9)]),
        ),
        (T0 + 410, None),
    ]
    out: list[Change] = []
    for t, data in steps:
        ifaces = parse_dump(data, FP).interfaces if data else {}
        out += d.update(Snapshot(float(t), ifaces, []))
    return out
