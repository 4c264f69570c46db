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

Per flow the peer's entry is refreshed in place (one table hit); the recent flows are filtered to the
scan window, and the distinct hosts and ports are only counted once the window holds as many flows as
the smaller scan threshold (fewer flows cannot reach it), so a peer's ordinary traffic costs no sets.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from wgsiem.detect.detector import BoundedTable, Finding, getter

from . import DetectorOptions

__all__ = ["LateralMovement"]

_SIDE = getter("wireguard.peer.side")
_PEER = getter("wireguard.peer.public_key")
_DST = getter("destination.ip")
_PORT = getter("destination.port")


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
        self._raw = self._peers.raw
        self._ttl_secs = self._peers.ttl_secs
        self._scan_secs = self.o.scan_window_secs
        self._keep = max(self.o.scan_hosts, self.o.scan_ports) * 4
        self._fewest = min(self.o.scan_hosts, self.o.scan_ports)
        self._learning_secs = self.o.learning_days * 86400

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]:
        event = doc.get("event")
        if type(event) is not dict:
            return []
        ds = event.get("dataset", "")
        if ds != "wireguard.flow" and (type(ds) is str or str(ds) != "wireguard.flow"):
            return []
        # the common shapes read inline (one walk of `wireguard`, of `destination`); anything else
        # through the compiled getters, which define what is read
        wg = doc.get("wireguard")
        node = wg.get("peer") if type(wg) is dict else None
        if type(node) is dict:
            side, peer = node.get("side"), node.get("public_key")
        else:
            side = peer = None
        if type(side) is not str:
            side = _SIDE(doc)
        if side != "source":
            return []
        if type(peer) is not str:
            peer = _PEER(doc)
        node = doc.get("destination")
        if type(node) is dict:
            dst, port = node.get("ip"), node.get("port")
        else:
            dst = port = None
        if type(dst) is not str:
            dst = _DST(doc)
        if peer is None or dst is None:
            return []
        peer = peer if type(peer) is str else str(peer)
        dst = dst if type(dst) is str else str(dst)
        if type(port) is not int:
            port = _PORT(doc)
            port = int(port) if isinstance(port, int | float) and not isinstance(port, bool) else None
        ev = event.get("id")
        ev = str(ev) if ev is not None else None
        ids = (ev,) if ev else ()
        item = self._raw.get(peer)  # BoundedTable.hit, inlined
        if item is not None and not (self._ttl_secs and at - item[0] > self._ttl_secs):
            item[0] = at
            self._raw.move_to_end(peer)
            st = item[1]
        else:
            if item is not None:
                self._peers.hit(peer, at)  # expired: the table drops and counts it
            st = {"first": at, "usual": [], "recent": []}
            self._peers.put(peer, st, at)
        out: list[Finding] = []
        wg = doc.get("wireguard")
        asset = wg.get("asset", {}) if type(wg) is dict else {}
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
        horizon = at - self._scan_secs
        recent = [r for r in st["recent"] if r[0] >= horizon]
        recent.append([at, dst, port])
        st["recent"] = recent if len(recent) <= self._keep else recent[-self._keep :]
        if len(recent) >= self._fewest:
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
            if at - st["first"] >= self._learning_secs and not out:
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
