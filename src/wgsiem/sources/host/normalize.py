"""Pure mapping of a :class:`HostChange` to an ECS document.

Link facts without an ECS home live under ``wireguard.interface`` / ``wireguard.link``; routes under
``wireguard.route``; the peer whose AllowedIPs a route touches under ``wireguard.peer``. A route hijack
is ``event.kind: alert`` with ``rule.*`` and ATT&CK ``threat.*`` (T1557, adversary-in-the-middle),
because it silently moves a peer's traffic out of the tunnel.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from wgsiem import __version__
from wgsiem.event import event_id
from wgsiem.sources.host.tracker import HostChange
from wgsiem.sources.wg_state.normalize import ECS_VERSION, iso

__all__ = ["ACTIONS", "DATASET", "to_ecs"]

DATASET = "wireguard.host"

# action → (event.kind, event.category, event.type)
ACTIONS: dict[str, tuple[str, list[str], list[str]]] = {
    "link-created": ("event", ["configuration", "network"], ["creation"]),
    "link-deleted": ("event", ["configuration", "network"], ["deletion"]),
    "interface-renamed": ("event", ["configuration", "network"], ["change"]),
    "mtu-changed": ("event", ["configuration", "network"], ["change"]),
    "interface-up": ("event", ["configuration", "network"], ["change"]),
    "interface-down": ("event", ["configuration", "network"], ["change"]),
    "address-added": ("event", ["configuration", "network"], ["creation"]),
    "address-removed": ("event", ["configuration", "network"], ["deletion"]),
    "route-added": ("event", ["configuration", "network"], ["creation"]),
    "route-removed": ("event", ["configuration", "network"], ["deletion"]),
    "route-hijack": ("alert", ["configuration", "network"], ["creation"]),
    "route-hijack-removed": ("event", ["configuration", "network"], ["deletion"]),
}

HIJACK_RULE = {
    "id": "wgsiem-host-route-hijack",
    "name": "Route takes a WireGuard peer's AllowedIPs away from its interface",
    "category": "route poisoning",
    "description": "A route at least as specific as a peer's AllowedIPs points at another device; "
    "traffic for that peer leaves outside the tunnel.",
    "ruleset": "wgsiem",
}


def to_ecs(
    change: HostChange,
    *,
    hostname: str,
    namespace: str | None,
    at: float,
    sequence: int,
    severity: int = 73,
) -> dict[str, Any]:
    """``at`` is when the kernel message was read (netlink carries no time); ``sequence`` the record's
    number in this source's stream, so two identical flaps in one instant still get distinct ids."""
    kind, category, etype = ACTIONS[change.action]
    det = change.details
    event: dict[str, Any] = {
        "id": event_id(
            "host",
            hostname,
            namespace or "",
            change.action,
            change.interface,
            repr(sorted(det.items(), key=str)),
            f"{at:.6f}",
            sequence,
        ),
        "kind": kind,
        "category": category,
        "type": etype,
        "action": change.action,
        "dataset": DATASET,
        "module": "wireguard",
        "created": iso(at),
    }
    wg: dict[str, Any] = {}
    doc: dict[str, Any] = {
        "@timestamp": iso(at),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "agent": {"type": "wgsiem", "version": __version__},
        "host": {"name": hostname},
        "observer": {"hostname": hostname, "type": "host", "vendor": "Linux", "product": "rtnetlink"},
        "wireguard": wg,
    }
    if change.interface:
        wg["interface"] = {"name": change.interface}
    if namespace:
        wg["namespace"] = namespace
    action = change.action
    related: list[str] = []
    if action.startswith(("link-", "interface-", "mtu-")):
        wg["link"] = {
            k: v
            for k, v in det.items()
            if k in ("index", "kind", "mtu", "state", "oper_state") and v is not None
        }
        changed = {k: det[k] for k in ("mtu", "state", "name") if isinstance(det.get(k), dict)}
        if "mtu" in changed:
            wg["link"]["mtu"] = changed["mtu"]["new"]
        if "state" in changed:
            wg["link"]["state"] = changed["state"]["new"]
        if changed:
            wg["change"] = changed
    elif action.startswith("address-"):
        wg["address"] = {k: det[k] for k in ("address", "prefix_length", "index", "label") if k in det}
        related.append(det["address"])
    else:
        route = {k: v for k, v in det.items() if k != "peer_interfaces"}
        wg["route"] = route
        net = ipaddress.ip_network(det["destination"])
        doc["network"] = {"type": "ipv6" if net.version == 6 else "ipv4"}
        if net.prefixlen == net.max_prefixlen:
            doc["destination"] = {"ip": str(net.network_address)}
        if det.get("gateway"):
            related.append(det["gateway"])
        related.append(str(net.network_address))
    if change.peers:
        first = change.peers[0]
        wg["peer"] = {
            "public_key": first.public_key,
            "allowed_ips": list(first.allowed_ips),
            "interface": first.interface,
        }
        if len(change.peers) > 1:
            wg["peers"] = [{"public_key": p.public_key, "interface": p.interface} for p in change.peers]
    if kind == "alert":
        event["severity"] = severity
        event["risk_score"] = float(severity)
        doc["rule"] = dict(HIJACK_RULE)
        doc["threat"] = {
            "framework": "MITRE ATT&CK",
            "tactic": {"id": ["TA0009"], "name": ["Collection"]},
            "technique": {"id": ["T1557"], "name": ["Adversary-in-the-Middle"]},
        }
        victims = ", ".join(f"{p.public_key} ({p.interface})" for p in change.peers)
        via = ", ".join(det["devices"])
        doc["message"] = f"route {det['destination']} via {via} overrides AllowedIPs of peer {victims}"
    if related:
        doc.setdefault("related", {})["ip"] = list(dict.fromkeys(related))
    return doc
