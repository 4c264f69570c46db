"""Tier 2: revoke peers — from the live interface and from the interface's config file, with backups.

Order of work, chosen so that nothing is ever left half-applied without saying so:

1. read the live peers (``wg show <if> dump``) and the config file (``config_files[<if>]``);
2. keep two private backups under ``<state_dir>/backups/`` (0600, in a 0700 folder): the whole
   original config file (it holds the PSKs: never logged) and the live peers' settings with their
   preshared keys (so a peer whose PSK is not in the file can still be restored exactly);
3. write the config file without the peer's section (atomic; mode and owner kept; every other byte
   identical). If that fails, nothing has changed: ``ok=False``;
4. remove the peers live (one ``wg set``). If that fails, the file is put back: ``ok=False``;
5. read both back: the result is ``verified`` only if the peers are gone from both.

The undo record names the backups (paths, never their content) and the peers' public settings.
Undo re-adds the peers live (the PSK goes to ``wg`` on stdin as ``preshared-key /dev/stdin``) and puts
the sections back: the original file byte for byte when nobody changed the file since (its SHA-256
is in the undo record), else the removed sections appended at the end.

``disable_user`` does the same for every peer of a user. Which peers those are: a callable
``peers_of_user(user) -> [(interface, key), ...]`` the engine may put in the settings; otherwise the
union of the ``user_peers`` setting (``{user: [key | {interface, public_key}, ...]}``) and the
``enrich_identity`` inventory file named by ``identity_inventory`` (rows whose ``name``, ``email`` or
``id`` is the user; their keys are taken on the alert's interface or ``default_interface``). A user
with no known peer is an error, not a silent success.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson

from wgsiem.errors import ConfigError, WgsiemError
from wgsiem.respond.actions.base import ActionContext, ActionPlan, ActionResult, Executor, Target
from wgsiem.respond.actions.common import (
    ActionError,
    LiveInterface,
    config_path,
    file_mode,
    find_peer_spans,
    live_interface,
    load_private_json,
    remove_spans,
    require_key,
    save_private,
    sha256,
)

__all__ = ["DisableUser", "RevokePeer", "add_peer_argv", "restore_peers", "revoke_peers"]


def add_peer_argv(interface: str, key: str, rec: dict[str, Any], *, with_psk: bool) -> list[str]:
    """``wg set`` argv re-adding one peer; the PSK, if any, is read from stdin (``/dev/stdin``)."""
    argv = ["wg", "set", interface, "peer", key]
    if with_psk:
        argv += ["preshared-key", "/dev/stdin"]
    if rec.get("allowed_ips"):
        argv += ["allowed-ips", ",".join(rec["allowed_ips"])]
    if rec.get("endpoint"):
        argv += ["endpoint", rec["endpoint"]]
    if rec.get("persistent_keepalive"):
        argv += ["persistent-keepalive", str(rec["persistent_keepalive"])]
    return argv


def _public(live: LiveInterface, key: str) -> dict[str, Any]:
    p = live.peers[key]
    return {
        "public_key": key,
        "allowed_ips": list(p.allowed_ips),
        "endpoint": p.endpoint,
        "persistent_keepalive": p.persistent_keepalive,
        "has_psk": p.has_psk,
    }


@dataclass(slots=True)
class Prepared:
    """What revoke and rotate both need before changing anything (secrets only in the backups)."""

    interface: str
    path: str | None
    original: bytes | None
    live: LiveInterface
    config_backup: Path | None
    live_backup: Path

    def undo_base(self, peers: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "interface": self.interface,
            "config_file": self.path,
            "config_backup": str(self.config_backup) if self.config_backup else None,
            "live_backup": str(self.live_backup),
            "peers": peers,
        }


async def prepare(ctx: ActionContext, interface: str, keys: Iterable[str], *, live_only: bool) -> Prepared:
    ex = ctx.executor
    path = config_path(ctx, interface)
    if path is None and not live_only:
        raise ActionError(
            f"no config file known for {interface}",
            fix=f"set config_files: {{{interface}: /etc/wireguard/{interface}.conf}} (or live_only: true)",
        )
    live = await live_interface(ex, interface)
    original = await ex.read_file(path) if path else None
    conf_bk = save_private(ctx, "conf", interface, original) if original is not None else None
    snap = {
        "interface": interface,
        "peers": {
            k: {**_public(live, k), "preshared_key": live.psks.get(k)} for k in keys if k in live.peers
        },
    }
    live_bk = save_private(ctx, "peers.json", interface, orjson.dumps(snap))
    return Prepared(interface, path, original, live, conf_bk, live_bk)


async def _write_conf(ex: Executor, path: str, data: bytes) -> None:
    await ex.write_file(path, data, mode=await file_mode(ex, path))


async def revoke_peers(
    ctx: ActionContext, interface: str, keys: list[str], *, live_only: bool
) -> ActionResult:
    ex = ctx.executor
    try:
        prep = await prepare(ctx, interface, keys, live_only=live_only)
    except WgsiemError as exc:
        return ActionResult(ok=False, summary=f"nothing changed on {interface}", error=exc.render())
    live_keys = [k for k in keys if k in prep.live.peers]
    spans = [s for k in keys for s in find_peer_spans(prep.original, k)] if prep.original is not None else []
    if not live_keys and not spans:
        return ActionResult(
            ok=True,
            verified=True,
            summary=f"already revoked on {interface}: {len(keys)} peer(s) absent live and from the file",
            details={"interface": interface, "already": True},
        )
    undo = prep.undo_base([_public(prep.live, k) for k in live_keys])
    undo["removed_keys"] = list(keys)
    new = remove_spans(prep.original, spans) if prep.original is not None else None
    if prep.path is not None and new is not None and spans:
        try:
            await _write_conf(ex, prep.path, new)
        except WgsiemError as exc:
            return ActionResult(
                ok=False,
                summary=f"nothing changed: could not rewrite {prep.path}",
                error=exc.render(),
                details={"interface": interface, "config_backup": undo["config_backup"]},
            )
    undo["written_sha256"] = sha256(new) if new is not None else None
    if live_keys:
        argv = ["wg", "set", interface]
        for k in live_keys:
            argv += ["peer", k, "remove"]
        try:
            await ex.run(argv)
        except WgsiemError as exc:
            rolled = "file not touched"
            if prep.path is not None and spans and prep.original is not None:
                try:
                    await _write_conf(ex, prep.path, prep.original)
                    rolled = "config file restored"
                except WgsiemError as exc2:
                    rolled = f"config file NOT restored ({exc2.what}); backup {prep.config_backup}"
            return ActionResult(
                ok=False, summary=f"live removal failed on {interface}; {rolled}", error=exc.render()
            )
    return await _verify_revoked(ctx, interface, keys, prep.path, undo)


async def _verify_revoked(
    ctx: ActionContext, interface: str, keys: list[str], path: str | None, undo: dict[str, Any]
) -> ActionResult:
    try:
        live = await live_interface(ctx.executor, interface)
        data = await ctx.executor.read_file(path) if path else None
    except WgsiemError as exc:
        return ActionResult(
            ok=False, summary="revoked but could not read back", undo=undo, error=exc.render()
        )
    still_live = [k for k in keys if k in live.peers]
    still_file = [k for k in keys if data is not None and find_peer_spans(data, k)]
    ok = not still_live and not still_file
    return ActionResult(
        ok=ok,
        verified=ok,
        summary=(
            f"revoked {len(keys)} peer(s) on {interface}" + (f" and in {path}" if path else " (live only)")
            if ok
            else f"read back: {len(still_live)} still live, {len(still_file)} still in the file"
        ),
        undo=undo,
        details={"interface": interface, "config_file": path, "config_backup": undo["config_backup"]},
        error=None if ok else "revocation not complete when read back",
    )


def restored_file(current: bytes, backup: bytes, keys: list[str], written_sha256: str | None) -> bytes:
    """The config file with the keys' sections back: the backup itself when the file is still exactly
    what the action wrote, else the missing sections (from the backup) appended."""
    missing = [k for k in keys if not find_peer_spans(current, k)]
    if not missing:
        return current
    if written_sha256 is not None and sha256(current) == written_sha256:
        return backup
    parts = [backup[a:b] for k in missing for a, b in find_peer_spans(backup, k)]
    if not parts:
        return current
    sep = b"" if not current or current.endswith(b"\n\n") else (b"\n" if current.endswith(b"\n") else b"\n\n")
    return current + sep + b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts)


async def restore_peers(ctx: ActionContext, undo: dict[str, Any], keys: list[str]) -> list[str]:
    """Put ``keys`` back in the config file and on the live interface (as recorded in the backups).
    Returns what still differs after reading back (empty = verified)."""
    ex = ctx.executor
    iface, path = undo["interface"], undo.get("config_file")
    snap = load_private_json(undo["live_backup"])
    if path and undo.get("config_backup"):
        backup = Path(undo["config_backup"]).read_bytes()
        current = await ex.read_file(path)
        new = restored_file(current, backup, keys, undo.get("written_sha256"))
        if new != current:
            await _write_conf(ex, path, new)
    live = await live_interface(ex, iface)
    for k in keys:
        rec = snap.get("peers", {}).get(k)
        if rec is None or k in live.peers:
            continue
        psk = rec.get("preshared_key")
        argv = add_peer_argv(iface, k, rec, with_psk=bool(psk))
        await ex.run(argv, input=(psk + "\n").encode() if psk else None)
    problems = []
    live = await live_interface(ex, iface)
    data = await ex.read_file(path) if path else None
    for k in keys:
        rec = snap.get("peers", {}).get(k)
        if rec is not None:
            if k not in live.peers:
                problems.append(f"{k} not live")
            elif sorted(live.peers[k].allowed_ips) != sorted(rec.get("allowed_ips") or []):
                problems.append(f"{k} allowed-ips differ")
            elif live.peers[k].has_psk != bool(rec.get("preshared_key")):
                problems.append(f"{k} preshared key differs")
        if data is not None and undo.get("config_backup") and not find_peer_spans(data, k):
            backup_has = find_peer_spans(Path(undo["config_backup"]).read_bytes(), k)
            if backup_has:
                problems.append(f"{k} not in {path}")
    return problems


def _live_only(params: dict[str, Any]) -> bool:
    v = params.get("live_only", False)
    if not isinstance(v, bool):
        raise ConfigError("live_only must be true or false", fix="live_only: false")
    return v


class RevokePeer:
    """``revoke_peer``: remove the alert's peer from its interface and config file. Params:
    ``live_only`` (default false: without a config file for the interface the action refuses)."""

    name: ClassVar[str] = "revoke_peer"
    tier: ClassVar[int] = 2
    reversible: ClassVar[bool] = True

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"live_only"}
        if unknown:
            raise ConfigError(f"revoke_peer: unknown params {sorted(unknown)}", fix="only live_only is known")
        return {"live_only": _live_only(params)}

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        params = self.validate_params(params)
        key = require_key(target.peer_public_key)
        if not target.interface:
            raise ConfigError(
                "revoke_peer needs the peer's interface", fix="the alert must carry the interface"
            )
        path = config_path(ctx, target.interface)
        where = f"{target.interface}" + (f" and {path}" if path else " (live only)")
        return ActionPlan(
            action=self.name,
            target=target,
            params=params,
            summary=f"revoke peer {key} on {where}",
            affected_peers=(key,),
            reversible=True,
            details={"interface": target.interface, "config_file": path, "keys": [key]},
        )

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        if ctx.dry_run:
            return ActionResult(ok=True, summary=f"dry run: would {plan.summary}", details=dict(plan.details))
        d = plan.details
        return await revoke_peers(ctx, d["interface"], list(d["keys"]), live_only=plan.params["live_only"])

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        return await _undo_revoke(undo, ctx)


async def _undo_revoke(undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
    keys = list(undo.get("removed_keys") or [p["public_key"] for p in undo.get("peers", [])])
    if ctx.dry_run:
        return ActionResult(
            ok=True, summary=f"dry run: would restore {len(keys)} peer(s) on {undo['interface']}"
        )
    try:
        problems = await restore_peers(ctx, undo, keys)
    except WgsiemError as exc:
        return ActionResult(
            ok=False, summary=f"could not restore peers on {undo['interface']}", error=exc.render()
        )
    ok = not problems
    return ActionResult(
        ok=ok,
        verified=ok,
        summary=f"restored {len(keys)} peer(s) on {undo['interface']}" if ok else "; ".join(problems),
        error=None if ok else "restore not complete when read back",
    )


def _inventory_keys(path: str, user: str) -> list[str]:
    """Keys whose identity (name, email or id) is ``user`` in an ``enrich_identity`` inventory file."""
    from wgsiem.enrich.enrich_identity.inventory import parse_inventory

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read identity_inventory {path}: {exc.strerror}", fix="check the path"
        ) from None
    identities, _problems = parse_inventory(text, path)
    return [i.public_key for i in identities if user in (i.name, i.email, i.id)]


def _user_peers(ctx: ActionContext, user: str, default_iface: str | None) -> list[tuple[str, str]]:
    finder = ctx.settings.get("peers_of_user")
    if callable(finder):
        return sorted({(str(i), require_key(str(k), f"user {user}'s peer key")) for i, k in finder(user)})
    iface = default_iface or ctx.settings.get("default_interface")
    entries: list[Any] = list((ctx.settings.get("user_peers") or {}).get(user, []))
    if ctx.settings.get("identity_inventory"):
        entries += _inventory_keys(str(ctx.settings["identity_inventory"]), user)
    found = []
    for entry in entries:
        if isinstance(entry, str):
            if not iface:
                raise ConfigError(
                    f"user {user}: a peer key without an interface, and the alert names none",
                    fix="set default_interface, or write entries as {interface: wg0, public_key: ...}",
                )
            found.append((str(iface), entry))
        elif isinstance(entry, dict):
            found.append((str(entry["interface"]), str(entry["public_key"])))
    for _, k in found:
        require_key(k, f"user {user}'s peer key")
    return sorted(set(found))


class DisableUser:
    """``disable_user``: revoke every peer of the alert's user (all interfaces), as ``revoke_peer`` does."""

    name: ClassVar[str] = "disable_user"
    tier: ClassVar[int] = 2
    reversible: ClassVar[bool] = True

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"live_only"}
        if unknown:
            raise ConfigError(
                f"disable_user: unknown params {sorted(unknown)}", fix="only live_only is known"
            )
        return {"live_only": _live_only(params)}

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        params = self.validate_params(params)
        if not target.user:
            raise ConfigError("disable_user needs the alert's user", fix="the rule must set user.name")
        peers = _user_peers(ctx, target.user, target.interface)
        if not peers:
            raise ConfigError(
                f"no peers known for user {target.user}",
                fix="add the user to user_peers (or the identity inventory)",
            )
        by_iface: dict[str, list[str]] = {}
        for iface, key in peers:
            by_iface.setdefault(iface, []).append(key)
        return ActionPlan(
            action=self.name,
            target=target,
            params=params,
            summary=f"disable user {target.user}: revoke {len(peers)} peer(s) "
            f"on {', '.join(sorted(by_iface))}",
            affected_peers=tuple(k for _, k in peers),
            reversible=True,
            details={"user": target.user, "interfaces": by_iface},
        )

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        if ctx.dry_run:
            return ActionResult(ok=True, summary=f"dry run: would {plan.summary}", details=dict(plan.details))
        undos, results = [], []
        for iface, keys in sorted(plan.details["interfaces"].items()):
            res = await revoke_peers(ctx, iface, list(keys), live_only=plan.params["live_only"])
            results.append(res)
            if res.undo is not None:
                undos.append(res.undo)
        ok = all(r.ok for r in results)
        return ActionResult(
            ok=ok,
            verified=ok and all(r.verified for r in results),
            summary="; ".join(r.summary for r in results),
            undo={"user": plan.details["user"], "interfaces": undos} if undos else None,
            details={"user": plan.details["user"], "per_interface": [r.details for r in results]},
            error=None if ok else "; ".join(r.error or r.summary for r in results if not r.ok),
        )

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        results = [await _undo_revoke(u, ctx) for u in undo.get("interfaces", [])]
        ok = all(r.ok for r in results)
        return ActionResult(
            ok=ok,
            verified=ok,
            summary=f"user {undo.get('user')}: " + "; ".join(r.summary for r in results),
            error=None if ok else "; ".join(r.error or "" for r in results if not r.ok),
        )
