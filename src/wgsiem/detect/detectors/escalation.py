"""Escalation: a wgsiem alert and an EDR alert for the same user or host within a window → critical.

The detector observes the engine's own alerts (``wants_alerts``) and the ``context`` source's EDR
alerts (``event.action: edr-alert``). Both are indexed by what identifies a person or a machine:
``user.name``, ``host.name``, the peer key and the tunnel address (``wireguard.peer.address`` of the
EDR alert, ``source.nat.ip`` of a WireGuard event). When one side arrives and the other is known for a
shared key within ``window_secs`` of event time, a critical finding names both alerts as evidence.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from wgsiem.detect.alert import ALERT_DATASET
from wgsiem.detect.detector import BoundedTable, Finding, first

from . import DetectorOptions, action, dataset, event_id_of

__all__ = ["Escalation"]

_KEYS = (
    ("user.name", "user.name"),
    ("host.name", "host.name"),
    ("wireguard.peer.public_key", "wireguard.peer.public_key"),
    ("wireguard.peer.address", "tunnel"),
    ("source.nat.ip", "tunnel"),
)


class Options(DetectorOptions):
    window_secs: float = Field(3600.0, gt=0)
    max_keys: int = Field(100_000, ge=1)


class Escalation:
    wants_alerts: ClassVar[bool] = True
    actions: ClassVar[frozenset[str] | None] = frozenset({"edr-alert"})

    def __init__(self, options: dict[str, Any]) -> None:
        self.o = Options(**options)
        self._edr = BoundedTable(self.o.max_keys, self.o.window_secs)
        self._alerts = BoundedTable(self.o.max_keys, self.o.window_secs)

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]:
        ds = dataset(doc)
        if ds == ALERT_DATASET:
            mine, other, kind = self._alerts, self._edr, "wgsiem"
        elif action(doc) == "edr-alert":
            mine, other, kind = self._edr, self._alerts, "edr"
        else:
            return []
        ev = event_id_of(doc)
        title = str(first(doc, "rule.name") or action(doc))
        keys: list[tuple[str, str]] = []
        for fname, space in _KEYS:
            v = first(doc, fname)
            if v is not None:
                keys.append((fname, f"{space}={v}"))
        for _, k in keys:
            mine.put(k, [at, ev, title], at)
        for fname, k in keys:
            hit = other.get(k, at)
            if hit is None or abs(at - hit[0]) > self.o.window_secs:
                continue
            other.pop(k)
            edr_title, wg_title = (title, hit[2]) if kind == "edr" else (hit[2], title)
            return [
                Finding(
                    fname,
                    k.partition("=")[2],
                    f"EDR alert '{edr_title}' and wireguard alert '{wg_title}' for the same {fname} "
                    f"within {abs(at - hit[0]):.0f} s",
                    evidence_ids=tuple(e for e in (hit[1], ev) if e),
                    level="critical",
                    details={"edr_alert": edr_title, "wireguard_alert": wg_title, "matched_on": fname},
                )
            ]
        return []

    def snapshot(self) -> dict[str, Any]:
        return {"edr": self._edr.snapshot(), "alerts": self._alerts.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        self._edr.restore(data.get("edr"))
        self._alerts.restore(data.get("alerts"))

    def entries(self) -> int:
        return len(self._edr) + len(self._alerts)
