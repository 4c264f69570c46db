"""Which WireGuard peer an address in a context record belongs to, at thousands of records a second.

:meth:`PeerDirectory.by_tunnel_ip` scans every AllowedIPs network per call; a context body of a few
thousand records against a directory of thousands of peers would spend all its time there. This index
buckets AllowedIPs by (IP version, prefix length) and is rebuilt once per directory generation, so a
lookup is one dict probe per distinct prefix length, longest first — the same answer (longest prefix
wins, a ``/0`` owns nothing) at a fraction of the cost.
"""

from __future__ import annotations

import ipaddress
import socket

from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

__all__ = ["PeerAttribution"]


class PeerAttribution:
    def __init__(self, peers: PeerDirectory) -> None:
        self.peers = peers
        self._generation = -1
        self._buckets: dict[int, list[tuple[int, dict[int, PeerInfo]]]] = {}

    def _index(self) -> dict[int, list[tuple[int, dict[int, PeerInfo]]]]:
        if self._generation == self.peers.generation:
            return self._buckets
        raw: dict[tuple[int, int], dict[int, PeerInfo]] = {}
        for p in self.peers.peers():
            for cidr in p.allowed_ips:
                try:
                    net = ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    continue
                if net.prefixlen:
                    raw.setdefault((net.version, net.prefixlen), {}).setdefault(int(net.network_address), p)
        buckets: dict[int, list[tuple[int, dict[int, PeerInfo]]]] = {4: [], 6: []}
        for (version, plen), nets in sorted(raw.items(), key=lambda kv: -kv[0][1]):
            buckets[version].append((plen, nets))
        self._buckets, self._generation = buckets, self.peers.generation
        return buckets

    def by_tunnel_ip(self, ip: str) -> PeerInfo | None:
        try:
            if ":" in ip:
                version, bits, value = 6, 128, int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big")
            else:
                version, bits, value = 4, 32, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
        except OSError:
            return None
        for plen, nets in self._index().get(version, ()):
            p = nets.get(value & (((1 << plen) - 1) << (bits - plen)))
            if p is not None:
                return p
        return None

    def attribute(self, ip: str) -> tuple[PeerInfo, str] | None:
        """A tunnel address through AllowedIPs first, else a peer's current outer endpoint (only when
        exactly one peer has it: a NAT address shared by several peers attributes nothing)."""
        p = self.by_tunnel_ip(ip)
        if p is not None:
            return p, "tunnel_ip"
        found = self.peers.by_endpoint(ip)
        if len(found) == 1:
            return found[0], "endpoint"
        return None
