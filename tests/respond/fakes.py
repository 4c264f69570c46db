"""In-memory (file-backed) actions for the engine's tests, registered with the test-only hook
:func:`wgsiem.respond.engine.register_action` under real action names.

State lives in one JSON file (``ctx.settings["fake_state"]``) so a test — or a killed and restarted
engine subprocess — can see exactly what was applied and undone.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

from wgsiem.respond.actions.base import ActionContext, ActionPlan, ActionResult, Target
from wgsiem.respond.engine import register_action

SECRET = "cFakePrivateKeyDoNotLogMe0000000000000000000="


def _load(ctx: ActionContext) -> dict[str, Any]:
    p = Path(ctx.settings["fake_state"])
    return json.loads(p.read_text()) if p.exists() else {"blocked": [], "revoked": [], "log": []}


def _save(ctx: ActionContext, state: dict[str, Any]) -> None:
    Path(ctx.settings["fake_state"]).write_text(json.dumps(state))


class FakeBlock:
    name: ClassVar[str] = "block_endpoint"
    tier: ClassVar[int] = 1
    reversible: ClassVar[bool] = True

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ttl_secs": int(params.get("ttl_secs", 900))}

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        return ActionPlan(
            self.name,
            target,
            params,
            f"block {target.endpoint_ip}",
            reversible=True,
            details={"address": target.endpoint_ip},
        )

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        st = _load(ctx)
        if plan.details["address"] not in st["blocked"]:
            st["blocked"].append(plan.details["address"])
        st["log"].append(f"block {plan.details['address']}")
        _save(ctx, st)
        return ActionResult(
            True,
            f"blocked {plan.details['address']}",
            verified=True,
            undo={"address": plan.details["address"]},
        )

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        st = _load(ctx)
        st["blocked"] = [a for a in st["blocked"] if a != undo["address"]]
        st["log"].append(f"unblock {undo['address']}")
        _save(ctx, st)
        return ActionResult(True, f"unblocked {undo['address']}", verified=True)


class FakeRevoke:
    name: ClassVar[str] = "revoke_peer"
    tier: ClassVar[int] = 2
    reversible: ClassVar[bool] = True

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(params)

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        keys = tuple(params.get("peers") or [target.peer_public_key])
        return ActionPlan(
            self.name,
            target,
            params,
            f"revoke {len(keys)} peer(s)",
            affected_peers=keys,
            reversible=True,
            details={"peers": list(keys)},
        )

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        st = _load(ctx)
        for k in plan.details["peers"]:
            if k not in st["revoked"]:
                st["revoked"].append(k)
        st["log"].append("revoke")
        _save(ctx, st)
        return ActionResult(True, "revoked", verified=True, undo={"peers": plan.details["peers"]})

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        st = _load(ctx)
        st["revoked"] = [k for k in st["revoked"] if k not in undo["peers"]]
        st["log"].append("restore")
        _save(ctx, st)
        return ActionResult(True, "restored", verified=True)


class FakeRotate:
    """Misbehaves on purpose: returns key material, which the audit log must redact."""

    name: ClassVar[str] = "rotate_peer_keys"
    tier: ClassVar[int] = 2
    reversible: ClassVar[bool] = False

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(params)

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        return ActionPlan(
            self.name, target, params, "rotate keys", affected_peers=(target.peer_public_key or "",)
        )

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        return ActionResult(
            True,
            "rotated",
            verified=True,
            details={
                "new_private_key": SECRET,
                "client_config": f"[Interface]\nPrivateKey = {SECRET}\n",
                "note": f"PrivateKey = {SECRET}",
            },
        )

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        return ActionResult(False, "not reversible")


class FakeFail:
    name: ClassVar[str] = "throttle_peer"
    tier: ClassVar[int] = 1
    reversible: ClassVar[bool] = True

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(params)

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        return ActionPlan(self.name, target, params, "throttle (always fails)", reversible=True)

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        st = _load(ctx)
        st["log"].append("throttle-attempt")
        _save(ctx, st)
        return ActionResult(False, "throttle failed", error="simulated failure")

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        return ActionResult(True, "nothing to undo")


class FakeGate:
    """``notify``: records that it started, then waits until the gate file exists (crash tests)."""

    name: ClassVar[str] = "notify"
    tier: ClassVar[int] = 1
    reversible: ClassVar[bool] = False

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(params)

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        return ActionPlan(self.name, target, params, "wait for the gate")

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        st = _load(ctx)
        st["log"].append("gate-entered")
        _save(ctx, st)
        gate = Path(ctx.settings["gate"])
        while not gate.exists():
            await asyncio.sleep(0.02)
        st = _load(ctx)
        st["log"].append("gate-passed")
        _save(ctx, st)
        return ActionResult(True, "passed the gate", verified=True)

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        return ActionResult(False, "not reversible")


FAKES = (FakeBlock, FakeRevoke, FakeRotate, FakeFail, FakeGate)


def install() -> None:
    for cls in FAKES:
        register_action(cls.name, cls)


def uninstall() -> None:
    for cls in FAKES:
        register_action(cls.name, None)


def alert(
    *,
    rule: str = "wireguard_invalid_handshake",
    playbook: str = "contain",
    ip: str = "203.0.113.7",
    peer: str | None = None,
    entity: tuple[str, str] | None = None,
    alert_id: str = "a1",
    severity: int = 21,
) -> dict[str, Any]:
    """An alert shaped like wgsiem.detect.alert.build_alert's output (the fields the engine reads)."""
    ent = entity or (("wireguard.peer.public_key", peer) if peer else ("source.ip", ip))
    doc: dict[str, Any] = {
        "@timestamp": "2026-11-25T12:00:00.000Z",
        "event": {"id": alert_id, "kind": "alert", "severity": severity, "dataset": "wireguard.detect"},
        "rule": {"id": "8e00e55a-341a-42c0-a5fb-d2bdcfa65c06", "name": "Invalid handshake"},
        "source": {"ip": ip, "port": 40000},
        "wireguard": {
            "interface": {"name": "wg0"},
            "alert": {"rule_name": rule, "playbook": playbook, "entity": {"field": ent[0], "value": ent[1]}},
        },
    }
    if peer:
        doc["wireguard"]["peer"] = {"public_key": peer}
    return doc
