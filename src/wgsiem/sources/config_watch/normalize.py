"""Pure mapping of config changes and drift items to ECS documents.

The file goes to ECS ``file.*`` (path, sha256, owner, uid, gid, mode, mtime, size) as it is *after*
the change, or as it was last seen for a deletion; the hash before the change is
``wireguard.config.file.sha256.before``. The peer and the interface go under ``wireguard.*`` in the
same shape ``wg_state`` uses, so a detection can join a config event with a runtime one on
``wireguard.peer.public_key``. Private and preshared keys appear only as keyed fingerprints.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from wgsiem import __version__
from wgsiem.event import event_id
from wgsiem.sources.config_watch.differ import Change
from wgsiem.sources.config_watch.drift import DriftItem
from wgsiem.sources.config_watch.records import ConfigPeer, FileVersion
from wgsiem.sources.wg_state.normalize import ECS_VERSION, iso

__all__ = ["ACTIONS", "DATASET", "change_to_ecs", "drift_to_ecs"]

DATASET = "wireguard.config"

_FILE = ["configuration", "file"]
# action → (event.category, event.type, event.outcome)
ACTIONS: dict[str, tuple[list[str], list[str], str | None]] = {
    "config-file-created": (_FILE, ["creation"], None),
    "config-file-deleted": (_FILE, ["deletion"], None),
    "config-file-changed": (_FILE, ["change"], None),
    "config-file-metadata-changed": (_FILE, ["change"], None),
    "config-file-exposed": (_FILE, ["info"], None),
    "config-parse-error": (["configuration"], ["info"], "failure"),
    "interface-key-changed": (["configuration"], ["change"], None),
    "interface-changed": (["configuration"], ["change"], None),
    "hooks-changed": (["configuration"], ["change"], None),
    "peer-added": (["configuration"], ["creation"], None),
    "peer-removed": (["configuration"], ["deletion"], None),
    "allowed-ips-changed": (["configuration"], ["change"], None),
    "endpoint-changed": (["configuration"], ["change"], None),
    "persistent-keepalive-changed": (["configuration"], ["change"], None),
    "preshared-key-changed": (["configuration"], ["change"], None),
    "peer-name-changed": (["configuration"], ["change"], None),
    "config-drift-detected": (["configuration"], ["info"], None),
    "config-drift-resolved": (["configuration"], ["info"], None),
}


def _endpoint_ip(ep: str | None) -> str | None:
    if not ep:
        return None
    host = ep[1 : ep.find("]")] if ep.startswith("[") else ep.rpartition(":")[0]
    host = host.split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _host_routes(allowed: tuple[str, ...]) -> list[str]:
    out = []
    for cidr in allowed:
        ip, _, plen = cidr.partition("/")
        if (":" in ip and plen == "128") or (":" not in ip and plen == "32"):
            out.append(ip)
    return out


def peer_doc(p: ConfigPeer) -> dict[str, Any]:
    d: dict[str, Any] = {
        "public_key": p.public_key,
        "allowed_ips": list(p.allowed_ips),
        "preshared_key": {"present": p.preshared_key_present},
        "config_line": p.line,
    }
    if p.preshared_key_fingerprint:
        d["preshared_key"]["fingerprint"] = p.preshared_key_fingerprint
    if p.endpoint:
        d["endpoint"] = p.endpoint
    if p.persistent_keepalive is not None:
        d["persistent_keepalive_secs"] = p.persistent_keepalive
    if p.name:
        d["name"] = p.name
        d["name_source"] = p.name_source
    if p.labels:
        d["labels"] = dict(p.labels)
    return d


def _file_docs(v: FileVersion, before: FileVersion | None, after: FileVersion | None) -> tuple[dict, dict]:
    """(ECS ``file``, ``wireguard.config``) for the version ``v`` of the file."""
    f: dict[str, Any] = {
        "path": v.path,
        "name": os.path.basename(v.path),
        "directory": os.path.dirname(v.path),
        "type": "file",
        "hash": {"sha256": v.sha256},
    }
    ext = os.path.splitext(v.path)[1].lstrip(".")
    if ext:
        f["extension"] = ext
    conf: dict[str, Any] = {
        "file": {
            "path": v.path,
            "sha256": {
                "before": before.sha256 if before else None,
                "after": after.sha256 if after else None,
            },
            "holds_secrets": v.config.holds_secrets,
        },
        "dialect": v.config.dialect,
        "peer_count": len(v.config.peers),
        "parse_error_count": len(v.config.errors),
    }
    m = v.meta
    if m is not None:
        f.update(
            {
                "uid": str(m.uid),
                "gid": str(m.gid),
                "mode": f"{m.mode:04o}",
                "mtime": iso(m.mtime),
                "size": m.size,
                "inode": str(m.inode),
            }
        )
        if m.user:
            f["owner"] = m.user
        if m.group:
            f["group"] = m.group
        conf["file"].update(
            {
                "world_readable": m.world_readable,
                "world_accessible": m.world_accessible,
                "exposed": v.exposed,
            }
        )
    return f, conf


def _base(
    action: str, eid: str, interface: str, hostname: str, at: float, observed_at: float
) -> dict[str, Any]:
    category, etype, outcome = ACTIONS[action]
    event: dict[str, Any] = {
        "id": eid,
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
    return {
        "@timestamp": iso(at),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "agent": {"type": "wgsiem", "version": __version__},
        "observer": {
            "hostname": hostname,
            "type": "vpn",
            "vendor": "WireGuard",
            "product": "WireGuard",
            "ingress": {"interface": {"name": interface}},
        },
    }


def _interface_doc(v: FileVersion) -> dict[str, Any]:
    iface = v.config.interface
    d: dict[str, Any] = {"name": v.interface}
    if iface is None:
        return d
    d["private_key"] = {"present": iface.private_key_present}
    if iface.private_key_fingerprint:
        d["private_key"]["fingerprint"] = iface.private_key_fingerprint
    if iface.public_key:
        d["public_key"] = iface.public_key
    if iface.listen_port is not None:
        d["listen_port"] = iface.listen_port
    if iface.fwmark is not None:
        d["fwmark"] = iface.fwmark
    if iface.addresses:
        d["addresses"] = list(iface.addresses)
    return d


def _related(doc: dict[str, Any], peer: ConfigPeer | None, hashes: list[str]) -> None:
    rel: dict[str, Any] = {}
    if hashes:
        rel["hash"] = hashes
    if peer is not None:
        ips = []
        ep = _endpoint_ip(peer.endpoint)
        if ep:
            ips.append(ep)
        ips += [ip for ip in _host_routes(peer.allowed_ips) if ip not in ips]
        if ips:
            rel["ip"] = ips
        if peer.name:
            rel["user"] = [peer.name]
    if rel:
        doc["related"] = rel


def change_to_ecs(change: Change, *, hostname: str, at: float, observed_at: float) -> dict[str, Any]:
    """One ECS document for one file change; ``at`` is the event time (observation or replay time)."""
    v = change.current
    before, after = change.before, change.after
    eid = event_id(
        "config_watch",
        hostname,
        change.interface,
        before.sha256 if before else "",
        after.sha256 if after else "",
        change.action,
        change.peer.public_key if change.peer else "",
        f"{at:.3f}",
    )
    doc = _base(change.action, eid, change.interface, hostname, at, observed_at)
    f, conf = _file_docs(v, before, after)
    doc["file"] = f
    wg: dict[str, Any] = {"interface": _interface_doc(v), "config": conf}
    doc["wireguard"] = wg
    if change.peer is not None:
        wg["peer"] = peer_doc(change.peer)
    a, det = change.action, change.details
    if a in ("config-file-created", "config-file-deleted", "config-file-changed"):
        conf.update({k: val for k, val in det.items() if k != "peer_count"})
    elif a == "config-file-metadata-changed" and before and after and before.meta and after.meta:
        bm, am = before.meta, after.meta
        wg["change"] = {
            "mode": {"old": f"{bm.mode:04o}", "new": f"{am.mode:04o}"},
            "uid": {"old": bm.uid, "new": am.uid},
            "gid": {"old": bm.gid, "new": am.gid},
            "owner": {"old": bm.user, "new": am.user},
        }
    elif a == "config-parse-error":
        conf["errors"] = [{"line": line, "message": what} for line, what in det["errors"]]
    elif det:
        wg["change"] = _change_doc(a, det)
    hashes = [h for h in (before.sha256 if before else None, after.sha256 if after else None) if h]
    _related(doc, change.peer, list(dict.fromkeys(hashes)))
    return doc


def _change_doc(action: str, det: dict[str, Any]) -> dict[str, Any]:
    if action == "allowed-ips-changed":
        return {"allowed_ips": {k: det[k] for k in ("old", "new", "added", "removed")}}
    if action == "endpoint-changed":
        return {"endpoint": dict(det)}
    if action == "persistent-keepalive-changed":
        return {"persistent_keepalive_secs": dict(det)}
    if action == "peer-name-changed":
        return {"name": dict(det)}
    if action == "preshared-key-changed":
        return {"preshared_key": dict(det)}
    if action == "hooks-changed":
        return {"hooks": dict(det)}
    return dict(det)  # interface-changed, interface-key-changed: already {field: {old, new}}


def drift_to_ecs(
    item: DriftItem,
    *,
    state: str,
    since: float,
    interface: str,
    version: FileVersion | None,
    origin: str,
    hostname: str,
    at: float,
    observed_at: float,
) -> dict[str, Any]:
    """``config-drift-detected`` / ``config-drift-resolved`` for one drift item."""
    action = f"config-drift-{state}"
    eid = event_id(
        "config_watch",
        hostname,
        interface,
        action,
        item.kind,
        item.peer,
        item.file,
        item.running,
        f"{since:.3f}",
    )
    doc = _base(action, eid, interface, hostname, at, observed_at)
    wg: dict[str, Any] = {
        "drift": {
            "kind": item.kind,
            "file": list(item.file),
            "running": list(item.running),
            "since": iso(since),
            "running_view": origin,
        }
    }
    doc["wireguard"] = wg
    peer: ConfigPeer | None = None
    if version is not None:
        f, conf = _file_docs(version, version, version)
        doc["file"] = f
        wg["config"] = conf
        wg["interface"] = _interface_doc(version)
        if item.peer:
            peer = version.config.peers.get(item.peer)
    else:
        wg["interface"] = {"name": interface}
    if peer is not None:
        wg["peer"] = peer_doc(peer)
    elif item.peer:
        wg["peer"] = {"public_key": item.peer, "allowed_ips": list(item.running)}
    _related(doc, peer, [version.sha256] if version else [])
    return doc
