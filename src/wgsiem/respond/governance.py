"""The governance policy: allow-list, approval requirement, rate limits, and human decisions.

Pure checks (``allow_list_violation``, ``approval_needed``, ``rate_limited``) take what they need and
return the reason a rule applies, or ``None``; the engine audits that reason verbatim. ``decide`` is
what ``wgsiem approvals approve|deny`` and the SOAR API call: it changes a pending proposal and
audits the decision with the approver's identity and reason — the engine notices and executes.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from typing import Any

from .audit import AuditLog
from .config import AllowListConfig, PolicyConfig, RateLimitConfig
from .store import Store

__all__ = ["DecisionError", "allow_list_violation", "approval_needed", "decide", "rate_limited"]


def _ip(text: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(str(text).strip("[]"))
    except ValueError:
        return None


def allow_list_violation(
    allow: AllowListConfig, *, interfaces: Iterable[str], peers: Iterable[str], addresses: Iterable[str]
) -> str | None:
    """Why the allow-list forbids touching these, or ``None``."""
    protected_if = set(allow.interfaces)
    for name in interfaces:
        if name in protected_if:
            return f"interface {name} is on the allow-list"
    protected_peers = set(allow.peer_public_keys)
    for key in peers:
        if key in protected_peers:
            return f"peer {key[:8]}… is on the allow-list"
    nets = [ipaddress.ip_network(c, strict=False) for c in allow.cidrs]
    for text in addresses:
        ip = _ip(text)
        if ip is None:
            continue
        for net in nets:
            if ip.version == net.version and ip in net:
                return f"address {ip} is inside allow-listed {net}"
    return None


def approval_needed(policy: PolicyConfig, *, tier: int, approval: str, affected_peers: int) -> str | None:
    """Why a human must approve, or ``None`` when the proposal may run automatically."""
    if affected_peers > policy.approval_peer_threshold:
        return f"touches {affected_peers} peers (more than {policy.approval_peer_threshold})"
    if approval == "always":
        return "the playbook always requires approval"
    if approval == "never":
        return None
    if tier > policy.auto_max_tier:
        return f"tier {tier} is above the automatic tier {policy.auto_max_tier}"
    return None


def rate_limited(
    store: Store, limits: RateLimitConfig, *, playbook: str, entity: str, now: float | None = None
) -> str | None:
    """Why running now would exceed a limit (executions in the last hour), or ``None``."""
    since = (now if now is not None else time.time()) - 3600.0
    if limits.global_per_hour and store.executions_since(since) >= limits.global_per_hour:
        return f"global limit of {limits.global_per_hour} executions per hour reached"
    if limits.per_playbook_per_hour and (
        store.executions_since(since, playbook=playbook) >= limits.per_playbook_per_hour
    ):
        return f"playbook {playbook} reached {limits.per_playbook_per_hour} executions per hour"
    if (
        limits.per_entity_per_hour
        and entity
        and (store.executions_since(since, entity=entity) >= limits.per_entity_per_hour)
    ):
        return f"entity {entity} reached {limits.per_entity_per_hour} executions per hour"
    return None


class DecisionError(Exception):
    """The decision cannot be made (unknown proposal, not pending); ``status`` is an HTTP-like code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def decide(store: Store, audit: AuditLog, pid: str, decision: str, actor: str, reason: str) -> dict[str, Any]:
    """Approve or deny a pending proposal; returns the updated proposal."""
    if decision not in ("approve", "deny"):
        raise DecisionError(f"unknown decision {decision!r}", 400)
    if not reason.strip():
        raise DecisionError("a reason is required", 400)
    row = store.proposal(pid)
    if row is None:
        raise DecisionError(f"no proposal {pid}", 404)
    new = "approved" if decision == "approve" else "denied"
    if not store.set_status(pid, new, expect=("pending",)):
        raise DecisionError(f"proposal {pid} is {row['status']}, not pending", 409)
    store.add_decision(pid, decision, actor, reason)
    audit.append(
        "decision",
        actor,
        event=new,
        proposal_id=pid,
        playbook=row["playbook"],
        decision=decision,
        reason=reason,
        rule_id=row.get("rule_id"),
        entity=row.get("entity"),
    )
    out = store.proposal(pid)
    assert out is not None
    return out
