"""A dormant peer active again: the first handshake or traffic of a peer after ``dormant_days`` of none.

Per peer key, the event time of its last activity (``handshake``, ``session-started``, ``transfer``).
A peer never seen before is not dormant (a new peer is the config rules' business); the state survives
restarts through the state file, so a collector restarted after the gap still knows the last activity.
One number per peer.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from wgsiem.detect.detector import BoundedTable, Finding, first

from . import DetectorOptions, action, event_id_of

__all__ = ["DormantPeer"]

_ACTIVE = frozenset({"handshake", "session-started", "transfer"})


class Options(DetectorOptions):
    dormant_days: float = Field(30.0, gt=0)
    max_peers: int = Field(500_000, ge=1)


class DormantPeer:
    wants_alerts: ClassVar[bool] = False
    actions: ClassVar[frozenset[str] | None] = frozenset({"handshake", "session-started", "transfer"})

    def __init__(self, options: dict[str, Any]) -> None:
        self.o = Options(**options)
        self._last = BoundedTable(self.o.max_peers)

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]:
        if action(doc) not in _ACTIVE:
            return []
        peer = first(doc, "wireguard.peer.public_key")
        if peer is None:
            return []
        peer = str(peer)
        last = self._last.get(peer, at)
        if last is not None and at < last:
            return []
        self._last.put(peer, at, at)
        if last is None or at - last < self.o.dormant_days * 86400:
            return []
        days = (at - last) / 86400
        ev = event_id_of(doc)
        return [
            Finding(
                "wireguard.peer.public_key",
                peer,
                f"active again after {days:.0f} days without a handshake or traffic",
                evidence_ids=(ev,) if ev else (),
                details={"dormant_days": round(days, 1), "last_active": last},
            )
        ]

    def snapshot(self) -> dict[str, Any]:
        return {"last": self._last.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        self._last.restore(data.get("last"))

    def entries(self) -> int:
        return len(self._last)
