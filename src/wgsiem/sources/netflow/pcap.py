"""NetFlow/IPFIX export datagrams out of pcap and pcapng captures, for ``wgsiem replay``.

Reading the capture container is done by ``dpkt`` (pure Python, BSD, maintained since 2004, reads pcap
with micro- and nanosecond timestamps and pcapng); the link, IP and UDP layers are taken apart here
because only a few link types matter and each must be checked against the captured length.

A UDP payload is an export datagram when its first two bytes are version 5, 9 or 10; anything else in
the capture (other traffic) is skipped. A datagram is kept with the capture timestamp (the receive
time) and the IP source address (the exporter). IP fragments are not reassembled: a fragmented
datagram is reported, as is one cut short by the capture's snap length.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from socket import AF_INET6, inet_ntoa, inet_ntop

import dpkt

from wgsiem.errors import Location, ParseError
from wgsiem.sources.netflow.records import Datagram

__all__ = ["PCAP_MAGICS", "is_capture", "parse_frame", "read_datagrams"]

PCAP_MAGICS = (
    b"\xd4\xc3\xb2\xa1",  # pcap, microseconds, little-endian
    b"\xa1\xb2\xc3\xd4",  # pcap, microseconds, big-endian
    b"\x4d\x3c\xb2\xa1",  # pcap, nanoseconds, little-endian
    b"\xa1\xb2\x3c\x4d",  # pcap, nanoseconds, big-endian
    b"\x0a\x0d\x0d\x0a",  # pcapng section header block
)
_NETFLOW_VERSIONS = (b"\x00\x05", b"\x00\x09", b"\x00\x0a")
_ETH = 1
_NULL, _LOOP = 0, 108
_RAW = (101, 12, 14)
_SLL, _SLL2 = 113, 276
_ETH_IP = {0x0800: 4, 0x86DD: 6}
_VLAN = (0x8100, 0x88A8)
_FIX_FRAG = "capture on the collector host, or make the exporter send datagrams below the path MTU"
_FIX_SNAP = "capture with a snap length of at least 65535 (tcpdump -s 0)"


def is_capture(head: bytes) -> bool:
    return head[:4] in PCAP_MAGICS


def _ip_offset(link: int, frame: bytes) -> int | None:
    """Where the IP header starts in a frame of link type ``link`` (``None``: not IP / unknown)."""
    if link == _ETH:
        off = 12
        while len(frame) >= off + 2:
            ethertype = struct.unpack_from(">H", frame, off)[0]
            if ethertype in _VLAN:
                off += 4
                continue
            return off + 2 if ethertype in _ETH_IP else None
        return None
    if link in _RAW:
        return 0
    if link in (_NULL, _LOOP):
        return 4
    if link == _SLL:
        return 16 if len(frame) >= 16 and frame[14:16] in (b"\x08\x00", b"\x86\xdd") else None
    if link == _SLL2:
        return 20 if len(frame) >= 20 and frame[0:2] in (b"\x08\x00", b"\x86\xdd") else None
    return None


def parse_frame(link: int, frame: bytes, ts: float, where: str) -> Datagram | ParseError | None:
    """One captured frame → the export datagram it carries, an error, or ``None`` (not NetFlow)."""
    off = _ip_offset(link, frame)
    if off is None or len(frame) < off + 20:
        return None
    version = frame[off] >> 4
    if version == 4:
        ihl = (frame[off] & 0x0F) * 4
        if frame[off + 9] != 17 or ihl < 20:
            return None
        total = struct.unpack_from(">H", frame, off + 2)[0]
        frag = struct.unpack_from(">H", frame, off + 6)[0]
        src = inet_ntoa(frame[off + 12 : off + 16])
        udp = off + ihl
        if frag & 0x3FFF:
            if frag & 0x1FFF == 0 and frame[udp + 8 : udp + 10] in _NETFLOW_VERSIONS:
                return ParseError(
                    f"fragmented export datagram from {src}", location=Location(where), fix=_FIX_FRAG
                )
            return None
        ip_end = off + total
    elif version == 6:
        if len(frame) < off + 40 or frame[off + 6] != 17:  # no extension headers expected on exports
            return None
        src = inet_ntop(AF_INET6, frame[off + 8 : off + 24])
        udp = off + 40
        ip_end = udp + struct.unpack_from(">H", frame, off + 4)[0]
    else:
        return None
    if len(frame) < udp + 8:
        return None
    sport, _dport, ulen = struct.unpack_from(">HHH", frame, udp)
    payload = frame[udp + 8 : min(udp + max(ulen, 8), ip_end)]
    if payload[:2] not in _NETFLOW_VERSIONS:
        return None
    if udp + ulen > len(frame):
        return ParseError(
            f"export datagram from {src} cut to {len(payload)} of {ulen - 8} bytes by the capture",
            location=Location(where),
            fix=_FIX_SNAP,
        )
    return Datagram(src, sport, bytes(payload), ts)


def read_datagrams(path: Path) -> Iterator[tuple[float, Datagram | ParseError]]:
    """Every export datagram in a pcap/pcapng file, in file order, with its capture timestamp."""
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        try:
            reader: dpkt.pcap.Reader | dpkt.pcapng.Reader = (
                dpkt.pcapng.Reader(f) if head == PCAP_MAGICS[-1] else dpkt.pcap.Reader(f)
            )
            link = reader.datalink()
        except (ValueError, dpkt.dpkt.Error, struct.error) as exc:
            yield 0.0, ParseError(f"not a readable capture: {exc}", location=Location(str(path), offset=0))
            return
        n = 0
        ts = 0.0
        it = iter(reader)
        while True:
            try:
                ts, frame = next(it)
            except StopIteration:
                return
            except (ValueError, dpkt.dpkt.Error, struct.error) as exc:
                yield (
                    float(ts),
                    ParseError(
                        f"capture is damaged after packet {n}: {exc}",
                        location=Location(f"{path}#packet{n + 1}"),
                        fix="the rest of the file is skipped; re-capture or repair it (e.g. pcapfix)",
                    ),
                )
                return
            n += 1
            got = parse_frame(link, frame, float(ts), f"{path}#packet{n}")
            if got is not None:
                yield float(ts), got
