"""Pure parser: rtnetlink bytes (or pyroute2 messages) → frozen link, address and route records.

The runtime reads raw datagrams from the netlink socket and hands them to :func:`parse_netlink`, so
what the parser sees is exactly what the kernel sent; the same bytes captured in
``tests/fixtures/host/`` give the same records. Only the handful of fields a SIEM needs are decoded;
anything that does not fit its length becomes a :class:`~wgsiem.errors.ParseError` with the byte offset
and the messages around it are kept. The initial dump comes as pyroute2 messages
(:func:`records_from_messages`).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from wgsiem.errors import Location, ParseError

__all__ = [
    "AddrRecord",
    "LinkRecord",
    "NetlinkRecord",
    "RouteRecord",
    "parse_netlink",
    "records_from_messages",
]

Op = Literal["new", "del"]

IFF_UP = 0x1
RT_TABLE_LOCAL = 255
_HEADER = struct.Struct("=IHHII")

ROUTE_PROTOCOLS = {
    0: "unspec",
    1: "redirect",
    2: "kernel",
    3: "boot",
    4: "static",
    8: "gated",
    9: "ra",
    10: "mrt",
    11: "zebra",
    12: "bird",
    13: "dnrouted",
    14: "xorp",
    15: "ntk",
    16: "dhcp",
    42: "babel",
    186: "bgp",
    187: "isis",
    188: "ospf",
    189: "rip",
    192: "eigrp",
}
ROUTE_TYPES = {
    1: "unicast",
    2: "local",
    3: "broadcast",
    4: "anycast",
    5: "multicast",
    6: "blackhole",
    7: "unreachable",
    8: "prohibit",
    9: "throw",
    10: "nat",
}
ROUTE_SCOPES = {0: "universe", 200: "site", 253: "link", 254: "host", 255: "nowhere"}


@dataclass(frozen=True, slots=True)
class LinkRecord:
    op: Op
    index: int
    name: str
    kind: str | None  # IFLA_INFO_KIND: "wireguard", "tun", "veth", … (None for lo and plain devices)
    mtu: int | None
    up: bool  # administrative state (IFF_UP)
    oper_state: str  # IFLA_OPERSTATE: UP, DOWN, LOWERLAYERDOWN, UNKNOWN, …


@dataclass(frozen=True, slots=True)
class AddrRecord:
    op: Op
    index: int
    address: str
    prefix_length: int
    label: str | None


@dataclass(frozen=True, slots=True)
class RouteRecord:
    op: Op
    destination: str  # CIDR; "0.0.0.0/0" / "::/0" for a default route
    table: int
    oifs: tuple[int, ...]  # output interfaces (several for a multipath route)
    gateway: str | None
    protocol: str
    scope: str
    type: str
    metric: int | None
    prefsrc: str | None


NetlinkRecord = LinkRecord | AddrRecord | RouteRecord


def _op(event: str) -> Op:
    return "del" if event.startswith("RTM_DEL") else "new"


def _link(msg: Any) -> LinkRecord:
    kind = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    return LinkRecord(
        op=_op(msg["event"]),
        index=int(msg["index"]),
        name=str(msg.get("IFLA_IFNAME") or ""),
        kind=str(kind) if kind else None,
        mtu=msg.get("IFLA_MTU"),
        up=bool(int(msg["flags"]) & IFF_UP),
        oper_state=str(msg.get("IFLA_OPERSTATE") or "UNKNOWN"),
    )


def _addr(msg: Any) -> AddrRecord:
    # IFA_LOCAL is the interface's own address on point-to-point links; IFA_ADDRESS the peer's there
    address = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
    if not address:
        raise ValueError("address message without IFA_ADDRESS")
    return AddrRecord(
        op=_op(msg["event"]),
        index=int(msg["index"]),
        address=str(ipaddress.ip_address(address)),
        prefix_length=int(msg["prefixlen"]),
        label=msg.get("IFA_LABEL"),
    )


def _route(msg: Any) -> RouteRecord:
    family = int(msg["family"])
    if family not in (socket.AF_INET, socket.AF_INET6):
        raise ValueError(f"route family {family} is neither IPv4 nor IPv6")
    dst = msg.get("RTA_DST") or ("0.0.0.0" if family == socket.AF_INET else "::")
    net = ipaddress.ip_network(f"{dst}/{int(msg['dst_len'])}", strict=False)
    oifs: list[int] = []
    if msg.get("RTA_OIF") is not None:
        oifs.append(int(msg.get("RTA_OIF")))
    gateway = msg.get("RTA_GATEWAY")
    for hop in msg.get("RTA_MULTIPATH") or ():
        if hop.get("oif") is not None and int(hop["oif"]) not in oifs:
            oifs.append(int(hop["oif"]))
        gateway = gateway or hop.get("RTA_GATEWAY")
    table = msg.get("RTA_TABLE")
    return RouteRecord(
        op=_op(msg["event"]),
        destination=str(net),
        table=int(table if table is not None else msg["table"]),
        oifs=tuple(oifs),
        gateway=str(gateway) if gateway else None,
        protocol=ROUTE_PROTOCOLS.get(int(msg["proto"]), str(msg["proto"])),
        scope=ROUTE_SCOPES.get(int(msg["scope"]), str(msg["scope"])),
        type=ROUTE_TYPES.get(int(msg["type"]), str(msg["type"])),
        metric=msg.get("RTA_PRIORITY"),
        prefsrc=msg.get("RTA_PREFSRC"),
    )


_BUILDERS: dict[str, Callable[[Any], NetlinkRecord]] = {"LINK": _link, "ADDR": _addr, "ROUTE": _route}


def records_from_messages(
    messages: Iterable[Any], origin: str = "netlink"
) -> tuple[list[NetlinkRecord], list[ParseError]]:
    """Decoded pyroute2 messages (a dump or a monitored datagram) → records; other types are skipped."""
    records: list[NetlinkRecord] = []
    errors: list[ParseError] = []
    for i, msg in enumerate(messages):
        event = str(msg.get("event") or "")
        builder = _BUILDERS.get(event.removeprefix("RTM_NEW").removeprefix("RTM_DEL"))
        if builder is None:
            continue
        try:
            records.append(builder(msg))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            errors.append(
                ParseError(
                    f"{event} message {i} is malformed ({exc})",
                    location=Location(origin, offset=i),
                    fix="this is a kernel message wgsiem cannot read; report it with the capture",
                )
            )
    return records, errors


class _Bad(Exception):
    """A message whose fixed header or attributes do not fit its length."""


_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTA = struct.Struct("=HH")
_NEXTHOP = struct.Struct("=HBBi")
_U32 = struct.Struct("=I")
OPER_STATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
# nlmsg type → (family of record, op)
_TYPES = {16: ("link", "new"), 17: ("link", "del"), 20: ("addr", "new"), 21: ("addr", "del"),
          24: ("route", "new"), 25: ("route", "del")}  # fmt: skip


def _attrs(data: bytes, start: int, end: int) -> dict[int, bytes]:
    """rtattr TLVs between ``start`` and ``end`` → type → payload (the last one wins)."""
    out: dict[int, bytes] = {}
    off = start
    while off + _RTA.size <= end:
        length, atype = _RTA.unpack_from(data, off)
        if length < _RTA.size or off + length > end:
            raise _Bad(f"attribute at byte {off} claims {length} bytes")
        out[atype & 0x3FFF] = data[off + _RTA.size : off + length]  # strip NLA_F_NESTED / BYTEORDER
        off += (length + 3) & ~3
    return out


def _str(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _u32(raw: bytes | None) -> int | None:
    if raw is None:
        return None
    if len(raw) < 4:
        raise _Bad("32-bit attribute shorter than 4 bytes")
    return int(_U32.unpack_from(raw)[0])


def _ip(family: int, raw: bytes | None) -> str | None:
    if raw is None:
        return None
    if (family == socket.AF_INET and len(raw) == 4) or (family == socket.AF_INET6 and len(raw) == 16):
        return socket.inet_ntop(family, raw)
    raise _Bad(f"{len(raw)}-byte address in family {family}")


def _network(family: int, raw: bytes | None, plen: int) -> str:
    """``addr/plen`` with the host bits cleared (what ``ip route`` shows), without ``ipaddress``."""
    size = 4 if family == socket.AF_INET else 16
    if raw is None:
        raw = bytes(size)
    if len(raw) != size or plen > size * 8:
        raise _Bad(f"destination of {len(raw)} bytes with prefix length {plen}")
    bits = size * 8
    value = int.from_bytes(raw, "big") & (((1 << plen) - 1) << (bits - plen))
    return f"{socket.inet_ntop(family, value.to_bytes(size, 'big'))}/{plen}"


def _decode_link(op: Op, data: bytes, off: int, end: int) -> LinkRecord:
    if off + _IFINFO.size > end:
        raise _Bad("ifinfomsg truncated")
    _family, _type, index, flags, _change = _IFINFO.unpack_from(data, off)
    a = _attrs(data, off + _IFINFO.size, end)
    kind = None
    if 18 in a:  # IFLA_LINKINFO → IFLA_INFO_KIND
        info = _attrs(a[18], 0, len(a[18]))
        kind = _str(info[1]) if 1 in info else None
    oper = a.get(16)
    return LinkRecord(
        op=op,
        index=index,
        name=_str(a[3]) if 3 in a else "",
        kind=kind or None,
        mtu=_u32(a.get(4)),
        up=bool(flags & IFF_UP),
        oper_state=OPER_STATES[oper[0]] if oper and oper[0] < len(OPER_STATES) else "UNKNOWN",
    )


def _decode_addr(op: Op, data: bytes, off: int, end: int) -> AddrRecord | None:
    if off + _IFADDR.size > end:
        raise _Bad("ifaddrmsg truncated")
    family, prefixlen, _flags, _scope, index = _IFADDR.unpack_from(data, off)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    a = _attrs(data, off + _IFADDR.size, end)
    address = _ip(family, a.get(2) or a.get(1))  # IFA_LOCAL, else IFA_ADDRESS
    if address is None:
        raise _Bad("address message without IFA_ADDRESS")
    return AddrRecord(op, index, address, prefixlen, _str(a[3]) if 3 in a else None)


def _decode_route(op: Op, data: bytes, off: int, end: int) -> RouteRecord | None:
    if off + _RTMSG.size > end:
        raise _Bad("rtmsg truncated")
    family, dst_len, _src_len, _tos, table, proto, scope, rtype, _flags = _RTMSG.unpack_from(data, off)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None  # MPLS, multicast families: not ours
    a = _attrs(data, off + _RTMSG.size, end)
    destination = _network(family, a.get(1), dst_len)
    oifs: list[int] = []
    oif = _u32(a.get(4))
    if oif is not None:
        oifs.append(oif)
    gateway = _ip(family, a.get(5))
    if 9 in a:  # RTA_MULTIPATH: rtnexthop records, each with its own attributes
        mp, pos = a[9], 0
        while pos + _NEXTHOP.size <= len(mp):
            length, _f, _hops, ifindex = _NEXTHOP.unpack_from(mp, pos)
            if length < _NEXTHOP.size or pos + length > len(mp):
                raise _Bad("multipath next hop truncated")
            if ifindex not in oifs:
                oifs.append(ifindex)
            gateway = gateway or _ip(family, _attrs(mp, pos + _NEXTHOP.size, pos + length).get(5))
            pos += (length + 3) & ~3
    full_table = _u32(a.get(15))
    return RouteRecord(
        op=op,
        destination=destination,
        table=full_table if full_table is not None else table,
        oifs=tuple(oifs),
        gateway=gateway,
        protocol=ROUTE_PROTOCOLS.get(proto, str(proto)),
        scope=ROUTE_SCOPES.get(scope, str(scope)),
        type=ROUTE_TYPES.get(rtype, str(rtype)),
        metric=_u32(a.get(6)),
        prefsrc=_ip(family, a.get(7)),
    )


def parse_netlink(data: bytes, origin: str = "netlink") -> tuple[list[NetlinkRecord], list[ParseError]]:
    """One rtnetlink datagram → its link/address/route records and a ParseError per bad message.

    A small struct-based decoder of the three message types: pyroute2's general marshal costs about
    a millisecond a message, this about twenty microseconds, which is what keeps a route-table
    reload (tens of thousands of messages) from overrunning the socket. ``records_from_messages`` is
    the pyroute2 path used for the initial dump; a test holds both to the same records.
    """
    records: list[NetlinkRecord] = []
    errors: list[ParseError] = []
    off = 0
    while off < len(data):
        if len(data) - off < _HEADER.size:
            errors.append(
                ParseError(
                    f"truncated netlink header ({len(data) - off} bytes)",
                    location=Location(origin, offset=off),
                    fix="a netlink datagram must hold whole 16-byte headers",
                )
            )
            break
        length, mtype, _flags, _seq, _pid = _HEADER.unpack_from(data, off)
        if length < _HEADER.size or off + length > len(data):
            errors.append(
                ParseError(
                    f"netlink message length {length} does not fit the {len(data) - off} bytes left",
                    location=Location(origin, offset=off),
                    fix="the datagram is truncated or not rtnetlink",
                )
            )
            break
        known = _TYPES.get(mtype)
        if known is not None:
            what, op = known
            body, end = off + _HEADER.size, off + length
            try:
                rec: NetlinkRecord | None
                if what == "link":
                    rec = _decode_link(op, data, body, end)  # type: ignore[arg-type]
                elif what == "addr":
                    rec = _decode_addr(op, data, body, end)  # type: ignore[arg-type]
                else:
                    rec = _decode_route(op, data, body, end)  # type: ignore[arg-type]
                if rec is not None:
                    records.append(rec)
            except (_Bad, ValueError, struct.error) as exc:
                errors.append(
                    ParseError(
                        f"malformed message type {mtype}: {exc}",
                        location=Location(origin, offset=off),
                        fix="this is a kernel message wgsiem cannot read; report it with the capture",
                    )
                )
        off += (length + 3) & ~3
    return records, errors
