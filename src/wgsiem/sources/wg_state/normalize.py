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
from wgsiem.sources.wg_state.records import PeerRecord, split_endpoint

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


def _peer_doc(p: PeerRecord) -> dict[str, Any]:
    d: dict[str, Any] = {
        "public_key": p.public_key,
        "allowed_ips": list(p.allowed_ips),
        "rx_bytes": p.rx_bytes,
        "tx_bytes": p.tx_bytes,
        "persistent_keepalive_secs": p.persistent_keepalive,
        "preshared_key": {"present": p.preshared_key_present},
    }
    if p.preshared_key_fingerprint:
        d["preshared_key"]["fingerprint"] = p.preshared_key_fingerprint
    if p.endpoint:
        d["endpoint"] = p.endpoint
    if p.latest_handshake:
        d["latest_handshake"] = iso(p.latest_handshake)
    return d


def to_ecs(change: Change, *, hostname: str, observed_at: float) -> dict[str, Any]:
    """Build the ECS document for one change. ``observed_at`` (poll time) becomes ``event.created``."""
    category, etype, outcome = ACTIONS[change.action]
    det = change.details
    info = change.interface
    event: dict[str, Any] = {
        "id": change.id,
        "kind": "event",
        "category": category,
        "type": etype,
        "action": change.action,
        "dataset": DATASET,
        "module": "wireguard",
        "created": iso(observed_at),
    }
    if outcome:
        event["outcome"] = outcome
    iface_doc: dict[str, Any] = {
        "name": info.name,
        "listen_port": info.listen_port,
        "implementation": change.implementation,
        "private_key": {"present": info.private_key_present},
    }
    if info.public_key:
        iface_doc["public_key"] = info.public_key
    if info.private_key_fingerprint:
        iface_doc["private_key"]["fingerprint"] = info.private_key_fingerprint
    if info.fwmark:
        iface_doc["fwmark"] = info.fwmark
    wg: dict[str, Any] = {"interface": iface_doc}
    doc: dict[str, Any] = {
        "@timestamp": iso(change.time),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "agent": {"type": "wgsiem", "version": __version__},
        "observer": {
            "hostname": hostname,
            "type": "vpn",
            "vendor": "WireGuard",
            "product": "wireguard-go" if change.implementation == "userspace" else "WireGuard",
            "ingress": {"interface": {"name": info.name}},
        },
        "network": {"transport": "udp", "protocol": "wireguard"},
        "wireguard": wg,
    }
    if info.listen_port:
        doc["destination"] = {"port": info.listen_port}
    related_ip: list[str] = []
    peer = change.peer
    if peer is not None:
        wg["peer"] = _peer_doc(peer)
        ip, port = split_endpoint(peer.endpoint)
        src: dict[str, Any] = {}
        if ip:
            src["ip"] = ip
            src["address"] = ip
            related_ip.append(ip)
            doc["network"]["type"] = "ipv6" if ":" in ip else "ipv4"
        if port is not None:
            src["port"] = port
        tunnel = _tunnel_ips(peer.allowed_ips)
        if tunnel:
            src["nat"] = {"ip": tunnel[0]}
            related_ip.extend(t for t in tunnel if t not in related_ip)
        if src:
            doc["source"] = src
    action = change.action
    if action in ("session-started", "session-ended", "handshake", "endpoint-changed", "transfer"):
        sid = det.get("session_id")
        if sid:
            wg.setdefault("session", {})["id"] = sid
    if action == "session-started":
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
    elif action == "transfer":
        wg["transfer"] = {
            "rx_bytes": det["rx_bytes"],
            "tx_bytes": det["tx_bytes"],
            "interval_secs": round(det["interval_secs"], 3),
        }
        _bytes(doc, det["rx_bytes"], det["tx_bytes"])
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
        doc.setdefault("related", {})["ip"] = related_ip
    return doc


def _bytes(doc: dict[str, Any], rx: int, tx: int) -> None:
    doc.setdefault("source", {})["bytes"] = rx
    doc.setdefault("destination", {})["bytes"] = tx
    doc["network"]["bytes"] = rx + tx
