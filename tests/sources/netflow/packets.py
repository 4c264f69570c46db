"""Builders of NetFlow v5 / v9 / IPFIX datagrams, byte for byte as the format reference lays them out
(``shared/reference/formats/08_netflow_ipfix.md``), for hand-checked unit and property tests."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Sequence

FIXTURES = __import__("pathlib").Path(__file__).resolve().parents[2] / "fixtures" / "netflow"

Field = tuple[int, int] | tuple[int, int, int]  # (ie, length) or (ie, length, enterprise)


def v5_header(
    count: int, *, uptime: int, secs: int, nsecs: int = 0, seq: int = 0, sampling: int = 0
) -> bytes:
    return struct.pack(">HHIIIIBBH", 5, count, uptime, secs, nsecs, seq, 0, 0, sampling)


def v5_record(
    src: str,
    dst: str,
    *,
    sport: int,
    dport: int,
    proto: int,
    pkts: int,
    octets: int,
    first: int,
    last: int,
    flags: int = 0,
    tos: int = 0,
    nexthop: str = "0.0.0.0",
    in_if: int = 0,
    out_if: int = 0,
) -> bytes:
    return struct.pack(
        ">4s4s4sHHIIIIHHxBBBHHBBxx",
        socket.inet_aton(src),
        socket.inet_aton(dst),
        socket.inet_aton(nexthop),
        in_if,
        out_if,
        pkts,
        octets,
        first,
        last,
        sport,
        dport,
        flags,
        proto,
        tos,
        0,
        0,
        0,
        0,
    )


def pad4(body: bytes) -> bytes:
    return body + b"\0" * (-len(body) % 4)


def flowset(set_id: int, body: bytes, *, pad: bool = True) -> bytes:
    body = pad4(body) if pad else body
    return struct.pack(">HH", set_id, len(body) + 4) + body


def field_specs(fields: Sequence[Field], *, ipfix: bool) -> bytes:
    out = b""
    for f in fields:
        ie, length = f[0], f[1]
        if len(f) == 3:
            assert ipfix
            out += struct.pack(">HHI", ie | 0x8000, length, f[2])
        else:
            out += struct.pack(">HH", ie, length)
    return out


def template_record(tid: int, fields: Sequence[Field], *, ipfix: bool) -> bytes:
    return struct.pack(">HH", tid, len(fields)) + field_specs(fields, ipfix=ipfix)


def ipfix_options_template(tid: int, scope: Sequence[Field], fields: Sequence[Field]) -> bytes:
    return struct.pack(">HHH", tid, len(scope) + len(fields), len(scope)) + field_specs(
        [*scope, *fields], ipfix=True
    )


def v9_options_template(
    tid: int, scope: Sequence[tuple[int, int]], fields: Sequence[tuple[int, int]]
) -> bytes:
    return struct.pack(">HHH", tid, 4 * len(scope), 4 * len(fields)) + field_specs(
        [*scope, *fields], ipfix=False
    )


def v9_packet(sets: Iterable[bytes], *, uptime: int, secs: int, seq: int = 0, source_id: int = 0) -> bytes:
    sets = list(sets)
    return struct.pack(">HHIIII", 9, len(sets), uptime, secs, seq, source_id) + b"".join(sets)


def ipfix_packet(sets: Iterable[bytes], *, export_time: int, seq: int = 0, domain: int = 0) -> bytes:
    body = b"".join(sets)
    return struct.pack(">HHIII", 10, 16 + len(body), export_time, seq, domain) + body


def varlen(value: bytes) -> bytes:
    """RFC 7011 §7 variable-length encoding."""
    if len(value) < 255:
        return bytes([len(value)]) + value
    return b"\xff" + struct.pack(">H", len(value)) + value


def ip4(a: str) -> bytes:
    return socket.inet_aton(a)


def ip6(a: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, a)
