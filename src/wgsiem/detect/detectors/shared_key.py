"""Stolen or shared key: one peer key alternating between distant endpoints within minutes.

WireGuard roams: the gateway follows a peer to the address its latest authenticated packet came from.
One device moves from Wi-Fi to mobile and stays; two devices holding the same private key make the
endpoint flip back and forth. Per peer key, the endpoints of ``endpoint-changed`` events within
``window_secs`` are kept; the finding fires when the peer came back to an endpoint it had left at least
``min_returns`` times and two of those endpoints are distant: more than ``min_distance_km`` apart
(``source.geo.location``), in different countries, or — without geo — in different ASNs or /16s.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from pydantic import Field

from wgsiem.detect.detector import BoundedTable, Finding, first, geo_distance_km, location

from . import DetectorOptions, action, event_id_of

__all__ = ["SharedKey"]


class Options(DetectorOptions):
    window_secs: float = Field(900.0, gt=0)
    min_returns: int = Field(2, ge=1)
    min_distance_km: float = Field(100.0, ge=0)
    max_history: int = Field(16, ge=3)
    max_peers: int = Field(200_000, ge=1)


def _net16(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = 16 if addr.version == 4 else 32
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class SharedKey:
    wants_alerts: ClassVar[bool] = False
    actions: ClassVar[frozenset[str] | None] = frozenset({"endpoint-changed"})

    def __init__(self, options: dict[str, Any]) -> None:
        self.o = Options(**options)
        self._peers = BoundedTable(self.o.max_peers, self.o.window_secs)

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]:
        if action(doc) != "endpoint-changed":
            return []
        peer, ip = first(doc, "wireguard.peer.public_key"), first(doc, "source.ip")
        if peer is None or ip is None:
            return []
        peer = str(peer)
        loc = location(doc)
        country = first(doc, "source.geo.country_iso_code")
        asn = first(doc, "source.as.number")
        ev = event_id_of(doc)
        hist = self._peers.get(peer, at) or []
        old = first(doc, "wireguard.change.endpoint.old")
        if not hist and isinstance(old, str):
            hist = [[at, old.rpartition(":")[0].strip("[]"), None, None, None, None]]
        hist = [h for h in hist if h[0] >= at - self.o.window_secs]
        hist.append([at, str(ip), loc, country, asn, ev])
        hist = hist[-self.o.max_history :]
        self._peers.put(peer, hist, at)
        returns = sum(1 for i, h in enumerate(hist) if any(p[1] == h[1] for p in hist[: max(0, i - 1)]))
        if returns < self.o.min_returns:
            return []
        distant = self._distant(hist)
        if distant is None:
            return []
        a, b, why = distant
        return [
            Finding(
                "wireguard.peer.public_key",
                peer,
                f"endpoint alternates between {a} and {b} ({why}) {len(hist) - 1} times "
                f"in {self.o.window_secs:.0f} s",
                evidence_ids=tuple(h[5] for h in hist if h[5]),
                details={
                    "endpoints": sorted({h[1] for h in hist}),
                    "changes": len(hist) - 1,
                    "distance": why,
                },
            )
        ]

    def _distant(self, hist: list[list[Any]]) -> tuple[str, str, str] | None:
        seen: dict[str, list[Any]] = {}
        for h in hist:  # per address, the entry that knows most about where it is
            if h[1] not in seen or (h[2] or h[3] or h[4]):
                seen[h[1]] = h
        items = list(seen.values())
        for i, x in enumerate(items):
            for y in items[i + 1 :]:
                if x[2] and y[2]:
                    km = geo_distance_km(x[2][0], x[2][1], y[2][0], y[2][1])
                    if km > self.o.min_distance_km:
                        return x[1], y[1], f"{km:.0f} km apart"
                    continue
                if x[3] and y[3] and x[3] != y[3]:
                    return x[1], y[1], f"{x[3]} / {y[3]}"
                if x[4] and y[4] and x[4] != y[4]:
                    return x[1], y[1], f"AS{x[4]} / AS{y[4]}"
                if not any(v[2] or v[3] or v[4] for v in (x, y)) and _net16(x[1]) != _net16(y[1]):
                    return x[1], y[1], "different networks"
        return None

    def snapshot(self) -> dict[str, Any]:
        return {"peers": self._peers.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        self._peers.restore(data.get("peers"))

    def entries(self) -> int:
        return len(self._peers)
