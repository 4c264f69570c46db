"""Writing the simulated telemetry in the formats ``wgsiem replay`` reads.

* ``telemetry/wg_state/<ts>.dump`` — captures exactly as ``wgsiem record`` writes them: a keyframe every
  ``keyframe_secs``, deltas (``# wgsiem-capture delta``) in between holding only changed peer lines.
  The simulator keeps each peer's line and rewrites only the dirty ones, so a tick of 10,000 peers of
  which 800 are active costs 800 lines, not 10,000.
* ``telemetry/config/<ts>.<iface>.conf`` — config snapshots (``config_watch`` replay naming).
* ``telemetry/logs/kern.log`` — RSYSLOG_FileFormat kernel lines (ISO 8601 time with zone).
* ``telemetry/context/context.ndjson`` — identity (MFA), EDR and change-ticket records, time ordered.
* ``telemetry/flows/flows.pcap`` — NetFlow v5 export datagrams in a pcap, as ``tcpdump`` would save them.
"""

from __future__ import annotations

import datetime as dt
import socket
import struct
from pathlib import Path
from typing import Any

import orjson

__all__ = ["CaptureOut", "FlowOut", "iso", "write_config", "write_lines"]

_DELTA = "# wgsiem-capture delta"
_IMPL = "# wgsiem-capture implementation "


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"


def peer_line(
    iface: str, key: str, endpoint: str | None, allowed: str, hs: int, rx: int, tx: int, keepalive: int
) -> str:
    return (
        f"{iface}\t{key}\t(none)\t{endpoint or '(none)'}\t{allowed}\t{hs}\t{rx}\t{tx}\t"
        f"{keepalive if keepalive else 'off'}"
    )


class CaptureOut:
    """Keyframes and deltas of one interface (see ``wgsiem.sources.wg_state.capture``)."""

    def __init__(self, directory: Path, iface: str, iface_line: str, keyframe_secs: float) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.iface = iface
        self.iface_line = iface_line
        self.keyframe_secs = keyframe_secs
        self.lines: dict[str, str] = {}  # key -> current line (insertion order = dump order)
        self._last_keyframe: float | None = None
        self.files = 0
        self.bytes = 0

    def write(self, t: float, dirty: set[str]) -> None:
        head = [f"{_IMPL}{self.iface} kernel"]
        if self._last_keyframe is None or t - self._last_keyframe >= self.keyframe_secs:
            self._last_keyframe = t
            body = [self.iface_line, *self.lines.values()]
        else:
            head.insert(0, _DELTA)
            body = [self.iface_line, *(self.lines[k] for k in dirty if k in self.lines)]
        data = ("\n".join([*head, *body]) + "\n").encode()
        (self.directory / f"{t:.3f}.dump").write_bytes(data)
        self.files += 1
        self.bytes += len(data)


def write_config(directory: Path, t: float, iface: str, peers: list[tuple[str, str, str]]) -> Path:
    """A config snapshot ``<t>.<iface>.conf`` with (comment name, key, allowed ips) peers, no secrets."""
    directory.mkdir(parents=True, exist_ok=True)
    out = ["[Interface]", "Address = 10.8.0.1/16", "ListenPort = 51820", ""]
    for name, key, allowed in peers:
        out += ["[Peer]", f"# {name}", f"PublicKey = {key}", f"AllowedIPs = {allowed}", ""]
    path = directory / f"{t:.3f}.{iface}.conf"
    path.write_text("\n".join(out))
    return path


def write_lines(path: Path, rows: list[tuple[float, str]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.sort(key=lambda r: r[0])
    with open(path, "w") as fh:
        for _t, line in rows:
            fh.write(line + "\n")
    return len(rows)


def context_line(record: dict[str, Any]) -> str:
    return orjson.dumps(record).decode()


class FlowOut:
    """NetFlow v5 datagrams (≤ 30 records each) from one exporter, written as a pcap (raw IPv4)."""

    def __init__(self, exporter: str = "10.8.0.1", collector: str = "127.0.0.1", boot: float = 0.0) -> None:
        self.exporter = socket.inet_aton(exporter)
        self.collector = socket.inet_aton(collector)
        self.boot = boot
        self.flows: list[tuple[float, str, str, int, int, int, int, int]] = []
        self.sequence = 0

    def add(
        self, t: float, src: str, dst: str, sport: int, dport: int, proto: int, packets: int, octets: int
    ) -> None:
        self.flows.append((t, src, dst, sport, dport, proto, packets, octets))

    def write(self, path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.flows.sort(key=lambda f: f[0])
        with open(path, "wb") as fh:
            fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))  # LINKTYPE_RAW
            i = 0
            n = len(self.flows)
            while i < n:
                t = self.flows[i][0]
                chunk = [self.flows[i]]
                i += 1
                while i < n and len(chunk) < 30 and self.flows[i][0] - t < 1.0:
                    chunk.append(self.flows[i])
                    i += 1
                export_t = chunk[-1][0] + 1.0
                fh.write(self._packet(export_t, chunk))
        return n

    def _packet(self, t: float, chunk: list[tuple[float, str, str, int, int, int, int, int]]) -> bytes:
        uptime = int((t - self.boot) * 1000) & 0xFFFFFFFF
        secs = int(t)
        payload = struct.pack(
            "!HHIIIIBBH", 5, len(chunk), uptime, secs, int((t - secs) * 1e9), self.sequence, 0, 0, 0
        )
        self.sequence += len(chunk)
        for ft, src, dst, sport, dport, proto, packets, octets in chunk:
            first = int((ft - self.boot) * 1000) & 0xFFFFFFFF
            last = int((ft + 0.5 - self.boot) * 1000) & 0xFFFFFFFF
            payload += struct.pack(
                "!4s4s4sHHIIIIHHBBBBHHBBH",
                socket.inet_aton(src),
                socket.inet_aton(dst),
                b"\0\0\0\0",
                1,
                2,
                packets,
                octets,
                first,
                last,
                sport,
                dport,
                0,
                0x1B if proto == 6 else 0,
                proto,
                0,
                0,
                0,
                32,
                24,
                0,
            )
        udp_len = 8 + len(payload)
        udp = struct.pack("!HHHH", 40000, 2055, udp_len, 0) + payload
        total = 20 + len(udp)
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 17, 0, self.exporter, self.collector)
        csum = _checksum(hdr)
        hdr = hdr[:10] + struct.pack("!H", csum) + hdr[12:]
        frame = hdr + udp
        secs = int(t)
        return struct.pack("<IIII", secs, int((t - secs) * 1e6), len(frame), len(frame)) + frame


def _checksum(data: bytes) -> int:
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF
