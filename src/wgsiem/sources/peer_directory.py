"""Every WireGuard peer wgsiem knows, for correlating other signals with a public key.

The ``wg_state`` sources publish into it after every poll; the other sources only read:

* ``kernel_log`` maps the kernel's ``peer N`` to a key by endpoint and time (:meth:`by_endpoint`,
  :meth:`endpoint_history`);
* ``wggo_log`` resolves ``peer(ABCD…wxyz)`` abbreviations (:meth:`by_abbreviation`);
* ``netflow`` attributes a tunnel address to the peer whose AllowedIPs hold it (:meth:`by_tunnel_ip`);
* ``config_watch`` compares a file with the running interface (:meth:`peers`).

Indexes are rebuilt lazily, once per published generation, so a 100k-peer poll costs nothing until a
reader asks. Endpoint history is bounded per peer.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["PeerDirectory", "PeerInfo"]

HISTORY_PER_PEER = 16


@dataclass(frozen=True, slots=True)
class PeerInfo:
    interface: str
    public_key: str
    endpoint: str | None  # "ip:port" or "[v6]:port"
    allowed_ips: tuple[str, ...]
    latest_handshake: float | None  # epoch seconds
    first_seen: float  # epoch seconds wgsiem first saw the peer (kernel "Peer N created" order)


def endpoint_ip(endpoint: str | None) -> str | None:
    if not endpoint:
        return None
    if endpoint.startswith("["):
        host = endpoint[1 : endpoint.find("]")]
        return host.split("%", 1)[0]
    return endpoint.rsplit(":", 1)[0]


class PeerDirectory:
    """Peers come from *providers* (each ``wg_state`` source attaches one) that are asked only when a
    reader needs the directory after a new generation was announced with :meth:`invalidate`, plus
    peers published explicitly (tests, replay)."""

    def __init__(self) -> None:
        self._providers: list[Callable[[], Iterable[PeerInfo]]] = []
        self._published: dict[tuple[str, str], PeerInfo] = {}
        self._peers: dict[tuple[str, str], PeerInfo] = {}
        self._history: dict[str, deque[tuple[float, str]]] = {}
        self.generation = 0
        self._built = -1
        self._by_key: dict[str, list[PeerInfo]] = {}
        self._by_ep_ip: dict[str, list[PeerInfo]] = {}
        # (ip version, prefix length) -> network address as int -> peer; longest prefix first
        self._nets: list[tuple[int, int, dict[int, list[PeerInfo]]]] = []

    # ------------------------------------------------------------ writers (wg_state)
    def attach(self, provider: Callable[[], Iterable[PeerInfo]]) -> None:
        self._providers.append(provider)
        self.generation += 1

    def invalidate(self) -> None:
        """A provider's peers changed (a poll happened): rebuild on the next read."""
        self.generation += 1

    def publish(self, interface: str, peers: Iterable[PeerInfo], at: float) -> None:
        """Replace what is known of ``interface`` with ``peers`` (observed at ``at``)."""
        for k in [k for k in self._published if k[0] == interface]:
            del self._published[k]
        for p in peers:
            self._published[(interface, p.public_key)] = p
            if p.endpoint:
                self.note_endpoint(p.public_key, p.endpoint, at)
        self.generation += 1

    def note_endpoint(self, public_key: str, endpoint: str, at: float) -> None:
        h = self._history.setdefault(public_key, deque(maxlen=HISTORY_PER_PEER))
        if not h or h[-1][1] != endpoint:
            h.append((at, endpoint))

    # ------------------------------------------------------------ readers
    def _index(self) -> None:
        if self._built == self.generation:
            return
        peers = dict(self._published)
        for provider in self._providers:
            for p in provider():
                peers[(p.interface, p.public_key)] = p
        self._peers = peers
        by_key: dict[str, list[PeerInfo]] = {}
        by_ip: dict[str, list[PeerInfo]] = {}
        by_len: dict[tuple[int, int], dict[int, list[PeerInfo]]] = {}
        for p in self._peers.values():
            by_key.setdefault(p.public_key, []).append(p)
            ip = endpoint_ip(p.endpoint)
            if ip:
                by_ip.setdefault(ip, []).append(p)
            for cidr in p.allowed_ips:
                try:
                    net = ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    continue
                if net.prefixlen:  # 0.0.0.0/0 on a client says nothing about who owns an address
                    by_len.setdefault((net.version, net.prefixlen), {}).setdefault(
                        int(net.network_address), []
                    ).append(p)
        nets = sorted(((v, n, d) for (v, n), d in by_len.items()), key=lambda t: t[1], reverse=True)
        self._by_key, self._by_ep_ip, self._nets = by_key, by_ip, nets
        self._built = self.generation

    def __len__(self) -> int:
        self._index()
        return len(self._peers)

    def peers(self, interface: str | None = None) -> list[PeerInfo]:
        self._index()
        return [p for p in self._peers.values() if interface is None or p.interface == interface]

    def interfaces(self) -> set[str]:
        self._index()
        return {k[0] for k in self._peers}

    def by_key(self, public_key: str, interface: str | None = None) -> PeerInfo | None:
        self._index()
        for p in self._by_key.get(public_key, ()):
            if interface is None or p.interface == interface:
                return p
        return None

    def by_abbreviation(self, head: str, tail: str, interface: str | None = None) -> list[PeerInfo]:
        """Peers whose base64 key starts with ``head`` and has ``tail`` before its ``=`` padding
        (wireguard-go's ``peer(ABCD…wxyz)`` is ``key[0:4] + "…" + key[39:43]``; a ``tail`` with the
        ``=`` is accepted too). More than one match means the abbreviation is ambiguous."""
        self._index()
        tail = tail.rstrip("=")
        return [
            p
            for p in self._peers.values()
            if p.public_key.startswith(head)
            and p.public_key.rstrip("=").endswith(tail)
            and (interface is None or p.interface == interface)
        ]

    def by_endpoint(self, ip: str, port: int | None = None, at: float | None = None) -> list[PeerInfo]:
        """Peers whose current endpoint is ``ip`` (and ``port``); with ``at``, also peers whose endpoint
        history had it at that time."""
        self._index()
        found = [
            p for p in self._by_ep_ip.get(ip, ()) if port is None or (p.endpoint or "").endswith(f":{port}")
        ]
        if at is not None:
            seen = {(p.interface, p.public_key) for p in found}
            for key, hist in self._history.items():
                ep = self._endpoint_at(hist, at)
                if ep and endpoint_ip(ep) == ip and (port is None or ep.endswith(f":{port}")):
                    for p in self._by_key.get(key, ()):
                        if (p.interface, p.public_key) not in seen:
                            found.append(p)
                            seen.add((p.interface, p.public_key))
        return found

    @staticmethod
    def _endpoint_at(hist: deque[tuple[float, str]], at: float) -> str | None:
        ep = None
        for t, e in hist:
            if t <= at:
                ep = e
            else:
                break
        return ep

    def endpoint_history(self, public_key: str) -> list[tuple[float, str]]:
        return list(self._history.get(public_key, ()))

    def by_tunnel_ip(self, ip: str, interface: str | None = None) -> PeerInfo | None:
        """The peer whose AllowedIPs hold ``ip`` (longest prefix wins, as WireGuard routes)."""
        self._index()
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return None
        value, bits = int(addr), addr.max_prefixlen
        for version, plen, table in self._nets:
            if version != addr.version:
                continue
            for p in table.get(value >> (bits - plen) << (bits - plen), ()):
                if interface is None or p.interface == interface:
                    return p
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        self._index()
        return [
            {
                "interface": p.interface,
                "public_key": p.public_key,
                "endpoint": p.endpoint,
                "allowed_ips": list(p.allowed_ips),
            }
            for p in self._peers.values()
        ]
