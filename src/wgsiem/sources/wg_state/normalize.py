"""Pure mapping of a :class:`Change` to an ECS document.

Direction convention (documented in docs/events.md): the **source** is the remote peer — its outer
endpoint is ``source.ip``/``source.port`` and its tunnel address (first host route among its allowed
IPs) is ``source.nat.ip``, the address it takes inside the VPN; the **destination** is the gateway
interface (``destination.port`` = listen port). Bytes follow ECS: ``source.bytes`` = sent by the peer =
WireGuard ``rx``; ``destination.bytes`` = sent to the peer = ``tx``.

WireGuard facts without an ECS home live under ``wireguard.*``.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from wgsiem import __version__
from wgsiem.sources.wg_state.differ import Change
from wgsiem.sources.wg_state.records import InterfaceRecord, PeerRecord, split_endpoint

__all__ = ["ACTIONS", "DATASET", "ECS_VERSION", "iso", "to_ecs"]

DATASET = "wireguard.state"
ECS_VERSION = "9.5.0-dev"

# action → (event.category, event.type, event.outcome)
ACTIONS: dict[str, tuple[list[str], list[str], str | None]] = {
    "interface-added": (["configuration"], ["creation"], None),
    "interface-removed": (["configuration"], ["deletion"], None),
    "interface-changed": (["configuration"], ["change"], None),
    "interface-key-changed": (["configuration"], ["change"], None),
    "peer-added": (["configuration"], ["creation"], None),
    "peer-removed": (["configuration"], ["deletion"], None),
    "allowed-ips-changed": (["configuration"], ["change"], None),
    "preshared-key-changed": (["configuration"], ["change"], None),
    "endpoint-changed": (["network", "session"], ["info"], None),
    "handshake": (["network", "authentication"], ["info"], "success"),
    "session-started": (["network", "session"], ["start"], "success"),
    "session-ended": (["network", "session"], ["end"], None),
    "transfer": (["network"], ["info"], None),
    "counter-reset": (["network"], ["info"], None),
}


@functools.lru_cache(maxsize=8192)
def iso(t: float) -> str:
    """Epoch seconds → RFC 3339 UTC with milliseconds, as ECS dates are written.

    Cached: every event of one poll shares its time, and handshake times repeat across polls."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _tunnel_ips(allowed: tuple[str, ...]) -> list[str]:
    out = []
    for cidr in allowed:
        ip, _, plen = cidr.partition("/")
        if (":" in ip and plen == "128") or (":" not in ip and plen == "32"):
            out.append(ip)
    return out


# Why the caches below: a busy gateway emits the same peer's events poll after poll, and everything
# in a document but counters, times, ids and the action's details follows from the peer's and the
# interface's (rarely changing) configuration. Those parts are computed once and copied into each
# document; every document still gets its own dicts and lists (a transform may modify one).


@functools.lru_cache(maxsize=1024)
def _iface_parts(info: InterfaceRecord, implementation: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(``wireguard.interface`` without its ``private_key`` object, that object, ``observer.product``)."""
    iface_doc: dict[str, Any] = {
        "name": info.name,
        "listen_port": info.listen_port,
        "implementation": implementation,
        "private_key": None,  # keeps the key order; each document gets its own object here
    }
    if info.public_key:
        iface_doc["public_key"] = info.public_key
    private_key: dict[str, Any] = {"present": info.private_key_present}
    if info.private_key_fingerprint:
        private_key["fingerprint"] = info.private_key_fingerprint
    if info.fwmark:
        iface_doc["fwmark"] = info.fwmark
    product = "wireguard-go" if implementation == "userspace" else "WireGuard"
    return iface_doc, private_key, product


class _PeerParts:
    """What the documents of one peer configuration share (see :func:`_peer_parts`)."""

    __slots__ = ("allowed_ips", "doc", "ip", "preshared_key", "related", "source")

    def __init__(self, p: PeerRecord) -> None:
        # wireguard.peer without its counters and handshake, in the document's key order
        self.doc: dict[str, Any] = {
            "public_key": p.public_key,
            "allowed_ips": None,
            "rx_bytes": None,
            "tx_bytes": None,
            "persistent_keepalive_secs": p.persistent_keepalive,
            "preshared_key": None,
        }
        if p.endpoint:
            self.doc["endpoint"] = p.endpoint
        self.allowed_ips = p.allowed_ips
        self.preshared_key: dict[str, Any] = {"present": p.preshared_key_present}
        if p.preshared_key_fingerprint:
            self.preshared_key["fingerprint"] = p.preshared_key_fingerprint
        ip, port = split_endpoint(p.endpoint)
        self.ip = ip
        related: list[str] = []
        src: dict[str, Any] = {}
        if ip:
            src["ip"] = ip
            src["address"] = ip
            related.append(ip)
        if port is not None:
            src["port"] = port
        tunnel = _tunnel_ips(p.allowed_ips)
        if tunnel:
            src["nat"] = tunnel[0]  # a fresh {"ip": …} per document
            related.extend(t for t in tunnel if t not in related)
        self.source = src
        self.related = tuple(related)


_PEER_PARTS: dict[tuple[Any, ...], _PeerParts] = {}
_PEER_PARTS_MAX = 1 << 14  # ~1 KB each: at most ~18 MB; a larger gateway recomputes, as before


def _peer_parts(p: PeerRecord) -> _PeerParts:
    key = (
        p.public_key,
        p.endpoint,
        p.allowed_ips,
        p.persistent_keepalive,
        p.preshared_key_present,
        p.preshared_key_fingerprint,
    )
    parts = _PEER_PARTS.get(key)
    if parts is None:
        if len(_PEER_PARTS) >= _PEER_PARTS_MAX:
            _PEER_PARTS.clear()
        parts = _PEER_PARTS[key] = _PeerParts(p)
    return parts


_SESSION_ACTIONS = frozenset(
    ("session-started", "session-ended", "handshake", "endpoint-changed", "transfer")
)


def to_ecs(change: Change, *, hostname: str, observed_at: float) -> dict[str, Any]:
    """Build the ECS document for one change. ``observed_at`` (poll time) becomes ``event.created``."""
    action = change.action
    category, etype, outcome = ACTIONS[action]
    det = change.details
    info = change.interface
    event: dict[str, Any] = {
        "id": change.id,
        "kind": "event",
        "category": category,
        "type": etype,
        "action": action,
        "dataset": DATASET,
        "module": "wireguard",
        "created": iso(observed_at),
    }
    if outcome:
        event["outcome"] = outcome
    iface_proto, private_key, product = _iface_parts(info, change.implementation)
    iface_doc = iface_proto.copy()
    iface_doc["private_key"] = private_key.copy()
    wg: dict[str, Any] = {"interface": iface_doc}
    network: dict[str, Any] = {"transport": "udp", "protocol": "wireguard"}
    doc: dict[str, Any] = {
        "@timestamp": iso(change.time),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "agent": {"type": "wgsiem", "version": __version__},
        "observer": {
            "hostname": hostname,
            "type": "vpn",
            "vendor": "WireGuard",
            "product": product,
            "ingress": {"interface": {"name": info.name}},
        },
        "network": network,
        "wireguard": wg,
    }
    if info.listen_port:
        doc["destination"] = {"port": info.listen_port}
    related_ip: list[str]
    peer = change.peer
    if peer is not None:
        parts = _peer_parts(peer)
        pd = parts.doc.copy()
        pd["allowed_ips"] = list(parts.allowed_ips)
        pd["rx_bytes"] = peer.rx_bytes
        pd["tx_bytes"] = peer.tx_bytes
        pd["preshared_key"] = parts.preshared_key.copy()
        if peer.latest_handshake:
            pd["latest_handshake"] = iso(peer.latest_handshake)
        wg["peer"] = pd
        related_ip = list(parts.related)
        if parts.ip:
            network["type"] = "ipv6" if ":" in parts.ip else "ipv4"
        if parts.source:
            src = parts.source.copy()
            if "nat" in src:
                src["nat"] = {"ip": src["nat"]}
            doc["source"] = src
    else:
        related_ip = []
    if action in _SESSION_ACTIONS:
        sid = det.get("session_id")
        if sid:
            wg["session"] = {"id": sid}
    if action == "transfer":
        rx, tx = det["rx_bytes"], det["tx_bytes"]
        wg["transfer"] = {"rx_bytes": rx, "tx_bytes": tx, "interval_secs": round(det["interval_secs"], 3)}
        _bytes(doc, rx, tx)
    elif action == "handshake":
        pass
    elif action == "session-started":
        event["start"] = iso(change.time)
        wg["session"]["start"] = iso(change.time)
        wg["session"]["observed_start"] = det["observed_start"]
    elif action == "session-ended":
        start, end = det["start"], det["end"]
        event["start"] = iso(start)
        event["end"] = iso(end)
        event["duration"] = round((end - start) * 1e9)
        endpoints = det["endpoints"]
        wg["session"].update(
            {
                "start": iso(start),
                "end": iso(end),
                "duration_secs": round(end - start, 3),
                "rx_bytes": det["rx_bytes"],
                "tx_bytes": det["tx_bytes"],
                "endpoints": endpoints,
                "end_reason": det["end_reason"],
                "observed_start": det["observed_start"],
            }
        )
        _bytes(doc, det["rx_bytes"], det["tx_bytes"])
        for ep in endpoints:
            ip, _ = split_endpoint(ep)
            if ip and ip not in related_ip:
                related_ip.append(ip)
    elif action == "endpoint-changed":
        wg["change"] = {"endpoint": {"old": det["old"], "new": det["new"]}}
        ip, _ = split_endpoint(det["old"])
        if ip and ip not in related_ip:
            related_ip.append(ip)
    elif action == "allowed-ips-changed":
        wg["change"] = {"allowed_ips": {k: det[k] for k in ("old", "new", "added", "removed")}}
    elif action == "preshared-key-changed":
        wg["change"] = {
            "preshared_key": {"old_present": det["old_present"], "new_present": det["new_present"]}
        }
    elif action == "counter-reset":
        wg["change"] = {"counters": dict(det)}
    elif action == "interface-key-changed":
        wg["change"] = {"public_key": {"old": det["old_public_key"], "new": det["new_public_key"]}}
    elif action == "interface-changed":
        wg["change"] = {
            "listen_port": {"old": det["old_listen_port"], "new": det["new_listen_port"]},
            "fwmark": {"old": det["old_fwmark"], "new": det["new_fwmark"]},
        }
    elif action in ("interface-added", "interface-removed"):
        iface_doc["peer_count"] = det["peer_count"]
    elif action == "peer-added":
        wg["peer"]["initial_sync"] = det["initial_sync"]
    if related_ip:
        doc["related"] = {"ip": related_ip}
    return doc


def _bytes(doc: dict[str, Any], rx: int, tx: int) -> None:
    doc.setdefault("source", {})["bytes"] = rx
    doc.setdefault("destination", {})["bytes"] = tx
    doc["network"]["bytes"] = rx + tx
