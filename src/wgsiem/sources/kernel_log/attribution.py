"""Kernel ``peer N`` → public key.

The kernel numbers peers with a module-global counter (``peer->internal_id``) that ``wg show`` never
prints, so the key has to be inferred from what the ``wg_state`` sources know
(:class:`~wgsiem.sources.peer_directory.PeerDirectory`). Methods, strongest first:

``endpoint`` (confidence ``high``)
    the message carries the peer's endpoint ``ip:port`` and exactly one peer of that interface had that
    endpoint at that time (current endpoint or endpoint history).
``peer-map`` (the confidence it was learned with)
    ``peer N`` was attributed before (by endpoint or creation order) and has not been destroyed since;
    this is how messages without an endpoint (``Keypair 7 created for peer 3``) get a key.
``endpoint-ip`` (``medium``)
    only the address matched, and exactly one peer of the interface has it (NAT rewrote the port).
``creation-order`` (``low``)
    the interface's live ``Peer N created`` ids, in order, matched with its peers in the order the
    kernel lists them (``wg show dump`` lists peers in creation order) — only when both counts agree.

Otherwise ``none``. The map is bounded (least recently used entries go first), persisted with the
source's state, and cleared when the module is (re)loaded, since the counter restarts at 1.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from wgsiem.sources.kernel_log.records import KernelMessage
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo, endpoint_ip

__all__ = ["Attribution", "PeerAttributor"]


@dataclass(frozen=True, slots=True)
class Attribution:
    public_key: str | None
    method: str  # endpoint | peer-map | endpoint-ip | creation-order | none
    confidence: str  # high | medium | low | none
    ambiguous: int = 0  # how many peers matched when more than one did

    def doc(self) -> dict[str, Any]:
        """The ``wireguard.peer.*`` fields: flat, and typed like every other source's
        (``attribution`` is a keyword in the flow and identity documents too)."""
        d: dict[str, Any] = {"attribution": self.method, "attribution_confidence": self.confidence}
        if self.ambiguous:
            d["candidate_count"] = self.ambiguous
        return d


NONE = Attribution(None, "none", "none")


class PeerAttributor:
    """Keeps the learned ``peer N`` → key map and answers :meth:`attribute`."""

    def __init__(self, peers: PeerDirectory, max_entries: int = 65536) -> None:
        self.peers = peers
        self.max_entries = max_entries
        # peer id → (interface, key, method, confidence)
        self.map: OrderedDict[int, tuple[str, str, str, str]] = OrderedDict()
        # interface → live peer ids in "Peer N created" order
        self.created: dict[str, list[int]] = {}
        self._hist_ips: set[str] = set()
        self._hist_gen = -1

    # ------------------------------------------------------------ lifecycle messages
    def observe(self, msg: KernelMessage) -> None:
        """Learn from lifecycle messages (module load, interface and peer creation/destruction)."""
        a = msg.action
        if a == "module-loaded":
            self.map.clear()
            self.created.clear()
        elif a in ("interface-created", "interface-destroyed") and msg.interface:
            self.created.pop(msg.interface, None)
            for pid in [k for k, v in self.map.items() if v[0] == msg.interface]:
                del self.map[pid]
        elif a == "peer-created" and msg.interface and msg.peer_id is not None:
            ids = self.created.setdefault(msg.interface, [])
            if msg.peer_id not in ids:
                ids.append(msg.peer_id)
                del ids[: max(0, len(ids) - self.max_entries)]
        elif a == "peer-destroyed" and msg.peer_id is not None:
            self.map.pop(msg.peer_id, None)
            if msg.interface in self.created:
                ids = self.created[msg.interface]
                if msg.peer_id in ids:
                    ids.remove(msg.peer_id)

    def forget(self, peer_id: int) -> None:
        self.map.pop(peer_id, None)

    def _learn(self, peer_id: int, iface: str, att: Attribution) -> None:
        assert att.public_key is not None
        self.map[peer_id] = (iface, att.public_key, att.method, att.confidence)
        self.map.move_to_end(peer_id)
        while len(self.map) > self.max_entries:
            self.map.popitem(last=False)

    # ------------------------------------------------------------ attribution
    def _by_endpoint(self, iface: str, ip: str, port: int | None, at: float) -> tuple[list[PeerInfo], bool]:
        # the current endpoints are indexed; the endpoint history (a scan of every peer's history in
        # PeerDirectory.by_endpoint) only when they do not match and the address is in some history
        whens: tuple[float | None, ...] = (None, at) if ip in self._history_ips() else (None,)
        for when in whens:
            found = [p for p in self.peers.by_endpoint(ip, port, at=when) if p.interface == iface]
            if found:
                return found, port is not None
        if port is None:
            return [], False
        for when in whens:
            found = [p for p in self.peers.by_endpoint(ip, None, at=when) if p.interface == iface]
            if found:
                return found, False
        return [], False

    def _history_ips(self) -> set[str]:
        """Every address in any peer's endpoint history (rebuilt once per directory generation)."""
        if self._hist_gen != self.peers.generation:
            ips: set[str] = set()
            for key in {p.public_key for p in self.peers.peers()}:
                for _, ep in self.peers.endpoint_history(key):
                    ip = endpoint_ip(ep)
                    if ip:
                        ips.add(ip)
            self._hist_ips, self._hist_gen = ips, self.peers.generation
        return self._hist_ips

    def attribute(self, msg: KernelMessage, at: float) -> Attribution:
        """The public key of ``msg``'s ``peer N`` (``msg`` must have a peer id and an interface)."""
        pid, iface = msg.peer_id, msg.interface
        if pid is None or iface is None:
            return NONE
        ep = msg.endpoint
        ambiguous = 0
        ip_only: Attribution | None = None
        if ep is not None and ep.ip is not None and len(self.peers):
            found, with_port = self._by_endpoint(iface, ep.ip, ep.port, at)
            keys = {p.public_key for p in found}
            if len(keys) == 1:
                att = Attribution(
                    found[0].public_key,
                    "endpoint" if with_port else "endpoint-ip",
                    "high" if with_port else "medium",
                )
                if with_port:
                    self._learn(pid, iface, att)
                    return att
                ip_only = att
            elif len(keys) > 1:
                ambiguous = len(keys)
        known = self.map.get(pid)
        if known is not None and known[0] == iface:
            self.map.move_to_end(pid)
            return Attribution(known[1], "peer-map", known[3])
        if ip_only is not None:
            self._learn(pid, iface, ip_only)
            return ip_only
        by_order = self._by_creation_order(iface, pid)
        if by_order is not None:
            self._learn(pid, iface, by_order)
            return by_order
        return Attribution(None, "none", "none", ambiguous)

    def _by_creation_order(self, iface: str, pid: int) -> Attribution | None:
        ids = self.created.get(iface)
        if not ids or pid not in ids:
            return None
        # the directory lists an interface's peers as `wg show dump` does (creation order); a peer
        # added later was also first seen later
        listed = sorted(self.peers.peers(iface), key=lambda p: p.first_seen)
        if len(listed) != len(ids):
            return None
        return Attribution(listed[ids.index(pid)].public_key, "creation-order", "low")

    # ------------------------------------------------------------ persistence
    def export_state(self) -> dict[str, Any]:
        return {
            "map": [[pid, *v] for pid, v in self.map.items()],
            "created": {k: list(v) for k, v in self.created.items()},
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        self.map.clear()
        for pid, iface, key, method, conf in state.get("map", [])[-self.max_entries :]:
            self.map[int(pid)] = (str(iface), str(key), str(method), str(conf))
        self.created = {str(k): [int(i) for i in v] for k, v in state.get("created", {}).items()}
