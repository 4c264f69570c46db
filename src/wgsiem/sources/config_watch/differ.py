"""Pure diff of two versions of one configuration file into :class:`Change` records.

One change per fact an analyst acts on: the file itself (created, deleted, content changed, owner or
mode changed, newly exposed to other users, newly invalid), the interface (key, settings, hooks) and
each peer (added, removed, AllowedIPs, endpoint, keepalive, PSK, name). A file seen for the very first
time with no history (first run) is an inventory baseline: one ``config-file-created`` with
``initial_sync`` and no per-peer events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wgsiem.sources.config_watch.records import HOOK_KINDS, ConfigInterface, ConfigPeer, FileVersion

__all__ = ["Change", "diff_versions"]

_NO_IFACE = ConfigInterface()
_IFACE_FIELDS = ("listen_port", "fwmark", "addresses", "dns", "mtu", "table", "save_config", "extra")


@dataclass(frozen=True, slots=True)
class Change:
    action: str
    interface: str
    before: FileVersion | None
    after: FileVersion | None
    peer: ConfigPeer | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def current(self) -> FileVersion:
        v = self.after or self.before
        assert v is not None
        return v


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        if v and all(isinstance(x, tuple) and len(x) == 2 for x in v):
            return {str(a): b for a, b in v}
        return list(v)
    return v


def _errors(v: FileVersion | None) -> list[tuple[int | None, str]]:
    if v is None:
        return []
    return [(e.location.line if e.location else None, e.what) for e in v.config.errors]


def _file_changes(before: FileVersion | None, after: FileVersion | None, initial: bool) -> list[Change]:
    cur = after or before
    assert cur is not None
    out: list[Change] = []
    if before is None and after is not None:
        out.append(
            Change(
                "config-file-created",
                cur.interface,
                None,
                after,
                details={"initial_sync": initial, "peer_count": len(after.config.peers)},
            )
        )
    elif after is None and before is not None:
        out.append(
            Change(
                "config-file-deleted",
                cur.interface,
                before,
                None,
                details={"peer_count": len(before.config.peers)},
            )
        )
    elif before is not None and after is not None:
        if before.sha256 != after.sha256:
            out.append(Change("config-file-changed", cur.interface, before, after, details={}))
        bm, am = before.meta, after.meta
        if bm is not None and am is not None and (bm.mode, bm.uid, bm.gid) != (am.mode, am.uid, am.gid):
            out.append(Change("config-file-metadata-changed", cur.interface, before, after))
    if after is not None and after.exposed and not (before is not None and before.exposed):
        out.append(Change("config-file-exposed", cur.interface, before, after))
    errs = _errors(after)
    if errs and errs != _errors(before):
        out.append(Change("config-parse-error", cur.interface, before, after, details={"errors": errs}))
    return out


def _interface_changes(before: FileVersion, after: FileVersion) -> list[Change]:
    bi, ai = before.config.interface or _NO_IFACE, after.config.interface or _NO_IFACE
    name = after.interface
    out: list[Change] = []
    if (bi.private_key_present, bi.private_key_fingerprint) != (
        ai.private_key_present,
        ai.private_key_fingerprint,
    ):
        out.append(
            Change(
                "interface-key-changed",
                name,
                before,
                after,
                details={
                    "public_key": {"old": bi.public_key, "new": ai.public_key},
                    "private_key_fingerprint": {
                        "old": bi.private_key_fingerprint,
                        "new": ai.private_key_fingerprint,
                    },
                    "private_key_present": {"old": bi.private_key_present, "new": ai.private_key_present},
                },
            )
        )
    changed = {
        f: {"old": _jsonable(getattr(bi, f)), "new": _jsonable(getattr(ai, f))}
        for f in _IFACE_FIELDS
        if getattr(bi, f) != getattr(ai, f)
    }
    if changed:
        out.append(Change("interface-changed", name, before, after, details=changed))
    hooks = {
        k: {"old": bi.hooks_of(k), "new": ai.hooks_of(k)}
        for k in HOOK_KINDS
        if bi.hooks_of(k) != ai.hooks_of(k)
    }
    if hooks:
        out.append(Change("hooks-changed", name, before, after, details=hooks))
    return out


def _peer_changes(before: FileVersion | None, after: FileVersion) -> list[Change]:
    name = after.interface
    old = before.config.peers if before is not None else {}
    new = after.config.peers
    out: list[Change] = []
    for key, p in old.items():
        if key not in new:
            out.append(Change("peer-removed", name, before, after, peer=p))
    for key, p in new.items():
        q = old.get(key)
        if q is None:
            out.append(Change("peer-added", name, before, after, peer=p))
            continue
        if set(q.allowed_ips) != set(p.allowed_ips):
            added = [x for x in p.allowed_ips if x not in q.allowed_ips]
            removed = [x for x in q.allowed_ips if x not in p.allowed_ips]
            out.append(
                Change(
                    "allowed-ips-changed",
                    name,
                    before,
                    after,
                    peer=p,
                    details={
                        "old": list(q.allowed_ips),
                        "new": list(p.allowed_ips),
                        "added": added,
                        "removed": removed,
                    },
                )
            )
        if q.endpoint != p.endpoint:
            out.append(
                Change(
                    "endpoint-changed",
                    name,
                    before,
                    after,
                    peer=p,
                    details={"old": q.endpoint, "new": p.endpoint},
                )
            )
        if q.persistent_keepalive != p.persistent_keepalive:
            out.append(
                Change(
                    "persistent-keepalive-changed",
                    name,
                    before,
                    after,
                    peer=p,
                    details={"old": q.persistent_keepalive, "new": p.persistent_keepalive},
                )
            )
        if (q.preshared_key_present, q.preshared_key_fingerprint) != (
            p.preshared_key_present,
            p.preshared_key_fingerprint,
        ):
            kind = (
                "added"
                if not q.preshared_key_present
                else "removed"
                if not p.preshared_key_present
                else "changed"
            )
            out.append(
                Change(
                    "preshared-key-changed",
                    name,
                    before,
                    after,
                    peer=p,
                    details={
                        "change": kind,
                        "old_present": q.preshared_key_present,
                        "new_present": p.preshared_key_present,
                        "old_fingerprint": q.preshared_key_fingerprint,
                        "new_fingerprint": p.preshared_key_fingerprint,
                    },
                )
            )
        if (q.name, q.name_source) != (p.name, p.name_source):
            out.append(
                Change(
                    "peer-name-changed", name, before, after, peer=p, details={"old": q.name, "new": p.name}
                )
            )
    return out


def diff_versions(
    before: FileVersion | None, after: FileVersion | None, *, initial: bool = False
) -> list[Change]:
    """Every change from ``before`` to ``after`` (``None`` = the file does not exist).

    ``initial``: ``after`` is the first version ever seen and there is no history to compare with
    (first run), so the file is reported as an inventory baseline without per-peer events.
    """
    if before is None and after is None:
        return []
    out = _file_changes(before, after, initial)
    if after is None:
        return out
    if before is None:
        if not initial:
            out += _peer_changes(None, after)
        return out
    if before.sha256 == after.sha256:
        return out
    iface = _interface_changes(before, after)
    peers = _peer_changes(before, after)
    for c in out:
        if c.action == "config-file-changed":
            c.details.update(
                {
                    "peer_count": len(after.config.peers),
                    "peers_added": sum(p.action == "peer-added" for p in peers),
                    "peers_removed": sum(p.action == "peer-removed" for p in peers),
                    "peers_changed": len({p.peer.public_key for p in peers if p.peer})
                    - sum(p.action in ("peer-added", "peer-removed") for p in peers),
                    "interface_changed": bool(iface),
                }
            )
    return out + iface + peers
