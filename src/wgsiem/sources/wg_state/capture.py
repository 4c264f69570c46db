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

**Keyframes and deltas.** A week of 10-second snapshots of 1,000 peers is 60,480 files; written in full
that is ~9 GB, almost all of it idle peers' unchanged lines. :class:`CaptureWriter` writes a full
snapshot (a *keyframe*) every ``keyframe_secs`` and, in between, *deltas* that start with
``# wgsiem-capture delta`` and hold every interface line but only the peer lines that changed, plus
``# wgsiem-capture removed <interface> <public key>`` for peers that went away. :class:`CaptureReader`
rebuilds each full snapshot in order, so replaying a delta capture is replaying the full one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from operator import itemgetter, methodcaller
from pathlib import Path

from wgsiem.private_file import write_private
from wgsiem.sources.wg_state.dump_parser import _interface_from_cols, parse_dump
from wgsiem.sources.wg_state.records import (
    Fingerprinter,
    InterfaceRecord,
    PeerRecord,
    Snapshot,
    SnapshotInterface,
)

__all__ = [
    "CAPTURE_NAME",
    "CaptureReader",
    "CaptureWriter",
    "capture_text",
    "capture_time",
    "read_capture",
    "write_capture",
]

CAPTURE_NAME = re.compile(r"^(\d{9,11}(?:\.\d{1,6})?)\.dump$")
_IMPL = "# wgsiem-capture implementation "
_IS_COMMENT = methodcaller("startswith", b"#")
_COUNT_TABS = methodcaller("count", b"\t")
_SPLIT2 = methodcaller("split", b"\t", 2)
_SECOND = itemgetter(1)
_DELTA = "# wgsiem-capture delta"
_REMOVED = "# wgsiem-capture removed "


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
    # no fsync per snapshot: a capture is append-only history, and a crash loses at most the last one
    write_private(path, text.encode(), fsync=False)
    return path


def read_capture(data: bytes, taken_at: float, fp: Fingerprinter, origin: str) -> Snapshot:
    """Capture bytes → the snapshot the live reader had produced (parse errors kept, located)."""
    parsed = parse_dump(data, fp, origin=origin)
    _set_implementations(data.split(b"\n", 256)[:256], parsed.interfaces)
    return Snapshot(
        taken_at=taken_at, interfaces=parsed.interfaces, errors=[e.render() for e in parsed.errors]
    )


def _set_implementations(lines: list[bytes], interfaces: dict[str, SnapshotInterface]) -> None:
    """Apply the ``# wgsiem-capture implementation <interface> <name>`` lines among ``lines``."""
    prefix = _IMPL.encode()
    for line in lines:
        if line.startswith(prefix):
            parts = line[len(_IMPL) :].decode(errors="replace").split()
            if len(parts) == 2 and parts[0] in interfaces:
                impl = parts[1]
                if impl in ("wireguard-go", "kernel", "userspace", "unknown"):
                    interfaces[parts[0]].implementation = impl  # type: ignore[assignment]


class CaptureWriter:
    """Writes keyframes every ``keyframe_secs`` and deltas in between (see the module docs)."""

    def __init__(self, directory: Path, keyframe_secs: float = 3600.0) -> None:
        self.directory = directory
        self.keyframe_secs = keyframe_secs
        self._last_keyframe: float | None = None
        self._prev: dict[str, dict[str, str]] = {}  # interface -> public key -> peer line

    def write(
        self, taken_at: float, interfaces: Iterable[tuple[InterfaceRecord, str, Iterable[PeerRecord]]]
    ) -> Path:
        cur: dict[str, dict[str, str]] = {}
        head: list[str] = []
        iface_lines: dict[str, str] = {}
        for info, impl, peers in interfaces:
            head.append(f"{_IMPL}{info.name} {impl}")
            iface_lines[info.name] = _interface_line(info)
            cur[info.name] = {p.public_key: _peer_line(p) for p in peers}
        keyframe = self._last_keyframe is None or taken_at - self._last_keyframe >= self.keyframe_secs
        body: list[str] = []
        if keyframe:
            self._last_keyframe = taken_at
            for name, line in iface_lines.items():
                body.append(line)
                body.extend(cur[name].values())
        else:
            head.insert(0, _DELTA)
            for name, line in iface_lines.items():
                prev = self._prev.get(name, {})
                body.append(line)
                body.extend(v for k, v in cur[name].items() if prev.get(k) != v)
                head.extend(f"{_REMOVED}{name} {k}" for k in prev if k not in cur[name])
        self._prev = cur
        return write_capture(self.directory, taken_at, "\n".join([*head, *body]) + "\n")


class CaptureReader:
    """Turns a time-ordered sequence of keyframes and deltas back into full captures.

    :meth:`snapshot` is the replay's entry point: it gives the :class:`Snapshot` that
    ``read_capture(full(data), …)`` gives, but for a well-formed delta it builds it from the kept peer
    lines directly instead of joining the whole text and splitting it again: a delta of 850 changed
    lines out of 1,000 then costs the 850 lines, and the differ finds the 150 others unchanged by their
    (cached) hashes. A delta or a kept line the fast path cannot vouch for (wrong column count, a bad
    interface line, a peer line under another interface) takes the full text path, with its located
    parse errors.
    """

    def __init__(self) -> None:
        # interface name → (interface line, raw key → peer line, keys of lines of the wrong shape)
        self._state: dict[str, tuple[bytes, dict[bytes, bytes], set[bytes]]] | None = None
        # interface → the record list of the last snapshot built by the fast path, and whether the
        # last delta kept every interface's peers and their order (no peer added or removed)
        self._lists: dict[str, list[bytes]] = {}
        self._same_peers: set[str] = set()
        self._infos: dict[bytes, InterfaceRecord] = {}  # interface line → record (fast path)
        self._infos_fp: Fingerprinter | None = None

    def full(self, data: bytes, origin: str) -> bytes:
        lines = data.split(b"\n")
        if not lines or lines[0] != _DELTA.encode():
            self._state = None
            self._remember(lines)
            return data
        head = self._apply_delta(lines, origin)
        return self._text(head)

    def snapshot(self, data: bytes, taken_at: float, fp: Fingerprinter, origin: str) -> Snapshot:
        """``read_capture(self.full(data, origin), taken_at, fp, origin)``, faster for deltas."""
        lines = data.split(b"\n")
        if not lines or lines[0] != _DELTA.encode():
            self._state = None
            self._lists = {}
            self._remember(lines)
            return read_capture(data, taken_at, fp, origin)
        head = self._apply_delta(lines, origin)
        snap = self._fast_snapshot(head, taken_at, fp)
        if snap is None:
            self._lists = {}
            return read_capture(self._text(head), taken_at, fp, origin)
        return snap

    def _apply_delta(self, lines: list[bytes], origin: str) -> list[bytes]:
        """Fold a delta's lines into the kept state; returns the head (comment) lines of the full text."""
        if self._state is None:
            raise ValueError(
                f"{origin}: a delta capture with no full snapshot before it — "
                "replay the whole capture directory (it starts with a keyframe)"
            )
        removed_prefix = _REMOVED.encode()
        comments = list(filter(_IS_COMMENT, lines))
        removed = {
            tuple(ln[len(_REMOVED) :].split(b" ", 1)) for ln in comments if ln.startswith(removed_prefix)
        }
        head = [ln for ln in comments if not ln.startswith(removed_prefix)][1:]
        new_state: dict[str, tuple[bytes, dict[bytes, bytes], set[bytes]]] = {}
        old_state = self._state
        tabs = list(map(_COUNT_TABS, lines))
        # Runs of 9-column lines are peer lines; the others (interface lines, comments, blank or odd
        # lines) are taken one by one. A run whose lines all name the current interface — every run
        # the recorder writes — is folded in with C-level loops; any other run line by line.
        marks = [i for i, n in enumerate(tabs) if n != 8]
        marks.append(len(lines))
        peers: dict[bytes, bytes] = {}
        bad: set[bytes] = set()
        current: str | None = None
        prefix = b""
        start = 0
        for m in marks:
            run = lines[start:m]
            if run:
                if current is not None and all(map(methodcaller("startswith", prefix), run)):
                    keys = list(map(_SECOND, map(_SPLIT2, run)))
                    peers.update(zip(keys, run, strict=True))
                    if bad:
                        bad.difference_update(keys)
                else:
                    for ln in run:
                        if ln.startswith(b"#"):
                            continue
                        cols = ln.split(b"\t", 2)
                        if current is not None and cols[0].decode(errors="replace") == current:
                            peers[cols[1]] = ln
                            if ln.startswith(prefix):
                                bad.discard(cols[1])
                            else:
                                bad.add(cols[1])
            start = m + 1
            if m == len(lines):
                break
            ln = lines[m]
            if not ln or ln.startswith(b"#"):
                continue
            cols = ln.split(b"\t", 2)
            name = cols[0].decode(errors="replace")
            if tabs[m] == 4:
                _, old, old_bad = old_state.get(name, (b"", {}, set()))
                peers = (
                    {k: v for k, v in old.items() if (cols[0], k) not in removed} if removed else dict(old)
                )
                bad = {k for k in old_bad if k in peers}
                new_state[name] = (ln, peers, bad)
                current = name
                prefix = cols[0] + b"\t"
            elif current is not None and name == current and len(cols) > 1:
                peers[cols[1]] = ln  # not 9 columns: kept (as the text path keeps it), never parsed here
                bad.add(cols[1])
        self._state = new_state
        self._same_peers = {
            name
            for name, (_, peers, _) in new_state.items()
            if name in old_state and len(peers) == len(old_state[name][1]) and not removed
        }
        return head

    def _text(self, head: list[bytes]) -> bytes:
        assert self._state is not None
        out = list(head)
        for info_line, peers, _ in self._state.values():
            out.append(info_line)
            out.extend(peers.values())
        return b"\n".join(out) + b"\n"

    def _fast_snapshot(self, head: list[bytes], taken_at: float, fp: Fingerprinter) -> Snapshot | None:
        """The snapshot of the kept state, or None if parsing its text could report an error."""
        assert self._state is not None
        if len(head) > 200 or any(b"\t" in ln for ln in head):
            return None
        if fp is not self._infos_fp or len(self._infos) > 1024:
            self._infos = {}
            self._infos_fp = fp
        interfaces: dict[str, SnapshotInterface] = {}
        for info_line, peers, bad in self._state.values():
            if bad:
                return None
            info = self._infos.get(info_line)
            if info is None:
                try:
                    info = _interface_from_cols(info_line.split(b"\t"), fp)
                except (ValueError, UnicodeDecodeError):
                    return None
                self._infos[info_line] = info
            if info.name in interfaces or not info_line.startswith(info.name.encode() + b"\t"):
                return None
            si = SnapshotInterface(info, "unknown", "dump", list(peers.values()))
            if info.name in self._same_peers:
                si.previous = self._lists.get(info.name)
            interfaces[info.name] = si
        self._lists = {name: si.records for name, si in interfaces.items()}
        _set_implementations(head, interfaces)
        return Snapshot(taken_at=taken_at, interfaces=interfaces, errors=[])

    def _remember(self, lines: list[bytes]) -> None:
        state: dict[str, tuple[bytes, dict[bytes, bytes], set[bytes]]] = {}
        current: str | None = None
        for ln in lines:
            if not ln or ln.startswith(b"#"):
                continue
            cols = ln.split(b"\t", 2)
            name = cols[0].decode(errors="replace")
            tabs = ln.count(b"\t")
            if tabs == 4:
                state[name] = (ln, {}, set())
                current = name
            elif current is not None and name == current and len(cols) > 1:
                state[name][1][cols[1]] = ln
                if tabs != 8 or not state[name][0].startswith(cols[0] + b"\t"):
                    state[name][2].add(cols[1])
        self._state = state
