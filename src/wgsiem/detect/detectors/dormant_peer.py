"""A dormant peer active again: the first handshake or traffic of a peer after ``dormant_days`` of none.

Per peer key, the event time of its last activity (``handshake``, ``session-started``, ``transfer``).
The detector does not have to have seen that activity itself: the gateway already knows it. The
``peer-added`` events of ``wg_state``'s first poll (``wireguard.peer.initial_sync: true``) carry each
peer's ``latest_handshake``, so a collector started today knows that a peer last shook hands 40 days
ago, and that peer's next handshake alerts. A peer listed without any handshake (or added at run time)
is remembered from when it was first listed: unused for ``dormant_days`` and then used is dormant too.
A ``peer-added`` never moves a known last activity back (a restart's re-listing after the state file
was read). One number per peer.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from wgsiem.detect.alert import parse_iso_time
from wgsiem.detect.detector import BoundedTable, Finding, first, getter

from . import DetectorOptions, event_id_of

__all__ = ["DormantPeer"]

_ACTIVE = frozenset({"handshake", "session-started", "transfer"})
_PEER = getter("wireguard.peer.public_key")


class Options(DetectorOptions):
    dormant_days: float = Field(30.0, gt=0)
    max_peers: int = Field(500_000, ge=1)


def _epoch(value: Any) -> float | None:
    """``latest_handshake`` as POSIX seconds (ISO 8601 as ``wg_state`` writes it, or a number)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if value > 0 else None
    if isinstance(value, str) and value:
        return parse_iso_time(value)
    return None


class DormantPeer:
    wants_alerts: ClassVar[bool] = False
    actions: ClassVar[frozenset[str] | None] = frozenset(
        {"handshake", "session-started", "transfer", "peer-added"}
    )

    def __init__(self, options: dict[str, Any]) -> None:
        self.o = Options(**options)
        self._last = BoundedTable(self.o.max_peers)
        self._raw = self._last.raw  # (no TTL: an entry never expires, only the LRU bound evicts)
        self._dormant_secs = self.o.dormant_days * 86400

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]:
        # 70 % of a gateway's events reach here: the action and key are read inline and the table
        # entry updated in place — one dict lookup and no call in the common case
        ev = doc.get("event")
        act = ev.get("action", "") if type(ev) is dict else ""
        if type(act) is not str:
            act = str(act)
        if act not in _ACTIVE:
            if act == "peer-added":
                self._listed(doc, at)
            return []
        wg = doc.get("wireguard")
        node = wg.get("peer") if type(wg) is dict else None
        peer = node.get("public_key") if type(node) is dict else None
        if type(peer) is not str:  # the common shape read inline above; any other through the getter
            peer = _PEER(doc)
            if peer is None:
                return []
            peer = str(peer)
        item = self._raw.get(peer)  # get + put of the table (no TTL), inlined
        if item is None:
            self._last.put(peer, at, at)
            return []
        last = item[1]
        if at <= last:
            return []
        item[0] = item[1] = at
        self._raw.move_to_end(peer)
        if at - last < self._dormant_secs:
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

    def _listed(self, doc: dict[str, Any], at: float) -> None:
        """A peer listed by the gateway: seed its last activity from the gateway's own record."""
        peer = first(doc, "wireguard.peer.public_key")
        if peer is None:
            return
        peer = str(peer)
        seen = _epoch(first(doc, "wireguard.peer.latest_handshake"))
        seed = min(seen, at) if seen is not None else at
        last = self._last.get(peer, at)
        if last is None or (seen is not None and seed > last):
            self._last.put(peer, seed, at)

    def snapshot(self) -> dict[str, Any]:
        return {"last": self._last.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        self._last.restore(data.get("last"))

    def entries(self) -> int:
        return len(self._last)
