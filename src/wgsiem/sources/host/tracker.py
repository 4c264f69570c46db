"""Pure state of one namespace's links and routes: records in, :class:`HostChange` out.

Why state: a netlink ``RTM_NEWLINK`` says how a link *is*, not what changed; the tracker remembers the
last MTU, admin state and name per interface index to say "MTU 1420 → 1280". Route checks ask the
:class:`~wgsiem.sources.peer_directory.PeerDirectory` at the moment the route appears.

**Route hijack** (route poisoning): WireGuard sends a packet to a peer only if the kernel routes it to
the WireGuard interface. A route whose destination lies *inside* a peer's AllowedIPs (as long a prefix
or longer) through any other device wins by longest prefix and takes that peer's traffic away from the
tunnel — in clear text, to wherever the other device leads. That is reported as an alert attributed to
the peer. A *less* specific overlapping route (a default route) never wins against the tunnel's own
route and is not a hijack.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from wgsiem.sources.host.netlink import RT_TABLE_LOCAL, AddrRecord, LinkRecord, NetlinkRecord, RouteRecord
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

__all__ = ["HostChange", "HostTracker", "LinkState"]


@dataclass(frozen=True, slots=True)
class HostChange:
    action: str
    interface: str | None
    details: dict[str, Any]
    peers: tuple[PeerInfo, ...] = ()


@dataclass(slots=True)
class LinkState:
    index: int
    name: str
    kind: str | None
    mtu: int | None
    up: bool
    oper_state: str


@dataclass(slots=True)
class HostTracker:
    """Folds records into link state and yields the changes worth an event.

    ``interfaces``: patterns of interfaces to report (empty = WireGuard interfaces only);
    ``wireguard_patterns``: names taken as WireGuard besides kind ``wireguard`` and the directory's.
    """

    peers: PeerDirectory
    interfaces: tuple[str, ...] = ()
    wireguard_patterns: tuple[str, ...] = ("wg*",)
    include_local_table: bool = False
    links: dict[int, LinkState] = field(default_factory=dict)
    records_seen: int = 0
    hijacks: set[tuple[str, int, tuple[int, ...]]] = field(default_factory=set)
    _index: dict[tuple[int, int], dict[int, list[PeerInfo]]] = field(default_factory=dict)
    _index_generation: int = -1

    # ------------------------------------------------------------ classification
    def is_wireguard(self, name: str, kind: str | None) -> bool:
        if kind == "wireguard":
            return True
        if any(fnmatch.fnmatchcase(name, p) for p in self.wireguard_patterns):
            return True
        return name in self.peers.interfaces()

    def watched(self, name: str, kind: str | None) -> bool:
        if self.interfaces:
            return any(fnmatch.fnmatchcase(name, p) for p in self.interfaces)
        return self.is_wireguard(name, kind)

    def name_of(self, index: int) -> str:
        st = self.links.get(index)
        return st.name if st else f"if{index}"

    # ------------------------------------------------------------ folding
    def baseline(self, records: Iterable[NetlinkRecord]) -> list[HostChange]:
        """The state found by a dump (at start, and again after the socket overran): links are
        remembered silently; routes hijacking a peer's AllowedIPs that were not already reported are
        (``initial_sync``) — a poisoned table must not hide behind a restart or a lost message."""
        out: list[HostChange] = []
        deferred: list[RouteRecord] = []
        resync = bool(self.links)
        seen: set[int] = set()
        for rec in records:
            if isinstance(rec, LinkRecord):
                seen.add(rec.index)
                if resync:  # after an overrun: what changed while messages were lost is still told
                    out.extend(self._link(rec))
                else:
                    self._remember(rec)
            elif isinstance(rec, RouteRecord):
                deferred.append(rec)
        if resync:
            for index in [i for i in self.links if i not in seen]:
                st = self.links[index]
                gone = LinkRecord("del", index, st.name, st.kind, st.mtu, st.up, st.oper_state)
                out.extend(self._link(gone))
        before, self.hijacks = self.hijacks, set()
        for route in deferred:
            self.records_seen += 1
            change = self._hijack(route)
            if change is not None and _route_key(route) not in before:
                change.details["initial_sync"] = True
                out.append(change)
        return out

    def update(self, records: Iterable[NetlinkRecord]) -> list[HostChange]:
        out: list[HostChange] = []
        for rec in records:
            self.records_seen += 1
            if isinstance(rec, LinkRecord):
                out.extend(self._link(rec))
            elif isinstance(rec, AddrRecord):
                out.extend(self._addr(rec))
            else:
                change = self._route(rec)
                if change is not None:
                    out.append(change)
        return out

    def _remember(self, rec: LinkRecord) -> None:
        self.links[rec.index] = LinkState(rec.index, rec.name, rec.kind, rec.mtu, rec.up, rec.oper_state)

    def _link(self, rec: LinkRecord) -> list[HostChange]:
        old = self.links.get(rec.index)
        if rec.op == "del":
            self.links.pop(rec.index, None)
            if self.watched(rec.name, rec.kind or (old.kind if old else None)):
                return [HostChange("link-deleted", rec.name, _link_details(rec))]
            return []
        self._remember(rec)
        if not self.watched(rec.name, rec.kind):
            return []
        if old is None:
            return [HostChange("link-created", rec.name, _link_details(rec))]
        out: list[HostChange] = []
        base = _link_details(rec)
        if old.name != rec.name:
            out.append(HostChange("interface-renamed", rec.name, {**base, "name": {"old": old.name}}))
        if old.mtu != rec.mtu:
            out.append(HostChange("mtu-changed", rec.name, {**base, "mtu": {"old": old.mtu, "new": rec.mtu}}))
        if old.up != rec.up:
            state = {"old": "up" if old.up else "down", "new": "up" if rec.up else "down"}
            out.append(
                HostChange("interface-up" if rec.up else "interface-down", rec.name, {**base, "state": state})
            )
        return out

    def _addr(self, rec: AddrRecord) -> list[HostChange]:
        st = self.links.get(rec.index)
        name = st.name if st else f"if{rec.index}"
        if not self.watched(name, st.kind if st else None):
            return []
        action = "address-added" if rec.op == "new" else "address-removed"
        details = {"address": rec.address, "prefix_length": rec.prefix_length, "index": rec.index}
        if rec.label and rec.label != name:
            details["label"] = rec.label
        return [HostChange(action, name, details)]

    def _route(self, rec: RouteRecord) -> HostChange | None:
        if rec.table == RT_TABLE_LOCAL and not self.include_local_table:
            return None
        overlapping = self._overlapping(rec)
        hijack = self._hijack(rec, overlapping)
        if hijack is not None:
            return hijack
        devices = [self.links.get(i) for i in rec.oifs]
        watched = [d for d in devices if d is not None and self.watched(d.name, d.kind)]
        if not watched:
            return None
        name = watched[0].name
        owners = tuple(p for p in overlapping if p.interface == name)
        action = "route-added" if rec.op == "new" else "route-removed"
        return HostChange(action, name, _route_details(rec, self), owners)

    def _peer_index(self) -> dict[tuple[int, int], dict[int, list[PeerInfo]]]:
        """(IP version, prefix length) → network as int → peers; rebuilt once per directory generation,
        so a route costs one dict lookup per distinct AllowedIPs prefix length, not one per peer."""
        if self._index_generation == self.peers.generation:
            return self._index
        index: dict[tuple[int, int], dict[int, list[PeerInfo]]] = {}
        for p in self.peers.peers():
            for cidr in p.allowed_ips:
                try:
                    net = ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    continue
                if net.prefixlen == 0:  # a client's "route everything" owns no particular destination
                    continue
                bucket = index.setdefault((net.version, net.prefixlen), {})
                bucket.setdefault(int(net.network_address), []).append(p)
        self._index = index
        self._index_generation = self.peers.generation
        return index

    def _overlapping(self, rec: RouteRecord) -> list[PeerInfo]:
        """Peers whose AllowedIPs hold the route's whole destination (route at least as specific)."""
        index = self._peer_index()
        if not index:
            return []
        version, addr, dst_len, bits = _parse_net(rec.destination)
        out: list[PeerInfo] = []
        for (v, plen), nets in index.items():
            if v != version or plen > dst_len:
                continue
            mask = ((1 << plen) - 1) << (bits - plen)
            for p in nets.get(addr & mask, ()):
                if p not in out:
                    out.append(p)
        return out

    def _hijack(self, rec: RouteRecord, overlapping: list[PeerInfo] | None = None) -> HostChange | None:
        if rec.type not in ("unicast", "local") or not rec.oifs:
            return None
        if rec.table == RT_TABLE_LOCAL and rec.type == "local":
            return None  # the host's own address on some interface: not a forwarding decision
        if overlapping is None:
            overlapping = self._overlapping(rec)
        devices = [self.name_of(i) for i in rec.oifs]
        victims = tuple(p for p in overlapping if p.interface not in devices)
        if not victims:
            return None
        if rec.op == "new":
            action = "route-hijack"
            self.hijacks.add(_route_key(rec))
        else:
            action = "route-hijack-removed"
            self.hijacks.discard(_route_key(rec))
        details = _route_details(rec, self)
        details["peer_interfaces"] = sorted({p.interface for p in victims})
        # the interface concerned is the victim's WireGuard interface; the route's own devices are in
        # details["devices"]
        return HostChange(action, victims[0].interface, details, victims)


def _parse_net(cidr: str) -> tuple[int, int, int, int]:
    """``addr/plen`` → (IP version, address as int, prefix length, address bits)."""
    addr, _, plen = cidr.partition("/")
    if ":" in addr:
        return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, addr), "big"), int(plen), 128
    return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, addr), "big"), int(plen), 32


def _route_key(rec: RouteRecord) -> tuple[str, int, tuple[int, ...]]:
    return (rec.destination, rec.table, rec.oifs)


def _link_details(rec: LinkRecord) -> dict[str, Any]:
    return {
        "index": rec.index,
        "kind": rec.kind,
        "mtu": rec.mtu,
        "state": "up" if rec.up else "down",
        "oper_state": rec.oper_state,
    }


def _route_details(rec: RouteRecord, tracker: HostTracker) -> dict[str, Any]:
    d: dict[str, Any] = {
        "destination": rec.destination,
        "devices": [tracker.name_of(i) for i in rec.oifs],
        "table": rec.table,
        "protocol": rec.protocol,
        "scope": rec.scope,
        "type": rec.type,
    }
    if rec.gateway:
        d["gateway"] = rec.gateway
    if rec.metric is not None:
        d["metric"] = rec.metric
    if rec.prefsrc:
        d["prefsrc"] = rec.prefsrc
    return d
