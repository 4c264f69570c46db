"""Tier 3: an incident snapshot — the gateway's state at the time of an alert, kept as evidence.

Into ``<case_dir>/snapshot-<UTC time>-<rand>/`` (directory 0700, files 0600):

* ``wg-dump.txt`` — ``wg show all dump`` with every private and preshared key replaced by
  ``(redacted)`` (:func:`redact_dump`; lines of an unknown shape have every key-shaped token replaced);
* ``ip-route.txt``, ``ip-6-route.txt``, ``ip-addr.txt`` — ``ip route``, ``ip -6 route``, ``ip -brief addr``;
* ``conntrack.txt`` — ``conntrack -L`` when conntrack-tools is installed on the gateway, else the
  kernel's ``/proc/net/nf_conntrack`` (read through the executor, so inside the gateway's namespace);
  the manifest's ``conntrack_source`` says which, or why neither;
* ``nftables.txt`` — ``nft list ruleset``;
* ``events.ndjson`` — recent events and alerts about the entity, from ``ctx.settings["recent_events"]``:
  a callable ``(target, limit) -> list[dict]`` (sync or async; the service passes a store query), or the
  path of an NDJSON file whose lines mentioning the entity (peer key, endpoint address, user, alert id)
  are kept — the newest ``max_events``;
* ``manifest.json`` — what was collected, by which command, through which executor, with the sha256 and
  size of every file, and the commands that failed.

Each apply makes a new snapshot (evidence is additive; nothing on the gateway changes). ``verified``
means every file was read back and matches the manifest's hash and mode.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import orjson

from wgsiem.errors import ConfigError, WgsiemError
from wgsiem.private_file import write_private
from wgsiem.respond.actions.base import ActionContext, ActionPlan, ActionResult, Target

__all__ = ["COMMANDS", "REDACTED", "IncidentSnapshot", "mentions", "redact_dump"]

REDACTED = "(redacted)"
_KEY = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ip-route.txt", ("ip", "route")),
    ("ip-6-route.txt", ("ip", "-6", "route")),
    ("ip-addr.txt", ("ip", "-brief", "addr")),
    ("nftables.txt", ("nft", "list", "ruleset")),
)
"""File → command, besides the WireGuard dump and conntrack that need special handling."""
_DEFAULT_MAX_EVENTS = 1000


def redact_dump(text: str) -> str:
    """``wg show all dump`` without secrets (pure).

    Interface lines (5 tab-separated fields: iface, private key, public key, port, fwmark) lose field 2;
    peer lines (9 fields: iface, public key, preshared key, …) lose field 3 unless it is ``(none)``.
    Any other line has every token shaped like a key replaced: an unknown format is never trusted.
    """
    out = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 5 and not _KEY.search("\t".join((fields[0], *fields[3:]))):
            fields[1] = REDACTED
        elif len(fields) == 9 and not _KEY.search("\t".join((fields[0], *fields[3:]))):
            fields[2] = fields[2] if fields[2] == "(none)" else REDACTED
        else:
            fields = [_KEY.sub(REDACTED, line)]
        out.append("\t".join(fields))
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def mentions(doc: dict[str, Any], target: Target) -> bool:
    """Does ``doc`` concern the target's entity (peer key, endpoint address, user, the alert itself)?"""

    def get(path: str) -> Any:
        node: Any = doc
        for part in path.split("."):
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node

    wanted = {
        "wireguard.peer.public_key": target.peer_public_key,
        "source.ip": target.endpoint_ip,
        "user.name": target.user,
        "event.id": target.alert_id,
    }
    if any(value is not None and get(path) == value for path, value in wanted.items()):
        return True
    evidence = get("wireguard.alert.evidence_ids")
    return target.alert_id is not None and isinstance(evidence, list) and target.alert_id in evidence


def _entity(target: Target) -> str:
    for label, value in (
        ("peer", target.peer_public_key),
        ("endpoint", target.endpoint_ip),
        ("user", target.user),
        ("alert", target.alert_id),
    ):
        if value:
            return f"{label} {value}"
    return "the gateway"


def _tail_ndjson(path: Path, target: Target, limit: int) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        for line in fh:
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(doc, dict) and mentions(doc, target):
                kept.append(doc)
                if len(kept) > 2 * limit:
                    del kept[:limit]
    return kept[-limit:]


async def recent_events(source: Any, target: Target, limit: int) -> tuple[list[dict[str, Any]], str]:
    """Events about ``target`` from the configured source; the second value says where they came from."""
    if source is None:
        return [], "not configured (settings.recent_events)"
    if callable(source):
        fn: Callable[..., Any] = source
        got = fn(target, limit)
        if inspect.isawaitable(got):
            got = await got
        return [d for d in list(got)[-limit:] if isinstance(d, dict)], "callable"
    path = Path(str(source))
    docs = await asyncio.to_thread(_tail_ndjson, path, target, limit)
    return docs, str(path)


class IncidentSnapshot:
    """``snapshot``: collect gateway state and recent events into the case folder (read-only).

    Params: ``max_events`` (default 1000): how many recent events/alerts to keep.
    """

    name: ClassVar[str] = "snapshot"
    tier: ClassVar[int] = 3
    reversible: ClassVar[bool] = False

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"max_events"}
        if unknown:
            raise ConfigError(f"snapshot: unknown params {sorted(unknown)}", fix="use max_events")
        limit = params.get("max_events", _DEFAULT_MAX_EVENTS)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 100_000:
            raise ConfigError("snapshot: max_events must be an integer from 0 to 100000")
        return {"max_events": limit}

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        params = self.validate_params(params)
        return ActionPlan(
            action=self.name,
            target=target,
            params=params,
            summary=f"snapshot WireGuard state (keys redacted), routes, conntrack, nftables and recent "
            f"events for {_entity(target)} into {ctx.case_dir}",
            reversible=False,
            details={"case_dir": str(ctx.case_dir), "executor": ctx.executor.name, **params},
        )

    async def _run(self, ctx: ActionContext, argv: list[str]) -> tuple[bytes | None, str | None]:
        try:
            res = await ctx.executor.run(argv, timeout_secs=30.0, check=False)
        except WgsiemError as exc:
            return None, exc.what
        if res.returncode != 0:
            err = _KEY.sub(REDACTED, res.stderr.decode("utf-8", "replace").strip())[:300]
            return None, f"`{' '.join(argv)}` exited with {res.returncode}: {err}"
        return res.stdout, None

    async def _conntrack(self, ctx: ActionContext) -> tuple[bytes | None, str]:
        out, err = await self._run(ctx, ["conntrack", "-L"])
        if out is not None:
            return out, "conntrack -L"
        proc, err2 = await self._run(ctx, ["cat", "/proc/net/nf_conntrack"])
        if proc is not None:
            return proc, "/proc/net/nf_conntrack"
        return None, f"unavailable: conntrack -L: {err}; /proc/net/nf_conntrack: {err2}"

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        if ctx.dry_run:
            return ActionResult(ok=True, summary=f"dry run: would {plan.summary}", details=dict(plan.details))
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        folder = Path(ctx.case_dir) / f"snapshot-{stamp}-{secrets.token_hex(3)}"
        files: dict[str, bytes] = {}
        commands: dict[str, str] = {}
        errors: dict[str, str] = {}

        dump, err = await self._run(ctx, ["wg", "show", "all", "dump"])
        if dump is not None:
            files["wg-dump.txt"] = redact_dump(dump.decode("utf-8", "replace")).encode()
            commands["wg-dump.txt"] = "wg show all dump (private and preshared keys redacted)"
        else:
            errors["wg-dump.txt"] = err or "failed"
        for name, argv in COMMANDS:
            out, err = await self._run(ctx, list(argv))
            if out is not None:
                files[name], commands[name] = out, " ".join(argv)
            else:
                errors[name] = err or "failed"
        conntrack, conntrack_source = await self._conntrack(ctx)
        if conntrack is not None:
            files["conntrack.txt"], commands["conntrack.txt"] = conntrack, conntrack_source
        else:
            errors["conntrack.txt"] = conntrack_source
        try:
            events, events_source = await recent_events(
                ctx.settings.get("recent_events"), plan.target, plan.params["max_events"]
            )
            files["events.ndjson"] = b"".join(
                orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in events
            )
            commands["events.ndjson"] = f"recent events from {events_source}: {len(events)}"
        except (OSError, TypeError, ValueError, WgsiemError) as exc:
            errors["events.ndjson"] = f"{type(exc).__name__}: {exc}"

        manifest = {
            "action": self.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "hostname": ctx.hostname,
            "executor": ctx.executor.name,
            "target": {k: v for k, v in _target_dict(plan.target).items() if v is not None},
            "conntrack_source": conntrack_source,
            "files": [
                {
                    "name": name,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                    "source": commands[name],
                }
                for name, data in sorted(files.items())
            ],
            "errors": errors,
        }
        try:
            await asyncio.to_thread(_write_all, folder, files, manifest)
            verified = await asyncio.to_thread(_verify, folder, manifest)
        except OSError as exc:
            return ActionResult(
                ok=False, summary=f"could not write the snapshot to {folder}", error=f"{exc.strerror}"
            )
        ok = "wg-dump.txt" in files
        details = {
            "folder": str(folder),
            "files": sorted(files),
            "conntrack_source": conntrack_source,
            "errors": errors,
        }
        return ActionResult(
            ok=ok,
            verified=ok and verified,
            summary=f"snapshot of {len(files)} file(s) for {_entity(plan.target)} in {folder}"
            + (f"; {len(errors)} part(s) failed" if errors else ""),
            details=details,
            error=None if ok else f"WireGuard state could not be read: {errors.get('wg-dump.txt')}",
        )

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        return ActionResult(
            ok=False, summary="a snapshot is evidence: it is not undone", error="not reversible"
        )


def _target_dict(target: Target) -> dict[str, Any]:
    return {
        "interface": target.interface,
        "peer_public_key": target.peer_public_key,
        "endpoint_ip": target.endpoint_ip,
        "endpoint_port": target.endpoint_port,
        "user": target.user,
        "alert_id": target.alert_id,
        "rule_id": target.rule_id,
    }


def _write_all(folder: Path, files: dict[str, bytes], manifest: dict[str, Any]) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder.parent, 0o700)
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)
    for name, data in files.items():
        write_private(folder / name, data)
    write_private(folder / "manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))


def _verify(folder: Path, manifest: dict[str, Any]) -> bool:
    if folder.stat().st_mode & 0o777 != 0o700:
        return False
    for entry in manifest["files"]:
        path = folder / entry["name"]
        if path.stat().st_mode & 0o777 != 0o600:
            return False
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            return False
    return True
