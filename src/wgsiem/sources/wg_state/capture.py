"""Captures of runtime state as ``<unix-ts>.dump`` files: what ``wgsiem record`` writes and ``replay`` reads.

A capture is ``wg show all dump`` text with two differences, so a capture never holds a secret yet
replays into exactly the events the live source emitted:

* private and preshared keys are written as ``fp:<keyed fingerprint>`` (the fingerprint the live
  source computed), never as keys;
* ``# wgsiem-capture implementation <interface> <name>`` comment lines keep what the dump format
  cannot say (wireguard-go or kernel).

The file name is the snapshot's time in epoch seconds with milliseconds (``1700000000.123.dump``); it
is the event time on replay. Plain ``wg show all dump > "$(date +%s).dump"`` files replay too: their keys
are fingerprinted with the replaying collector's secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from wgsiem.sources.wg_state.dump_parser import parse_dump
from wgsiem.sources.wg_state.records import Fingerprinter, InterfaceRecord, PeerRecord, Snapshot

__all__ = ["CAPTURE_NAME", "capture_text", "capture_time", "read_capture", "write_capture"]

CAPTURE_NAME = re.compile(r"^(\d{9,11}(?:\.\d{1,6})?)\.dump$")
_IMPL = "# wgsiem-capture implementation "


def capture_time(path: Path) -> float | None:
    m = CAPTURE_NAME.match(path.name)
    return float(m.group(1)) if m else None


def _interface_line(i: InterfaceRecord) -> str:
    priv = f"fp:{i.private_key_fingerprint}" if i.private_key_present else "(none)"
    fwmark = f"0x{i.fwmark:x}" if i.fwmark else "off"
    return f"{i.name}\t{priv}\t{i.public_key or '(none)'}\t{i.listen_port}\t{fwmark}"


def _peer_line(p: PeerRecord) -> str:
    psk = f"fp:{p.preshared_key_fingerprint}" if p.preshared_key_present else "(none)"
    allowed = ",".join(p.allowed_ips) if p.allowed_ips else "(none)"
    ka = str(p.persistent_keepalive) if p.persistent_keepalive else "off"
    return (
        f"{p.interface}\t{p.public_key}\t{psk}\t{p.endpoint or '(none)'}\t{allowed}\t"
        f"{p.latest_handshake}\t{p.rx_bytes}\t{p.tx_bytes}\t{ka}"
    )


def capture_text(interfaces: Iterable[tuple[InterfaceRecord, str, Iterable[PeerRecord]]]) -> str:
    """(interface, implementation, peers) triples → capture text."""
    head: list[str] = []
    body: list[str] = []
    for info, impl, peers in interfaces:
        head.append(f"{_IMPL}{info.name} {impl}")
        body.append(_interface_line(info))
        body.extend(map(_peer_line, peers))
    return "\n".join([*head, *body]) + "\n"


def write_capture(directory: Path, taken_at: float, text: str) -> Path:
    """Write atomically, mode 0600, as ``<taken_at>.dump``."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{taken_at:.3f}.dump"
    tmp = directory / f".{path.name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def read_capture(data: bytes, taken_at: float, fp: Fingerprinter, origin: str) -> Snapshot:
    """Capture bytes → the snapshot the live reader had produced (parse errors kept, located)."""
    parsed = parse_dump(data, fp, origin=origin)
    for line in data.split(b"\n", 256)[:256]:
        if line.startswith(_IMPL.encode()):
            parts = line[len(_IMPL) :].decode(errors="replace").split()
            if len(parts) == 2 and parts[0] in parsed.interfaces:
                impl = parts[1]
                if impl in ("wireguard-go", "kernel", "userspace", "unknown"):
                    parsed.interfaces[parts[0]].implementation = impl  # type: ignore[assignment]
    return Snapshot(
        taken_at=taken_at, interfaces=parsed.interfaces, errors=[e.render() for e in parsed.errors]
    )
