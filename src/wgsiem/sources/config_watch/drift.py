"""Drift: where a running interface differs from its configuration file (pure comparison + dedup).

A file that no longer describes what runs means someone changed the interface by hand (``wg set``), a
tool rewrote the file without applying it, or an attacker added a peer live that a reboot would
remove. :func:`find_drift` lists every difference as a :class:`DriftItem`; :class:`DriftTracker`
turns the items of successive checks into *episodes*: an item is reported once when it appears
(after ``grace`` seconds, so a ``wg syncconf`` that follows an edit a moment later is not noise) and
once when it goes away, never on every check in between.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from wgsiem.sources.config_watch.records import ParsedConfig

__all__ = ["DriftItem", "DriftTracker", "RunningInterface", "RunningPeer", "RunningView", "find_drift"]


@dataclass(frozen=True, slots=True)
class RunningPeer:
    public_key: str
    allowed_ips: tuple[str, ...]
    endpoint: str | None
    preshared_key_fingerprint: str | None = None
    preshared_key_known: bool = False  # the peer directory does not carry PSKs; a live read does


@dataclass(frozen=True, slots=True)
class RunningInterface:
    public_key: str | None
    private_key_fingerprint: str | None
    listen_port: int


@dataclass(frozen=True, slots=True)
class RunningView:
    interface: str
    peers: dict[str, RunningPeer]
    info: RunningInterface | None  # None when the view came from the peer directory
    origin: str  # "peer_directory" | "live"


@dataclass(frozen=True, slots=True)
class DriftItem:
    """One difference. ``file``/``running`` are the two sides (lists of strings, possibly empty)."""

    kind: str
    peer: str  # public key, "" for interface-level items
    file: tuple[str, ...]
    running: tuple[str, ...]

    def to_list(self) -> list[Any]:
        return [self.kind, self.peer, list(self.file), list(self.running)]

    @classmethod
    def from_list(cls, v: list[Any]) -> DriftItem:
        return cls(str(v[0]), str(v[1]), tuple(v[2]), tuple(v[3]))


def _nets(ips: tuple[str, ...]) -> tuple[str, ...]:
    out = set()
    for ip in ips:
        try:
            out.add(str(ipaddress.ip_network(ip, strict=False)))
        except ValueError:
            continue
    return tuple(sorted(out))


def _ip_literal_endpoint(ep: str) -> bool:
    host = ep[1 : ep.find("]")] if ep.startswith("[") else ep.rpartition(":")[0]
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def find_drift(cfg: ParsedConfig, running: RunningView, *, check_endpoint: bool = True) -> list[DriftItem]:
    """Every difference between the file and the running interface, in a stable order.

    Endpoints are compared only where the file pins an IP literal: a hostname is resolved when set,
    and a peer without a configured endpoint learns one from its traffic (roaming), which is no drift.
    """
    items: list[DriftItem] = []
    info, iface = running.info, cfg.interface
    if info is not None and iface is not None:
        if iface.private_key_fingerprint and iface.private_key_fingerprint != info.private_key_fingerprint:
            items.append(
                DriftItem(
                    "interface-key-mismatch",
                    "",
                    (iface.public_key or "",),
                    (info.public_key or "",),
                )
            )
        if iface.listen_port is not None and iface.listen_port != info.listen_port:
            items.append(
                DriftItem("listen-port-mismatch", "", (str(iface.listen_port),), (str(info.listen_port),))
            )
    for key, p in cfg.peers.items():
        r = running.peers.get(key)
        mine = _nets(p.allowed_ips)
        if r is None:
            items.append(DriftItem("peer-only-in-file", key, mine, ()))
            continue
        theirs = _nets(r.allowed_ips)
        if mine != theirs:
            items.append(DriftItem("allowed-ips-mismatch", key, mine, theirs))
        if (
            check_endpoint
            and p.endpoint
            and _ip_literal_endpoint(p.endpoint)
            and r.endpoint is not None
            and r.endpoint != p.endpoint
        ):
            items.append(DriftItem("endpoint-mismatch", key, (p.endpoint,), (r.endpoint,)))
        if r.preshared_key_known and r.preshared_key_fingerprint != p.preshared_key_fingerprint:
            items.append(
                DriftItem(
                    "preshared-key-mismatch",
                    key,
                    ("present" if p.preshared_key_present else "absent",),
                    ("present" if r.preshared_key_fingerprint else "absent",),
                )
            )
    for key, r in running.peers.items():
        if key not in cfg.peers:
            items.append(DriftItem("peer-only-running", key, (), _nets(r.allowed_ips)))
    return items


@dataclass(slots=True)
class DriftTracker:
    """Active drift per interface (reported, with the time it was first seen) and pending drift (seen,
    not yet older than the grace period)."""

    active: dict[str, dict[DriftItem, float]] = field(default_factory=dict)
    pending: dict[str, dict[DriftItem, float]] = field(default_factory=dict)

    def update(
        self, interface: str, items: list[DriftItem], at: float, grace_secs: float = 0.0
    ) -> tuple[list[tuple[DriftItem, float]], list[tuple[DriftItem, float]]]:
        """(newly detected, resolved) items, each with the time it was first seen."""
        active = self.active.setdefault(interface, {})
        pending = self.pending.setdefault(interface, {})
        now = set(items)
        resolved = [(i, since) for i, since in active.items() if i not in now]
        for i, _ in resolved:
            del active[i]
        for i in [i for i in pending if i not in now]:
            del pending[i]
        detected: list[tuple[DriftItem, float]] = []
        for i in items:
            if i in active:
                continue
            since = pending.setdefault(i, at)
            if at - since >= grace_secs:
                del pending[i]
                active[i] = since
                detected.append((i, since))
        return detected, resolved

    def export(self) -> dict[str, list[list[Any]]]:
        return {
            name: [[*i.to_list(), since] for i, since in items.items()]
            for name, items in self.active.items()
            if items
        }

    def restore(self, data: dict[str, list[list[Any]]]) -> None:
        self.active = {
            name: {DriftItem.from_list(v[:4]): float(v[4]) for v in items} for name, items in data.items()
        }
