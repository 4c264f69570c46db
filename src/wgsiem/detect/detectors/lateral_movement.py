"""Lateral movement from a remote peer, from flow records (``netflow``) and the asset inventory.

A flow counts when the remote peer *initiated* it: the ``netflow`` source attributed the flow to a peer
on the ``source`` side (``wireguard.peer.side: source``), i.e. the peer's tunnel address reached an
internal ``destination``. Three findings, per peer key:

* **admin port on a sensitive asset** (``high``): ``destination.port`` in ``admin_ports`` and the
  destination asset (``wireguard.asset.destination`` from ``enrich_assets``) has criticality ≥
  ``sensitive_criticality`` or a tag in ``sensitive_tags``;
* **scan** (``high``): ≥ ``scan_hosts`` distinct destination hosts, or ≥ ``scan_ports`` distinct ports
  on one host, within ``scan_window_secs``;
* **outside the usual set** (``medium``): after ``learning_days``, a destination (the asset's name, else
  the address) the peer never reached before.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from wgsiem.detect.detector import BoundedTable, Finding, first

from . import DetectorOptions, dataset, event_id_of

__all__ = ["LateralMovement"]


class Options(DetectorOptions):
    admin_ports: tuple[int, ...] = (22, 23, 135, 139, 445, 1433, 3306, 3389, 5432, 5900, 5985, 5986, 6443)
    sensitive_criticality: int = Field(4, ge=1, le=5)
    sensitive_tags: tuple[str, ...] = ("pci", "database", "domain-controller", "sensitive", "admin")
    scan_window_secs: float = Field(300.0, gt=0)
    scan_hosts: int = Field(20, ge=2)
    scan_ports: int = Field(20, ge=2)
    learning_days: float = Field(7.0, ge=0)
    usual_set: bool = True
    max_usual: int = Field(256, ge=1)
    max_peers: int = Field(200_000, ge=1)
    ttl_days: float = Field(60.0, ge=0)


class LateralMovement:
    wants_alerts: ClassVar[bool] = False
    actions: ClassVar[frozenset[str] | None] = frozenset({"flow"})

    def __init__(self, options: dict[str, Any]) -> None:
        self.o = Options(**options)
        self._admin = frozenset(self.o.admin_ports)
        self._tags = frozenset(self.o.sensitive_tags)
        self._peers = BoundedTable(self.o.max_peers, self.o.ttl_days * 86400)

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]:
        if dataset(doc) != "wireguard.flow":
            return []
        if first(doc, "wireguard.peer.side") != "source":
            return []
        peer = first(doc, "wireguard.peer.public_key")
        dst = first(doc, "destination.ip")
        if peer is None or dst is None:
            return []
        peer, dst = str(peer), str(dst)
        port = first(doc, "destination.port")
        port = int(port) if isinstance(port, int | float) and not isinstance(port, bool) else None
        ev = event_id_of(doc)
        ids = (ev,) if ev else ()
        st = self._peers.get(peer, at)
        if st is None:
            st = {"first": at, "usual": [], "recent": []}
        out: list[Finding] = []
        asset = doc.get("wireguard", {}).get("asset", {}) if type(doc.get("wireguard")) is dict else {}
        dst_asset = asset.get("destination") if type(asset) is dict else None
        dst_asset = dst_asset if type(dst_asset) is dict else {}
        name = str(dst_asset.get("name") or dst)
        if port is not None and port in self._admin and self._sensitive(dst_asset):
            out.append(
                Finding(
                    "wireguard.peer.public_key",
                    peer,
                    f"admin port {port} on sensitive asset {name}",
                    evidence_ids=ids,
                    level="high",
                    details={"kind": "admin-port", "asset": name, "destination": dst, "port": port},
                )
            )
        # scan window: [time, host, port] of recent flows, pruned to the window
        horizon = at - self.o.scan_window_secs
        recent = [r for r in st["recent"] if r[0] >= horizon]
        recent.append([at, dst, port])
        limit = max(self.o.scan_hosts, self.o.scan_ports) * 4
        st["recent"] = recent[-limit:]
        hosts = {r[1] for r in recent}
        ports_on_dst = {r[2] for r in recent if r[1] == dst and r[2] is not None}
        if len(hosts) >= self.o.scan_hosts or len(ports_on_dst) >= self.o.scan_ports:
            out.append(
                Finding(
                    "wireguard.peer.public_key",
                    peer,
                    f"scan: {len(hosts)} hosts / {len(ports_on_dst)} ports on {dst} in "
                    f"{self.o.scan_window_secs:.0f} s",
                    evidence_ids=ids,
                    level="high",
                    details={"kind": "scan", "hosts": len(hosts), "ports": len(ports_on_dst)},
                )
            )
        if self.o.usual_set and name not in st["usual"]:
            if at - st["first"] >= self.o.learning_days * 86400 and not out:
                out.append(
                    Finding(
                        "wireguard.peer.public_key",
                        peer,
                        f"first connection to {name} (outside the peer's usual destinations)",
                        evidence_ids=ids,
                        level="medium",
                        details={"kind": "new-destination", "asset": name, "destination": dst, "port": port},
                    )
                )
            st["usual"] = (st["usual"] + [name])[-self.o.max_usual :]
        self._peers.put(peer, st, at)
        return out

    def _sensitive(self, asset: dict[str, Any]) -> bool:
        crit = asset.get("criticality")
        if isinstance(crit, int) and crit >= self.o.sensitive_criticality:
            return True
        return any(t in self._tags for t in asset.get("tags") or [])

    def snapshot(self) -> dict[str, Any]:
        return {"peers": self._peers.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        self._peers.restore(data.get("peers"))

    def entries(self) -> int:
        return len(self._peers)
