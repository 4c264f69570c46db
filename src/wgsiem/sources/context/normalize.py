"""Pure mapping of context records to ECS documents.

Kinds and their ECS shape (docs/sources/context.md has one real example of each):

* identity → ``event.kind: event``, ``event.category: [authentication]``, ``user.*``, ``source.ip``;
* edr → ``event.kind: alert``, ``event.category: [intrusion_detection]``, ``host.*``, ``rule.*``;
* change → ``event.kind: state``, ``event.category: [configuration]``, the window in ``event.start`` /
  ``event.end`` and ``wireguard.change.*``;
* config_run / Ansible → ``event.kind: event``, ``event.category: [configuration]``, ``event.type``
  ``change`` when something changed, ``event.outcome`` from failed/unreachable.

A record naming an address or a key is attributed to a WireGuard peer from the shared
:class:`~wgsiem.sources.peer_directory.PeerDirectory` (``wireguard.peer``): a tunnel address through
AllowedIPs first, else a peer's current outer endpoint (:mod:`.attribution`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wgsiem import __version__
from wgsiem.event import event_id
from wgsiem.sources.context.ansible import AnsibleHostSummary, AnsibleTaskResult
from wgsiem.sources.context.attribution import PeerAttribution
from wgsiem.sources.context.schema import ChangeTicket, ConfigRun, EdrAlert, IdentityEvent
from wgsiem.sources.wg_state.normalize import ECS_VERSION, iso

__all__ = ["DATASET", "SEVERITY", "ansible_summary_doc", "ansible_task_doc", "record_doc"]

DATASET = "wireguard.context"
SEVERITY = {"low": 21, "medium": 47, "high": 73, "critical": 99}  # Elastic's risk-score bands


def _t(dt: datetime) -> float:
    return dt.timestamp()


def _base(
    kind: str, category: list[str], etype: list[str], action: str, at: float, eid: str, created: float
) -> dict[str, Any]:
    return {
        "@timestamp": iso(at),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "id": eid,
            "kind": kind,
            "category": category,
            "type": etype,
            "action": action,
            "dataset": DATASET,
            "module": "wireguard",
            "created": iso(created),
        },
        "agent": {"type": "wgsiem", "version": __version__},
        "wireguard": {},
    }


def _attribute(doc: dict[str, Any], peers: PeerAttribution | None, ips: list[str]) -> None:
    if peers is None:
        return
    for ip in ips:
        found = peers.attribute(ip)
        if found is not None:
            p, how = found
            doc["wireguard"]["peer"] = {
                "public_key": p.public_key,
                "interface": p.interface,
                "attributed_by": how,
                "address": ip,
            }
            return


def _related(doc: dict[str, Any], **values: list[str]) -> None:
    rel = {k: list(dict.fromkeys(v)) for k, v in values.items() if v}
    if rel:
        doc["related"] = rel


def identity_doc(
    r: IdentityEvent, host: str, created: float, peers: PeerAttribution | None
) -> dict[str, Any]:
    at = _t(r.time)
    etype = {"login": ["start"], "mfa": ["info"], "logout": ["end"]}[r.action]
    eid = r.id or f"{r.user}|{r.time.isoformat()}|{r.result}|{r.factor}|{r.source_ip}"
    doc = _base(
        "event", ["authentication"], etype, f"identity-{r.action}", at,
        event_id("context", "identity", r.provider, eid), created,
    )  # fmt: skip
    ev = doc["event"]
    ev["outcome"] = r.result
    ev["provider"] = r.provider
    if r.reason:
        ev["reason"] = r.reason
    user: dict[str, Any] = {"name": r.user}
    if r.user_domain:
        user["domain"] = r.user_domain
    doc["user"] = user
    ips = []
    if r.source_ip is not None:
        doc["source"] = {"ip": str(r.source_ip), "address": str(r.source_ip)}
        ips.append(str(r.source_ip))
    if r.user_agent:
        doc["user_agent"] = {"original": r.user_agent}
    ctx: dict[str, Any] = {"kind": "identity", "provider": r.provider}
    if r.factor:
        ctx["factor"] = r.factor
    if r.id:
        ctx["id"] = r.id
    doc["wireguard"]["context"] = ctx
    _attribute(doc, peers, ips)
    _related(doc, user=[r.user], ip=ips)
    return doc


def edr_doc(r: EdrAlert, host: str, created: float, peers: PeerAttribution | None) -> dict[str, Any]:
    at = _t(r.time)
    eid = r.id or f"{r.host}|{r.rule}|{r.time.isoformat()}"
    doc = _base(
        "alert", ["intrusion_detection"], ["info"], "edr-alert", at,
        event_id("context", "edr", r.vendor, eid), created,
    )  # fmt: skip
    ev = doc["event"]
    ev["severity"] = SEVERITY[r.severity]
    ev["risk_score"] = float(SEVERITY[r.severity])
    ev["provider"] = r.vendor
    ips = [str(ip) for ip in r.host_ip]
    doc["host"] = {"name": r.host, **({"ip": ips} if ips else {})}
    rule: dict[str, Any] = {"name": r.rule}
    if r.rule_id:
        rule["id"] = r.rule_id
    if r.description:
        rule["description"] = r.description
        doc["message"] = r.description
    doc["rule"] = rule
    doc["observer"] = {"vendor": r.vendor, "type": "edr"}
    if r.user:
        doc["user"] = {"name": r.user}
    ctx: dict[str, Any] = {"kind": "edr", "vendor": r.vendor, "severity": r.severity}
    if r.id:
        ctx["id"] = r.id
    doc["wireguard"]["context"] = ctx
    _attribute(doc, peers, ips)
    _related(doc, user=[r.user] if r.user else [], ip=ips, hosts=[r.host])
    return doc


def change_doc(r: ChangeTicket, host: str, created: float, peers: PeerAttribution | None) -> dict[str, Any]:
    at = _t(r.time)
    doc = _base(
        "state", ["configuration"], ["info"], "change-ticket", at,
        event_id("context", "change", r.provider or "", r.id, r.approval, r.time.isoformat()), created,
    )  # fmt: skip
    ev = doc["event"]
    ev["start"] = iso(_t(r.window_start))
    ev["end"] = iso(_t(r.window_end))
    ev["duration"] = round((_t(r.window_end) - _t(r.window_start)) * 1e9)
    if r.provider:
        ev["provider"] = r.provider
    doc["user"] = {"name": r.requester}
    change: dict[str, Any] = {
        "id": r.id,
        "approval": r.approval,
        "requester": r.requester,
        "window": {"start": ev["start"], "end": ev["end"]},
        "hosts": list(r.hosts),
        "peers": list(r.peers),
        "assets": list(r.assets),
    }
    if r.title:
        change["title"] = r.title
        doc["message"] = r.title
    if peers is not None:
        known = {k: p.interface for k in r.peers if (p := peers.peers.by_key(k)) is not None}
        change["peer_interfaces"] = known
    doc["wireguard"]["change"] = change
    doc["wireguard"]["context"] = {"kind": "change"}
    _related(doc, user=[r.requester], hosts=list(r.hosts))
    return doc


def config_run_doc(r: ConfigRun, host: str, created: float, peers: PeerAttribution | None) -> dict[str, Any]:
    at = _t(r.time)
    doc = _base(
        "event", ["configuration"], ["change"] if r.changed else ["info"], "config-run", at,
        event_id("context", "config_run", r.tool, r.run_id, r.host), created,
    )  # fmt: skip
    doc["event"]["outcome"] = r.result
    if r.start:
        doc["event"]["start"] = iso(_t(r.start))
        doc["event"]["end"] = iso(at)
    doc["host"] = {"name": r.host}
    if r.user:
        doc["user"] = {"name": r.user}
    doc["wireguard"]["config_run"] = {
        "tool": r.tool,
        "run_id": r.run_id,
        "changed": r.changed,
        "failed": r.failed,
    }
    doc["wireguard"]["context"] = {"kind": "config_run"}
    _related(doc, hosts=[r.host], user=[r.user] if r.user else [])
    return doc


def ansible_task_doc(r: AnsibleTaskResult, fallback: float, created: float) -> dict[str, Any]:
    at = r.end or r.start or fallback
    bad = r.failed or r.unreachable
    doc = _base(
        "event", ["configuration"], ["change"] if r.changed else ["info"], "config-task", at,
        event_id("context", "ansible", r.run_id, r.play_id, r.task_id, r.host), created,
    )  # fmt: skip
    doc["event"]["outcome"] = "failure" if bad else "success"
    if r.start is not None and r.end is not None:
        doc["event"]["start"] = iso(r.start)
        doc["event"]["end"] = iso(r.end)
        doc["event"]["duration"] = round((r.end - r.start) * 1e9)
    doc["host"] = {"name": r.host}
    run: dict[str, Any] = {
        "tool": "ansible",
        "run_id": r.run_id,
        "play": {"id": r.play_id, "name": r.play_name},
        "task": {"id": r.task_id, "name": r.task_name, "module": r.module},
        # counts, as in a run's summary (0/1 for one task): one type per field in every SIEM mapping
        "changed": int(r.changed),
        "failed": int(r.failed),
        "unreachable": int(r.unreachable),
    }
    if r.message:
        run["message"] = r.message
        doc["message"] = r.message
    doc["wireguard"]["config_run"] = run
    doc["wireguard"]["context"] = {"kind": "config_run"}
    _related(doc, hosts=[r.host])
    return doc


def ansible_summary_doc(s: AnsibleHostSummary, fallback: float, created: float) -> dict[str, Any]:
    at = s.end or s.start or fallback
    changed = s.stats.get("changed", 0)
    bad = s.stats.get("failures", 0) + s.stats.get("unreachable", 0)
    doc = _base(
        "event", ["configuration"], ["change"] if changed else ["info"], "config-run", at,
        event_id("context", "ansible", s.run_id, "summary", s.host), created,
    )  # fmt: skip
    doc["event"]["outcome"] = "failure" if bad else "success"
    if s.start is not None and s.end is not None:
        doc["event"]["start"] = iso(s.start)
        doc["event"]["end"] = iso(s.end)
    doc["host"] = {"name": s.host}
    doc["wireguard"]["config_run"] = {
        "tool": "ansible",
        "run_id": s.run_id,
        "changed": changed,
        "failed": bad,
        "stats": dict(s.stats),
    }
    doc["wireguard"]["context"] = {"kind": "config_run"}
    _related(doc, hosts=[s.host])
    return doc


def record_doc(record: Any, host: str, created: float, peers: PeerAttribution | None) -> dict[str, Any]:
    if isinstance(record, IdentityEvent):
        return identity_doc(record, host, created, peers)
    if isinstance(record, EdrAlert):
        return edr_doc(record, host, created, peers)
    if isinstance(record, ChangeTicket):
        return change_doc(record, host, created, peers)
    if isinstance(record, ConfigRun):
        return config_run_doc(record, host, created, peers)
    raise TypeError(f"not a single-event record: {type(record).__name__}")
