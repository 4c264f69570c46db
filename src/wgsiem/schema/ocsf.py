"""ECS document → OCSF 1.x event (Tunnel Activity, Network Activity, Entity Management, Detection
Finding, Authentication, Base Event).

Classes and attributes from ``ocsf/ocsf-schema`` (``shared/reference/formats/07_schemas.md`` §7c:
``events/network/tunnel_activity.json``, ``network_activity.json``, ``base_event.json``,
``dictionary.json``; and ``events/iam/entity_management.json``, ``events/iam/authentication.json``,
``events/findings/detection_finding.json``, ``objects/managed_entity.json``,
``objects/finding_info.json``, ``objects/metadata.json``).

**Configuration changes → Entity Management (3004, IAM).** OCSF has no "configuration change" class.
Entity Management is "activity … at a management console … a create, read, update, and delete operation
on a managed entity", and its ``entity`` (managed_entity: ``name``, ``type``, ``uid``, ``data``) and
``entity_result`` carry a peer, an interface, a route or a config file with the before/after values.
Device Config State Change (5019) was the other candidate; it reports the *security state* of a device
(``security_states``, ``state_id`` Enabled/Disabled), which a peer added or an AllowedIPs edit is not.

Choices: ``src_endpoint`` is the remote peer's outer endpoint, ``dst_endpoint`` the gateway (its host
name, listen port and interface); ``traffic.bytes_out`` is what the source sent (``source.bytes``) and
``bytes_in`` what it received, as the OCSF dictionary defines them; ``time`` is epoch milliseconds;
``metadata.product`` is wgsiem (the producer of the normalized event) and ``metadata.log_provider``
the WireGuard implementation that logged it. WireGuard-specific fields go to ``unmapped.wireguard``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from .families import family, gateway_interface, peer_key, peer_name

__all__ = ["CLASSES", "OCSF_VERSION", "to_ocsf"]

OCSF_VERSION: Final = "1.4.0"
"""The oldest release in which every class and attribute used here exists: Tunnel Activity came in
1.2.0, Detection Finding's ``is_alert`` and ``network_connection_info.community_uid`` in 1.4.0. Checked
by ``tests/schema/test_ocsf_official.py`` against the schema export of schema.ocsf.io that
``ocsf-json-schema`` ships (1.3.0 rejects those two attributes and ``device`` on a Base Event)."""

_HOST_PROFILE: Final = "host"
"""``device`` and ``actor`` are attributes of the ``host`` profile in Network Activity and Base Event
(native in Tunnel Activity, resp. Entity Management): an event that carries one declares the profile,
as the OCSF validator demands."""

_EMPTY: Mapping[str, Any] = {}

CLASSES: Final[dict[str, tuple[int, str, int, str, dict[int, str]]]] = {
    # family: (class_uid, class_name, category_uid, category_name, activity captions)
    "tunnel": (4014, "Tunnel Activity", 4, "Network Activity", {1: "Open", 2: "Close", 3: "Renew"}),
    "traffic": (
        4001,
        "Network Activity",
        4,
        "Network Activity",
        {1: "Open", 2: "Close", 3: "Reset", 4: "Fail", 5: "Refuse", 6: "Traffic", 7: "Listen"},
    ),
    "change": (
        3004,
        "Entity Management",
        3,
        "Identity & Access Management",
        {1: "Create", 2: "Read", 3: "Update", 4: "Delete"},
    ),
    "alert": (2004, "Detection Finding", 2, "Findings", {1: "Create", 2: "Update", 3: "Close"}),
    "identity": (3002, "Authentication", 3, "Identity & Access Management", {1: "Logon", 2: "Logoff"}),
    "other": (0, "Base Event", 0, "Uncategorized", {}),
}
_SEVERITY: Final = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
_STATUS: Final = {"success": (1, "Success"), "failure": (2, "Failure")}
_DIRECTION: Final = {
    "inbound": (1, "Inbound"),
    "outbound": (2, "Outbound"),
    "ingress": (1, "Inbound"),
    "egress": (2, "Outbound"),
}
_PROTO_NUM: Final = {"udp": 17, "tcp": 6, "icmp": 1, "ipv6-icmp": 58, "sctp": 132}


_SECONDS: dict[str, int] = {}
"""``YYYY-MM-DDTHH:MM:SS`` → epoch seconds, for the seconds seen lately (cleared past 4,096)."""


def _ms(iso: object) -> int | None:
    """ECS date → epoch milliseconds. wgsiem's own form (``2026-11-25T16:09:03.970Z``) costs one dict
    look-up of its second (events come in bursts of the same second); anything else is parsed."""
    if type(iso) is str and len(iso) == 24 and iso[19] == "." and iso[23] == "Z":
        second = iso[:19]
        epoch = _SECONDS.get(second)
        frac = iso[20:23]
        if epoch is not None and frac.isdigit():
            return epoch * 1000 + int(frac)
        try:
            epoch = int(datetime.fromisoformat(second + "+00:00").timestamp())
        except ValueError:
            return None
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        _SECONDS[second] = epoch
        return epoch * 1000 + int(frac) if frac.isdigit() else None
    if not isinstance(iso, str):
        return None
    try:
        return int(datetime.fromisoformat(iso).timestamp() * 1000)
    except ValueError:
        return None


def _time(timestamp: object, created: int | None) -> int:
    """``time`` is required: the event time, else when wgsiem saw it, else the epoch."""
    t = _ms(timestamp)
    if t is not None:
        return t
    return created if created is not None else 0


def _severity_id(score: object) -> int:
    if not isinstance(score, int | float) or isinstance(score, bool):
        return 1
    if score >= 74:
        return 5
    if score >= 48:
        return 4
    if score >= 22:
        return 3
    return 2 if score > 0 else 1


def _title(action: object) -> str:
    return action.replace("-", " ").title() if isinstance(action, str) else "Other"


def to_ocsf(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The OCSF event of one ECS document (pure; never raises on a valid ECS document)."""
    ev = doc.get("event") or _EMPTY
    fam = family(ev)
    class_uid, class_name, category_uid, category_name, captions = CLASSES[fam]
    types = ev.get("type") or ()
    outcome = ev.get("outcome")
    action = ev.get("action")
    activity_id = _activity(fam, ev, types, outcome, action)
    activity_name = captions.get(activity_id) or _title(action)
    severity_id = _severity_id(ev.get("severity"))
    obs = doc.get("observer") or _EMPTY
    agent = doc.get("agent") or _EMPTY
    metadata: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": {"name": "wgsiem", "vendor_name": "wgsiem", "version": agent.get("version") or "unknown"},
    }
    for name, value in (("uid", ev.get("id")), ("log_name", ev.get("dataset")), ("event_code", action)):
        if isinstance(value, str):
            metadata[name] = value
    provider = obs.get("product") or obs.get("vendor")
    if provider:
        metadata["log_provider"] = provider
    created = _ms(ev.get("created"))
    if created is not None:
        metadata["processed_time"] = created
    if "sequence" in ev:
        metadata["sequence"] = ev["sequence"]
    out: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        # the caption of type_uid: for 99 "…: Other" (activity_name carries the source's own word)
        "type_name": f"{class_name}: {captions.get(activity_id, 'Other')}",
        "severity_id": severity_id,
        "severity": _SEVERITY[severity_id],
        "time": _time(doc.get("@timestamp"), created),
        "metadata": metadata,
    }
    status = _STATUS.get(outcome) if fam != "alert" and isinstance(outcome, str) else None
    if status:
        out["status_id"], out["status"] = status
    if "message" in doc:
        out["message"] = doc["message"]
    if "duration" in ev and isinstance(ev["duration"], int):
        out["duration"] = ev["duration"] // 1_000_000
    for ecs_name, name in (("start", "start_time"), ("end", "end_time")):
        t = _ms(ev.get(ecs_name))
        if t is not None:
            out[name] = t
    dvc = obs.get("hostname") or agent.get("name") or (doc.get("host") or _EMPTY).get("name")
    if dvc:
        out["device"] = {"hostname": dvc, "type_id": 0, "type": "Unknown"}
    if fam == "tunnel":
        _tunnel(out, doc, dvc)
    elif fam == "traffic":
        _traffic(out, doc, dvc)
    elif fam == "change":
        _change(out, doc, action)
    elif fam == "alert":
        _finding(out, doc, ev)
    elif fam == "identity":
        _identity(out, doc, ev, dvc)
    if "device" in out or "actor" in out:
        metadata["profiles"] = [_HOST_PROFILE]
    wg = doc.get("wireguard")
    if wg:
        out["unmapped"] = {"wireguard": _without_key_material(wg)}
    return out


_KEY_FIELDS: Final = (("interface", "private_key"), ("peer", "preshared_key"))
_KEY_OBJECT: Final = frozenset({"present", "fingerprint"})


def _without_key_material(wg: Mapping[str, Any]) -> Mapping[str, Any]:
    """``wireguard.*`` as is, unless a key field holds anything but ``{present, fingerprint}``.

    Sources never put key material there (they emit the object); this guard costs two lookups per
    event and makes sure a source bug cannot carry a private or preshared key into an OCSF document.
    """
    for obj_name, field in _KEY_FIELDS:
        obj = wg.get(obj_name)
        if isinstance(obj, Mapping) and field in obj:
            value = obj[field]
            if not isinstance(value, dict) or not value.keys() <= _KEY_OBJECT:
                safe = {**obj, field: {"present": bool(value)}}
                return _without_key_material({**wg, obj_name: safe})
    return wg


def _activity(fam: str, ev: Mapping[str, Any], types: Any, outcome: Any, action: Any) -> int:
    if fam == "tunnel":
        cats = ev.get("category") or ()
        if "denied" in types or outcome == "failure":
            return 1  # an Open that failed: status_id says so
        if "session" in cats and "end" in types:
            return 2
        if "session" in cats and "start" in types:
            return 1
        if "authentication" in cats and outcome == "success":
            return 3  # a completed handshake: new keys for the tunnel
        return 99
    if fam == "traffic":
        if "denied" in types:
            return 5
        if outcome == "failure":
            return 4
        if "end" in types:
            return 2
        if "start" in types:
            return 1
        if "connection" in types or action == "transfer":
            return 6
        return 99
    if fam == "change":
        if "creation" in types:
            return 1
        if "deletion" in types:
            return 4
        if "change" in types:
            return 3
        return 99
    if fam == "alert":
        return 1
    if fam == "identity":
        if "start" in types:
            return 1
        if "end" in types:
            return 2
        return 99
    return 99


def _endpoint(ecs: Mapping[str, Any]) -> dict[str, Any]:
    """An ECS side as a network_endpoint; none without an address (a port alone names nothing)."""
    if "ip" not in ecs:
        return {}
    if "port" in ecs:
        return {"ip": ecs["ip"], "port": ecs["port"]}
    return {"ip": ecs["ip"]}


def _gateway(doc: Mapping[str, Any], dvc: Any) -> dict[str, Any]:
    dst = doc.get("destination") or _EMPTY
    out = _endpoint(dst)
    if "port" in dst:
        out["port"] = dst["port"]  # the listen port, also when the event has no gateway address
    if dvc:
        out["hostname"] = dvc
    iface = gateway_interface(doc)
    if iface:
        out["interface_name"] = iface
    if out.keys() <= {"port"}:
        out["name"] = "unknown"  # network classes need one endpoint; every source names its host
    return out


def _connection_info(net: Mapping[str, Any]) -> dict[str, Any]:
    transport = net.get("transport")
    info: dict[str, Any] = {}
    direction = _DIRECTION.get(net.get("direction") or "")
    info["direction_id"], info["direction"] = direction or (0, "Unknown")
    number = net.get("iana_number")
    if isinstance(number, str) and number.isdigit():
        info["protocol_num"] = int(number)
    elif transport in _PROTO_NUM:
        info["protocol_num"] = _PROTO_NUM[transport]
    if transport:
        info["protocol_name"] = transport
    if net.get("type") in ("ipv4", "ipv6"):
        info["protocol_ver_id"] = 4 if net["type"] == "ipv4" else 6
    if "community_id" in net:
        info["community_uid"] = net["community_id"]
    return info


def _traffic_obj(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    src = doc.get("source") or _EMPTY
    dst = doc.get("destination") or _EMPTY
    net = doc.get("network") or _EMPTY
    out: dict[str, Any] = {}
    for name, value in (
        ("bytes_out", src.get("bytes")),
        ("bytes_in", dst.get("bytes")),
        ("bytes", net.get("bytes")),
        ("packets_out", src.get("packets")),
        ("packets_in", dst.get("packets")),
        ("packets", net.get("packets")),
    ):
        if value is not None:
            out[name] = value
    return out or None


def _tunnel(out: dict[str, Any], doc: Mapping[str, Any], dvc: Any) -> None:
    src = doc.get("source") or _EMPTY
    out["protocol_name"] = "WireGuard"
    endpoint = _endpoint(src)
    if endpoint:
        out["src_endpoint"] = endpoint
    out["dst_endpoint"] = _gateway(doc, dvc)
    out["connection_info"] = _connection_info(doc.get("network") or _EMPTY)
    iface: dict[str, Any] = {"type_id": 4, "type": "Tunnel"}
    name = gateway_interface(doc)
    if name:
        iface["name"] = name
    tunnel_ip = (src.get("nat") or _EMPTY).get("ip")
    if tunnel_ip:
        iface["ip"] = tunnel_ip
    if len(iface) > 2:  # network_interface needs at least one of ip, mac, name, hostname
        out["tunnel_interface"] = iface
    session = (doc.get("wireguard") or _EMPTY).get("session") or _EMPTY
    sess: dict[str, Any] = {"is_vpn": True}
    if "id" in session:
        sess["uid"] = str(session["id"])
    start = _ms(session.get("start"))
    if start is not None:
        sess["created_time"] = start
    out["session"] = sess
    traffic = _traffic_obj(doc)
    if traffic:
        out["traffic"] = traffic
    user = _user(doc)
    if user:
        out["user"] = user


def _traffic(out: dict[str, Any], doc: Mapping[str, Any], dvc: Any) -> None:
    endpoint = _endpoint(doc.get("source") or _EMPTY)
    if endpoint:
        out["src_endpoint"] = endpoint
    dst = doc.get("destination") or _EMPTY
    out["dst_endpoint"] = _endpoint(dst) if "ip" in dst else _gateway(doc, dvc)
    out["connection_info"] = _connection_info(doc.get("network") or _EMPTY)
    traffic = _traffic_obj(doc)
    if traffic:
        out["traffic"] = traffic
    user = _user(doc)
    if user:
        out["actor"] = {"user": user}  # Network Activity has no ``user``; the actor (host profile) does


def _user(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    name = peer_name(doc)
    return {"name": name} if name else None


def _entity(doc: Mapping[str, Any], action: Any) -> dict[str, Any]:
    wg = doc.get("wireguard") or _EMPTY
    file = doc.get("file") or _EMPTY
    route = wg.get("route") or _EMPTY
    address = wg.get("address") or _EMPTY
    run = wg.get("config_run") or _EMPTY
    key = peer_key(doc)
    if route:
        return {"type": "route", "name": route.get("destination")}
    if address:
        return {"type": "address", "name": address.get("address")}
    if key and isinstance(action, str) and not action.startswith("config-"):
        peer = wg.get("peer") or _EMPTY
        return {"type": "wireguard_peer", "uid": key, "name": peer.get("name") or key}
    if file.get("path"):
        out = {"type": "file", "name": file["path"]}
        sha = (file.get("hash") or _EMPTY).get("sha256")
        if sha:
            out["uid"] = sha
        return out
    if run:
        return {"type": "config_run", "uid": run.get("run_id"), "name": run.get("tool")}
    iface = wg.get("interface") or _EMPTY
    out = {"type": "wireguard_interface", "name": gateway_interface(doc) or "unknown"}
    if isinstance(iface.get("public_key"), str):
        out["uid"] = iface["public_key"]
    return out


def _change(out: dict[str, Any], doc: Mapping[str, Any], action: Any) -> None:
    entity = {k: v for k, v in _entity(doc, action).items() if v is not None}
    if "name" not in entity and "uid" not in entity:
        entity["name"] = "unknown"  # managed_entity needs a name or a uid
    out["entity"] = entity
    changed = (doc.get("wireguard") or _EMPTY).get("change")
    if changed:
        out["entity_result"] = {**entity, "data": changed}
    actor: dict[str, Any] = {}
    user = doc.get("user") or _EMPTY
    if user.get("name") or user.get("id"):
        actor["user"] = {k: user[k] for k in ("name", "uid") if k in user} or {"uid": str(user.get("id"))}
    proc = doc.get("process") or _EMPTY
    if proc.get("name") and (proc.get("pid") is not None or proc.get("entity_id")):
        actor["process"] = {  # an OCSF process needs a pid or a uid
            k: v
            for k, v in (
                ("name", proc.get("name")),
                ("pid", proc.get("pid")),
                ("uid", proc.get("entity_id")),
                ("cmd_line", proc.get("command_line")),
            )
            if v is not None
        }
    if actor:
        out["actor"] = actor


def _finding(out: dict[str, Any], doc: Mapping[str, Any], ev: Mapping[str, Any]) -> None:
    rule = doc.get("rule") or _EMPTY
    info: dict[str, Any] = {
        "uid": ev.get("id") or "unknown",
        "title": rule.get("name") or doc.get("message") or _title(ev.get("action")),
    }
    if rule.get("description"):
        info["desc"] = rule["description"]
    if rule.get("id") or rule.get("name"):
        info["analytic"] = {
            k: v
            for k, v in (
                ("uid", rule.get("id")),
                ("name", rule.get("name")),
                ("type_id", 1),
                ("type", "Rule"),
            )
            if v is not None
        }
    threat = doc.get("threat") or _EMPTY
    technique = threat.get("technique") or _EMPTY
    tactic = threat.get("tactic") or _EMPTY
    if technique.get("id"):
        attack: dict[str, Any] = {"technique": _attack_item(technique)}
        if tactic.get("id"):
            attack["tactic"] = _attack_item(tactic)
        info["attacks"] = [attack]
    out["finding_info"] = info
    out["is_alert"] = True
    out["status_id"], out["status"] = 1, "New"
    if "risk_score" in ev:
        out["risk_score"] = int(ev["risk_score"])
    key = peer_key(doc)
    if key:
        out["resources"] = [{"type": "wireguard_peer", "uid": key, "name": key}]


def _attack_item(ecs: Mapping[str, Any]) -> dict[str, Any]:
    """The first ``threat.technique``/``threat.tactic`` (ECS keeps parallel id/name arrays)."""
    item = {"uid": ecs["id"][0]}
    names = ecs.get("name")
    if names and isinstance(names[0], str):
        item["name"] = names[0]
    return item


def _identity(out: dict[str, Any], doc: Mapping[str, Any], ev: Mapping[str, Any], dvc: Any) -> None:
    user = doc.get("user") or _EMPTY
    out["user"] = {"name": user.get("name") or "unknown"}
    endpoint = _endpoint(doc.get("source") or _EMPTY)
    if endpoint:
        out["src_endpoint"] = endpoint
    out["service"] = {"name": ev.get("provider") or "unknown"}
    if dvc:
        out["dst_endpoint"] = {"hostname": dvc}
    factor = (((doc.get("wireguard") or _EMPTY).get("context")) or _EMPTY).get("factor")
    if factor:
        out["is_mfa"] = ev.get("action") == "identity-mfa"
