"""Peer, key or AllowedIPs changes on a production gateway without an approved change.

Production: the gateway's asset (``wireguard.asset.observer``, from ``enrich_assets``) has an
``environment`` in ``production_environments`` or a tag in ``production_tags``, or its
``observer.hostname`` is listed in ``production_hosts`` (for gateways outside the inventory).

Approved: an approved CMDB change ticket (``context`` source, ``event.action: change-ticket``,
``wireguard.change.approval: approved``) whose window holds the change's time and which names the
gateway (``wireguard.change.hosts``) or the peer (``wireguard.change.peers``); or — when
``require_ticket`` is false — a standing change window (``change_windows``, weekly, in ``timezone``).
Tickets are remembered until their window ends (bounded to ``max_tickets``, latest first).

The initial listing of peers when the collector starts (``wireguard.peer.initial_sync``) is no change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from wgsiem.detect.alert import event_time
from wgsiem.detect.detector import BoundedTable, Finding, first

from . import DetectorOptions, action, dataset, event_id_of

__all__ = ["ConfigChange"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ChangeWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[str] = Field(default_factory=lambda: list(_DAYS))
    start: dt.time
    end: dt.time


class Options(DetectorOptions):
    actions: tuple[str, ...] = (
        "peer-added",
        "allowed-ips-changed",
        "interface-key-changed",
        "preshared-key-changed",
    )
    production_environments: tuple[str, ...] = ("production",)
    production_tags: tuple[str, ...] = ("production",)
    production_hosts: tuple[str, ...] = ()
    require_ticket: bool = True
    change_windows: tuple[ChangeWindow, ...] = ()
    timezone: str = "UTC"
    max_tickets: int = Field(10_000, ge=1)


class ConfigChange:
    wants_alerts: ClassVar[bool] = False

    def __init__(self, options: dict[str, Any]) -> None:
        self.o = Options(**options)
        self._tz = ZoneInfo(self.o.timezone)
        self._actions = frozenset(self.o.actions)
        self.actions = self._actions | {"change-ticket"}
        self._tickets = BoundedTable(self.o.max_tickets)

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]:
        act = action(doc)
        if act == "change-ticket":
            self._remember_ticket(doc, at)
            return []
        if act not in self._actions or dataset(doc) == "wireguard.context":
            return []
        if first(doc, "wireguard.peer.initial_sync") is True:
            return []
        host = first(doc, "observer.hostname")
        if not self._production(doc, host):
            return []
        peer = first(doc, "wireguard.peer.public_key")
        ticket = self._ticket_for(at, str(host) if host else None, str(peer) if peer else None)
        if ticket is not None:
            return []
        in_window = self._in_window(at)
        if in_window and not self.o.require_ticket:
            return []
        why = "outside any change window and " if self.o.change_windows and not in_window else ""
        field, value = (
            ("wireguard.peer.public_key", str(peer)) if peer else ("observer.hostname", str(host or ""))
        )
        ev = event_id_of(doc)
        return [
            Finding(
                field,
                value,
                f"{act} on production gateway {host} {why}without an approved change ticket",
                evidence_ids=(ev,) if ev else (),
                details={"change": act, "gateway": host, "in_change_window": in_window},
            )
        ]

    def _production(self, doc: dict[str, Any], host: Any) -> bool:
        if host is not None and str(host) in self.o.production_hosts:
            return True
        env = first(doc, "wireguard.asset.observer.environment")
        if env is not None and str(env).lower() in self.o.production_environments:
            return True
        asset = doc.get("wireguard", {}).get("asset", {}) if type(doc.get("wireguard")) is dict else {}
        tags = asset.get("observer", {}).get("tags", []) if type(asset) is dict else []
        return any(t in self.o.production_tags for t in tags or [])

    def _remember_ticket(self, doc: dict[str, Any], at: float) -> None:
        change = doc.get("wireguard", {}).get("change") if type(doc.get("wireguard")) is dict else None
        if type(change) is not dict or str(change.get("approval", "")).lower() != "approved":
            return
        window: dict[str, Any] = change["window"] if type(change.get("window")) is dict else {}
        start = event_time({"@timestamp": window.get("start")})
        end = event_time({"@timestamp": window.get("end")})
        if start is None or end is None:
            return
        for tid in [k for k, t in self._tickets.items() if t["end"] < at]:  # windows that ended
            self._tickets.pop(tid)
        self._tickets.put(
            str(change.get("id", event_id_of(doc))),
            {
                "start": start,
                "end": end,
                "hosts": [str(h) for h in change.get("hosts") or []],
                "peers": [str(p) for p in change.get("peers") or []],
            },
            at,
        )

    def _ticket_for(self, at: float, host: str | None, peer: str | None) -> str | None:
        for tid, t in self._tickets.items():
            if t["start"] <= at <= t["end"] and (
                (host is not None and host in t["hosts"]) or (peer is not None and peer in t["peers"])
            ):
                return tid
        return None

    def _in_window(self, at: float) -> bool:
        local = dt.datetime.fromtimestamp(at, self._tz)
        day, now = _DAYS[local.weekday()], local.time()
        return any(day in w.days and w.start <= now < w.end for w in self.o.change_windows)

    def snapshot(self) -> dict[str, Any]:
        return {"tickets": self._tickets.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        self._tickets.restore(data.get("tickets"))

    def entries(self) -> int:
        return len(self._tickets)
