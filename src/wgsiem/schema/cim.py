"""ECS document → Splunk CIM document (flat field names, ``tag`` list selecting the data model).

Data models and field names from Splunk_SA_CIM 6.4.0 (``Network_Sessions.json``, ``Network_Traffic.json``;
see ``shared/reference/formats/07_schemas.md`` §7b) and the Splunk CIM reference pages for Change,
Alerts and Authentication (help.splunk.com, CIM 6.x "Change", "Alerts", "Authentication").

Choices that are not obvious:

* ``src``/``src_ip`` is the remote peer's outer endpoint, ``dest_ip`` in Network_Sessions is the
  peer's tunnel address (the CIM's "IP address leased to the client" for VPN), ``dvc`` the gateway.
* ``bytes_out`` is what the source sent and ``bytes_in`` what it received (``source.bytes`` /
  ``destination.bytes``): for a WireGuard peer that is the gateway's rx / tx.
* Fields a data model computes with ``fillnull "unknown"`` (``user``, ``dest_ip``, ``src``, ``dest``)
  are set to ``unknown`` here too, so a document searches the same with or without the add-on.
* Only the tags the event really earns are set: ``start``/``end`` (Session_Start/Session_End) only for
  ECS session starts and ends, not for every handshake (a WireGuard rekey every two minutes is not a
  new session). Events with no fitting data model carry ``tag: ["wireguard"]`` only.
* Timestamps stay ISO 8601 in ``time``; a Splunk HEC sink puts it into the envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .families import family, gateway_interface, peer_key, peer_name

__all__ = ["ACTIONS_BY_MODEL", "TAGS_BY_MODEL", "data_model", "to_cim"]

_EMPTY: Mapping[str, Any] = {}
UNKNOWN: Final = "unknown"

TAGS_BY_MODEL: Final[dict[str, tuple[str, ...]]] = {
    "Network_Sessions": ("network", "session", "vpn"),
    "Network_Traffic": ("network", "communicate"),
    "Change": ("change", "network"),
    "Alerts": ("alert",),
    "Authentication": ("authentication",),
    "": ("wireguard",),
}
"""Tags per data model (Change: the Network_Changes dataset; Network_Sessions: its VPN dataset)."""

ACTIONS_BY_MODEL: Final[dict[str, frozenset[str]]] = {
    "Network_Sessions": frozenset({"started", "blocked", "ended"}),
    "Network_Traffic": frozenset({"allowed", "blocked", "teardown"}),
    "Change": frozenset(
        {"acl_modified", "cleared", "created", "deleted", "modified", "read", "stopped", "updated"}
    ),
    "Authentication": frozenset({"success", "failure"}),
}
"""The ``action`` values each data model allows (Alerts has no ``action``)."""

_MODEL_BY_FAMILY: Final = {
    "tunnel": "Network_Sessions",
    "traffic": "Network_Traffic",
    "change": "Change",
    "alert": "Alerts",
    "identity": "Authentication",
    "other": "",
}
_DIRECTION: Final = {"inbound": "inbound", "outbound": "outbound", "ingress": "inbound", "egress": "outbound"}
_ACL_ACTIONS: Final = frozenset({"config-file-metadata-changed", "config-file-exposed"})


def data_model(doc: Mapping[str, Any]) -> str:
    """The CIM data model a document maps to (``""``: none fits)."""
    return _MODEL_BY_FAMILY[family(doc.get("event") or _EMPTY)]


def _vendor_product(vendor: object, product: object) -> str:
    """``WireGuard wireguard-go``; the product alone when it already names the vendor."""
    parts = [p for p in (vendor, product) if isinstance(p, str) and p]
    if len(parts) == 2 and (parts[1].lower() + " ").startswith(parts[0].lower() + " "):
        parts = parts[1:]
    return " ".join(parts) or "wgsiem"


def _severity(score: object) -> str:
    """ECS ``event.severity`` (0–100, as wgsiem and Elastic rules use it) → CIM severity word."""
    if not isinstance(score, int | float) or isinstance(score, bool):
        return UNKNOWN
    if score >= 74:
        return "critical"
    if score >= 48:
        return "high"
    if score >= 22:
        return "medium"
    return "low" if score > 0 else "informational"


def to_cim(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The CIM document of one ECS document (pure; never raises on a valid ECS document)."""
    ev = doc.get("event") or _EMPTY
    fam = family(ev)
    model = _MODEL_BY_FAMILY[fam]
    obs = doc.get("observer") or _EMPTY
    src = doc.get("source") or _EMPTY
    dst = doc.get("destination") or _EMPTY
    net = doc.get("network") or _EMPTY
    types = ev.get("type") or ()
    outcome = ev.get("outcome")
    action = ev.get("action")

    vendor = obs.get("vendor")
    product = obs.get("product")
    dvc = (
        obs.get("hostname")
        or (doc.get("agent") or _EMPTY).get("name")
        or (doc.get("host") or _EMPTY).get("name")
    )
    out: dict[str, Any] = {
        "time": doc.get("@timestamp"),
        "tag": list(TAGS_BY_MODEL[model]),
        "cim_data_model": model or None,
        "vendor_product": _vendor_product(vendor, product),
        "dvc": dvc or UNKNOWN,
        "event_id": ev.get("id"),
        "signature": action,
        "user": peer_name(doc) or UNKNOWN,
    }
    if net.get("protocol"):
        out["app"] = net["protocol"]  # wireguard; a flow inside the tunnel has none
    ips = obs.get("ip")
    if ips:
        out["dvc_ip"] = ips[0] if isinstance(ips, list) else ips
    iface = gateway_interface(doc)
    if iface:
        out["dest_interface"] = iface
    key = peer_key(doc)
    if key:
        out["wireguard_peer_public_key"] = key
    if outcome in ("success", "failure"):
        out["status"] = outcome
    if "message" in doc:
        out["message"] = doc["message"]

    src_ip = src.get("ip")
    if fam == "tunnel":
        in_session = "session" in (ev.get("category") or ())
        if "denied" in types or outcome == "failure":
            out["action"] = "blocked"
        elif "end" in types:
            out["action"] = "ended"
            if in_session:
                out["tag"].append("end")
        else:
            out["action"] = "started"
            if in_session and "start" in types:
                out["tag"].append("start")
        out["src_ip"] = out["src"] = src_ip or UNKNOWN
        out["dest_ip"] = out["dest"] = (src.get("nat") or _EMPTY).get("ip") or UNKNOWN
        _ports_bytes(out, src, dst, net)
        _duration(out, ev)
        session = ((doc.get("wireguard") or _EMPTY).get("session") or _EMPTY).get("id")
        if session:
            out["session_id"] = session
    elif fam == "traffic":
        if "denied" in types or outcome == "failure":
            out["action"] = "blocked"
        elif "end" in types:
            out["action"] = "teardown"
        else:
            out["action"] = "allowed"
        out["src_ip"] = out["src"] = src_ip or UNKNOWN
        out["dest_ip"] = out["dest"] = dst.get("ip") or dvc or UNKNOWN
        out["transport"] = net.get("transport") or UNKNOWN
        kind = net.get("type")
        out["protocol"] = "ip" if kind in ("ipv4", "ipv6") else (kind or UNKNOWN)
        if kind in ("ipv4", "ipv6"):
            out["protocol_version"] = kind[3]
        _ports_bytes(out, src, dst, net)
        _duration(out, ev)
        direction = _DIRECTION.get(net.get("direction") or "")
        if direction:
            out["direction"] = direction
        if "community_id" in net:
            out["flow_id"] = net["community_id"]
        ingress = ((obs.get("ingress") or _EMPTY).get("interface") or _EMPTY).get("name")
        if ingress:
            out["src_interface"] = ingress
        session = ((doc.get("wireguard") or _EMPTY).get("session") or _EMPTY).get("id")
        if session:
            out["session_id"] = session
    elif fam == "change":
        _change(out, doc, ev, types, action, outcome, dvc)
    elif fam == "alert":
        _alert(out, doc, ev, src_ip, dst, dvc)
    elif fam == "identity":
        out["action"] = "success" if outcome == "success" else "failure"
        out["src"] = src_ip or UNKNOWN
        out["dest"] = dvc or UNKNOWN
        out["app"] = ev.get("provider") or out["vendor_product"]
        factor = (((doc.get("wireguard") or _EMPTY).get("context")) or _EMPTY).get("factor")
        if factor:
            out["authentication_method"] = factor
    if out["cim_data_model"] is None:
        del out["cim_data_model"]
    return out


def _ports_bytes(
    out: dict[str, Any], src: Mapping[str, Any], dst: Mapping[str, Any], net: Mapping[str, Any]
) -> None:
    out["src_port"] = src.get("port", 0)
    out["dest_port"] = dst.get("port", 0)
    sent, received = src.get("bytes"), dst.get("bytes")
    if sent is not None or received is not None:
        out["bytes_out"] = sent or 0
        out["bytes_in"] = received or 0
        out["bytes"] = net.get("bytes", (sent or 0) + (received or 0))
    elif "bytes" in net:
        out["bytes"] = net["bytes"]
    sent_p, received_p = src.get("packets"), dst.get("packets")
    if sent_p is not None or received_p is not None:
        out["packets_out"] = sent_p or 0
        out["packets_in"] = received_p or 0
        out["packets"] = net.get("packets", (sent_p or 0) + (received_p or 0))


def _duration(out: dict[str, Any], ev: Mapping[str, Any]) -> None:
    ns = ev.get("duration")
    if isinstance(ns, int | float) and not isinstance(ns, bool):
        out["duration"] = ns / 1e9


def _change(
    out: dict[str, Any],
    doc: Mapping[str, Any],
    ev: Mapping[str, Any],
    types: Any,
    action: Any,
    outcome: Any,
    dvc: Any,
) -> None:
    if action in _ACL_ACTIONS:
        out["action"] = "acl_modified"
    elif "creation" in types:
        out["action"] = "created"
    elif "deletion" in types:
        out["action"] = "deleted"
    else:
        out["action"] = "modified"
    out["result"] = outcome or UNKNOWN
    out["dest"] = out["src"] = dvc or UNKNOWN
    wg = doc.get("wireguard") or _EMPTY
    file = doc.get("file") or _EMPTY
    route = wg.get("route") or _EMPTY
    address = wg.get("address") or _EMPTY
    run = wg.get("config_run") or _EMPTY
    key = peer_key(doc)
    if route:
        category, obj = "route", route.get("destination")
    elif address:
        category, obj = "address", address.get("address")
    elif key and isinstance(action, str) and not action.startswith("config-"):
        category, obj = "wireguard_peer", key
    elif file.get("path"):
        category, obj = "file", file["path"]
        out["object_path"] = file["path"]
        out["change_type"] = "filesystem"
    elif run:
        category, obj = "config_run", run.get("run_id") or run.get("tool")
    else:
        category, obj = "wireguard_interface", gateway_interface(doc)
    out.setdefault("change_type", "wireguard")
    out["object_category"] = category
    out["object"] = out["object_id"] = obj if obj is not None else UNKNOWN
    if file.get("path"):
        out["object_path"] = file["path"]
    changed = wg.get("change")
    if isinstance(changed, Mapping) and changed:
        out["object_attrs"] = sorted(str(k) for k in changed)
    proc = doc.get("process") or _EMPTY
    if proc.get("command_line"):
        out["command"] = proc["command_line"]


def _alert(
    out: dict[str, Any],
    doc: Mapping[str, Any],
    ev: Mapping[str, Any],
    src_ip: Any,
    dst: Mapping[str, Any],
    dvc: Any,
) -> None:
    rule = doc.get("rule") or _EMPTY
    host = doc.get("host") or _EMPTY
    out["type"] = "alert"
    out["app"] = out["vendor_product"]
    out["id"] = ev.get("id")
    out["severity"] = _severity(ev.get("severity"))
    if "severity" in ev:
        out["severity_id"] = ev["severity"]
    if "risk_score" in ev:
        out["risk_score"] = ev["risk_score"]
    out["signature"] = rule.get("name") or ev.get("action")
    if rule.get("id"):
        out["signature_id"] = rule["id"]
    out["description"] = doc.get("message") or rule.get("description") or ev.get("action")
    out["src"] = src_ip or UNKNOWN
    out["dest"] = dst.get("ip") or host.get("name") or dvc or UNKNOWN
    technique = ((doc.get("threat") or _EMPTY).get("technique") or _EMPTY).get("id")
    if technique:
        out["mitre_technique_id"] = technique
