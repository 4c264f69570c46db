"""The playbook engine: alert → proposal → decision → journaled steps → result, every move audited.

* **Proposal.** Each playbook an alert matches yields one proposal per (alert, playbook, entity) —
  the dedup key — with the target taken from the alert, and every step *planned* (pure, nothing
  changes): plans are what an approver sees and what dry-run records.
* **Decision.** The allow-list blocks it outright; the governance policy either approves it
  automatically (actor ``policy``) or leaves it ``pending`` for a person (CLI or API) until its TTL.
* **Execution.** The kill switch, the rate limits and dry-run are checked just before running; the
  move to ``running`` is a compare-and-set in the database. Each step is journaled before and after
  (``actions`` table) and audited; a failed step is retried ``retries`` times, then handled by its
  ``on_failure`` (stop, continue, or roll back the completed reversible steps).
* **Crash safety.** On start, a proposal left ``running`` is resumed from its in-flight step (actions
  are idempotent) or rolled back, as its playbook's ``on_crash`` says; the choice is audited.

The engine is single-process and async; the CLI changes the shared database (approvals, undo
requests, kill switch) and the engine notices within ``poll_interval_secs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from wgsiem.errors import WgsiemError
from wgsiem.event import event_id

from .actions.base import ACTION_CLASSES, ActionContext, ActionPlan, ActionResult, Target
from .audit import AuditLog, canonical
from .config import ExecutorConfig, RespondSinkConfig
from .governance import allow_list_violation, approval_needed, rate_limited
from .playbook import Playbook, load_playbooks
from .store import RespondPaths, Store

__all__ = [
    "Engine",
    "build_executor",
    "load_action",
    "plan_from_json",
    "plan_to_json",
    "register_action",
    "set_kill_switch",
    "target_from_alert",
]

_TEST_ACTIONS: dict[str, Any] = {}


def register_action(name: str, action: Any | None) -> None:
    """Test-only hook: use ``action`` (a class or an instance) for ``name``; ``None`` removes it."""
    if action is None:
        _TEST_ACTIONS.pop(name, None)
    else:
        _TEST_ACTIONS[name] = action


def load_action(name: str) -> Any:
    if name in _TEST_ACTIONS:
        obj = _TEST_ACTIONS[name]
        return obj() if isinstance(obj, type) else obj
    if name not in ACTION_CLASSES:
        raise WgsiemError(f"unknown action {name!r}", fix=f"use one of: {', '.join(sorted(ACTION_CLASSES))}")
    module, _, cls = ACTION_CLASSES[name].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)()
    except (ImportError, AttributeError) as exc:
        raise WgsiemError(
            f"action {name!r} is not available: {exc}", fix="install the action's module"
        ) from exc


class _UnavailableExecutor:
    """Stands in when ``wgsiem.respond.executors`` is missing: every use fails, loudly."""

    def __init__(self, why: str) -> None:
        self.name = "unavailable"
        self._why = why

    async def run(self, argv: list[str], **_kw: Any) -> Any:
        raise WgsiemError(f"no executor: {self._why}")

    async def read_file(self, path: str) -> bytes:
        raise WgsiemError(f"no executor: {self._why}")

    async def write_file(self, path: str, data: bytes, *, mode: int) -> None:
        raise WgsiemError(f"no executor: {self._why}")


def build_executor(cfg: ExecutorConfig) -> Any:
    try:
        executors = importlib.import_module("wgsiem.respond.executors")
    except ImportError as exc:
        return _UnavailableExecutor(f"wgsiem.respond.executors cannot be imported ({exc})")
    if cfg.type == "local":
        return executors.LocalExecutor(netns=cfg.netns)
    ssh = getattr(executors, "SshExecutor", None)
    if ssh is None:
        return _UnavailableExecutor("this build has no SSH executor")
    if not cfg.host or not cfg.user or cfg.client_key_path is None:
        raise WgsiemError(
            "the ssh executor needs host, user and client_key_path", fix="complete respond.executor"
        )
    kwargs: dict[str, Any] = {
        "username": cfg.user,
        "client_key": cfg.client_key_path,
        "port": cfg.port,
        "known_hosts": cfg.known_hosts_path,
        "host_key_sha256": cfg.host_key_sha256,
        "sudo": cfg.sudo,
    }
    if cfg.allowed_commands is not None:
        kwargs["allowed_commands"] = cfg.allowed_commands
    return ssh(cfg.host, **kwargs)


def _get(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def target_from_alert(alert: dict[str, Any], override: dict[str, Any] | None = None) -> Target:
    """The :class:`Target` an alert points at (its interface, peer, endpoint, user, ids)."""
    port = _get(alert, "source.port")
    fields: dict[str, Any] = {
        "interface": _get(alert, "wireguard.interface.name")
        or _get(alert, "observer.ingress.interface.name"),
        "peer_public_key": _get(alert, "wireguard.peer.public_key"),
        "endpoint_ip": _get(alert, "source.ip"),
        "endpoint_port": int(port) if isinstance(port, int | str) and str(port).isdigit() else None,
        "user": _get(alert, "user.name"),
        "alert_id": _get(alert, "event.id"),
        "rule_id": _get(alert, "rule.id"),
    }
    for k, v in (override or {}).items():
        if k in fields:
            fields[k] = v
    text = {k: (str(v) if v is not None else None) for k, v in fields.items() if k != "endpoint_port"}
    port_value = fields["endpoint_port"]
    return Target(
        interface=text["interface"],
        peer_public_key=text["peer_public_key"],
        endpoint_ip=text["endpoint_ip"],
        endpoint_port=int(port_value) if str(port_value).isdigit() else None,
        user=text["user"],
        alert_id=text["alert_id"],
        rule_id=text["rule_id"],
    )


def _entity(alert: dict[str, Any], target: Target) -> str:
    ent = _get(alert, "wireguard.alert.entity")
    if isinstance(ent, dict) and ent.get("field") and ent.get("value") not in (None, ""):
        return f"{ent['field']}={ent['value']}"
    for name, value in (
        ("wireguard.peer.public_key", target.peer_public_key),
        ("source.ip", target.endpoint_ip),
        ("user.name", target.user),
        ("wireguard.interface.name", target.interface),
    ):
        if value:
            return f"{name}={value}"
    return ""


def plan_to_json(plan: ActionPlan) -> dict[str, Any]:
    return {
        "action": plan.action,
        "target": asdict(plan.target),
        "params": plan.params,
        "summary": plan.summary,
        "affected_peers": list(plan.affected_peers),
        "reversible": plan.reversible,
        "details": plan.details,
    }


def plan_from_json(data: dict[str, Any]) -> ActionPlan:
    return ActionPlan(
        action=data["action"],
        target=Target(**data["target"]),
        params=dict(data.get("params") or {}),
        summary=data.get("summary", ""),
        affected_peers=tuple(data.get("affected_peers") or ()),
        reversible=bool(data.get("reversible")),
        details=dict(data.get("details") or {}),
    )


def _result_json(res: ActionResult) -> dict[str, Any]:
    return {
        "ok": res.ok,
        "summary": res.summary,
        "verified": res.verified,
        "details": res.details,
        "error": res.error,
    }


def set_kill_switch(paths: RespondPaths, audit: AuditLog, on: bool, actor: str, reason: str) -> None:
    """Create or remove the kill-switch file (the engine checks it before every step) and audit it."""
    if on:
        paths.kill_switch.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(paths.kill_switch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{actor} {time.time():.3f} {reason}\n")
    else:
        with contextlib.suppress(FileNotFoundError):
            paths.kill_switch.unlink()
    audit.append("policy", actor, event="kill-switch-on" if on else "kill-switch-off", reason=reason)


class Engine:
    def __init__(
        self,
        cfg: RespondSinkConfig,
        *,
        state_dir: Path,
        hostname: str,
        playbooks: dict[str, Playbook] | None = None,
        executor: Any | None = None,
        on_record: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.hostname = hostname
        self.settings_extra: dict[str, Any] = {}
        """Settings the service provides (e.g. ``recent_events``: a store query); the config's win."""
        self.paths = RespondPaths.from_sink_config(state_dir, cfg)
        self.store = Store(self.paths.db)
        self.audit = AuditLog(
            self.paths.audit,
            head_interval_secs=cfg.audit.head_interval_secs,
            external_head_path=self.paths.external_head,
        )
        self.playbooks = (
            playbooks
            if playbooks is not None
            else load_playbooks(cfg.playbook_dirs, builtin=cfg.builtin_playbooks)
        )
        self.executor = executor if executor is not None else build_executor(cfg.executor)
        self.on_record = on_record
        self.counters: Counter[str] = Counter()
        self.action_dir = state_dir / "respond" / "actions"
        self.case_root = state_dir / "respond" / "cases"
        self._lock = asyncio.Lock()

    # ---- plumbing ----------------------------------------------------------------------------------

    def close(self) -> None:
        self.store.clear_beat()
        self.audit.close()
        self.store.close()

    def record(self, kind: str, actor: str, **fields: Any) -> dict[str, Any]:
        rec = self.audit.append(kind, actor, **fields)
        self.counters[f"audit_{kind}"] += 1
        if self.on_record is not None:
            self.on_record(rec)
        return rec

    def kill_switch_on(self) -> bool:
        return self.cfg.kill_switch or self.paths.kill_switch.exists()

    def tier_of(self, pb: Playbook) -> int:
        tiers = [pb.tier]
        for step in pb.steps:
            with contextlib.suppress(WgsiemError):
                tiers.append(int(getattr(load_action(step.action), "tier", 0)))
        return max(tiers)

    def context(self, pid: str) -> ActionContext:
        case = self.case_root / pid
        for d in (self.action_dir, case):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return ActionContext(
            executor=self.executor,
            dry_run=self.cfg.dry_run,
            state_dir=self.action_dir,
            case_dir=case,
            hostname=self.hostname,
            settings={**self.settings_extra, **self.cfg.settings},
        )

    # ---- proposals ---------------------------------------------------------------------------------

    async def handle_alert(self, alert: dict[str, Any]) -> list[str]:
        """Propose (and, when automatic, run) every playbook the alert matches; returns proposal ids."""
        out = []
        for pb in self.playbooks.values():
            if pb.matches(alert):
                pid, new = await self.propose(pb, alert, origin="alert", actor="detect")
                out.append(pid)
                if new:
                    await self.execute(pid)
        return out

    async def propose(
        self,
        pb: Playbook,
        alert: dict[str, Any],
        *,
        origin: str,
        actor: str,
        target: dict[str, Any] | None = None,
        reason: str = "",
    ) -> tuple[str, bool]:
        """Record a proposal (deduplicated); ``(id, True)`` if new. Does not execute it."""
        tgt = target_from_alert(alert, target)
        entity = _entity(alert, tgt)
        alert_id = tgt.alert_id or event_id("wgsiem.respond.request", canonical(alert))
        dedup = f"{alert_id}|{pb.id}|{entity}"
        pid = "p-" + event_id("wgsiem.respond", dedup)[:16]
        existing = self.store.proposal_by_dedup(dedup)
        if existing is not None:
            self.counters["duplicate_proposals"] += 1
            return str(existing["id"]), False
        tier = self.tier_of(pb)
        ctx = self.context(pid)
        plans: list[ActionPlan] = []
        error: str | None = None
        try:
            for step in pb.steps:
                action = load_action(step.action)
                params = action.validate_params(dict(step.params))
                plans.append(await action.plan(tgt, params, ctx))
        except Exception as exc:  # a plan that cannot be made is a failed proposal, audited
            error = f"{type(exc).__name__}: {exc}"
        affected = sorted({k for p in plans for k in p.affected_peers})
        violation = allow_list_violation(
            self.cfg.allow_list,
            interfaces=[i for i in {tgt.interface, *(p.target.interface for p in plans)} if i],
            peers=[k for k in {tgt.peer_public_key, *affected} if k],
            addresses=[a for a in {tgt.endpoint_ip, *(p.target.endpoint_ip for p in plans)} if a],
        )
        why = approval_needed(self.cfg.policy, tier=tier, approval=pb.approval, affected_peers=len(affected))
        now = time.time()
        if error is not None:
            status = "failed"
        elif violation is not None:
            status = "blocked"
        elif why is not None:
            status = "pending"
        else:
            status = "approved"
        ttl = pb.approval_ttl_secs or self.cfg.policy.approval_ttl_secs
        inserted = self.store.insert_proposal(
            id=pid,
            created=now,
            updated=now,
            expires=now + ttl if status == "pending" else None,
            dedup_key=dedup,
            playbook=pb.id,
            tier=tier,
            status=status,
            requires_approval=int(why is not None),
            why=why,
            origin=origin,
            actor=actor,
            reason=reason,
            alert_id=alert_id,
            rule_id=tgt.rule_id,
            entity=entity,
            target=asdict(tgt),
            plans=[plan_to_json(p) for p in plans],
            dry_run=int(self.cfg.dry_run),
            error=error,
        )
        if not inserted:  # another writer won the race on the dedup key
            again = self.store.proposal_by_dedup(dedup)
            return (str(again["id"]) if again else pid), False
        self.counters["proposals"] += 1
        self.record(
            "proposal",
            actor,
            event="proposed",
            proposal_id=pid,
            playbook=pb.id,
            tier=tier,
            origin=origin,
            status=status,
            alert_id=alert_id,
            rule_id=tgt.rule_id,
            entity=entity,
            target=asdict(tgt),
            steps=[
                {
                    "action": p.action,
                    "summary": p.summary,
                    "affected_peers": list(p.affected_peers),
                    "reversible": p.reversible,
                }
                for p in plans
            ],
            requires_approval=why is not None,
            why=why,
            dry_run=self.cfg.dry_run,
            reason=reason,
            error=error,
        )
        if violation is not None:
            self.record(
                "policy", "policy", event="allow-listed", proposal_id=pid, playbook=pb.id, reason=violation
            )
        elif status == "approved":
            self.store.add_decision(pid, "approve", "policy", f"tier {tier} runs automatically")
            self.record(
                "decision",
                "policy",
                event="auto-approved",
                proposal_id=pid,
                playbook=pb.id,
                decision="approve",
                reason=f"tier {tier} runs automatically",
                rule_id=tgt.rule_id,
                entity=entity,
            )
        return pid, True

    # ---- execution ---------------------------------------------------------------------------------

    async def execute(self, pid: str) -> str | None:
        """Run an ``approved`` proposal (no-op otherwise); returns its final status."""
        async with self._lock:
            row = self.store.proposal(pid)
            if row is None or row["status"] != "approved":
                return None
            pb = self.playbooks.get(row["playbook"])
            base = {"proposal_id": pid, "playbook": row["playbook"]}
            if pb is None:
                self.store.set_status(pid, "failed", expect=("approved",), error="playbook no longer loaded")
                self.record("policy", "policy", event="playbook-missing", **base)
                return "failed"
            if self.kill_switch_on():
                self.store.set_status(pid, "killed", expect=("approved",))
                self.record("policy", "policy", event="kill-switch", reason="the kill switch is on", **base)
                return "killed"
            if self.cfg.dry_run:
                self.store.set_status(pid, "dry_run", expect=("approved",))
                self.record(
                    "policy",
                    "policy",
                    event="dry-run",
                    reason="dry-run: nothing changed",
                    plans=row["plans"],
                    **base,
                )
                return "dry_run"
            limited = rate_limited(
                self.store, self.cfg.rate_limits, playbook=pb.id, entity=row["entity"] or ""
            )
            if limited is not None:
                self.store.set_status(pid, "rate_limited", expect=("approved",))
                self.record("policy", "policy", event="rate-limited", reason=limited, **base)
                return "rate_limited"
            if not self.store.set_status(pid, "running", expect=("approved",), started=time.time()):
                return None
            return await self._run(pid, pb)

    async def _run(self, pid: str, pb: Playbook) -> str:
        row = self.store.proposal(pid)
        assert row is not None
        plans = [plan_from_json(p) for p in row["plans"]]
        done_before = {a["step"]: a for a in self.store.actions_of(pid)}
        completed: list[str] = []
        final = "done"
        failures: list[str] = []
        for i, (step, plan) in enumerate(zip(pb.steps, plans, strict=True), 1):
            aid = f"{pid}.{i}"
            prev = done_before.get(i)
            if prev is not None and prev["status"] in ("ok", "undone"):
                completed.append(aid)
                continue
            if prev is not None and prev["status"] == "failed":
                ok = False
            else:
                if self.kill_switch_on():
                    self.record(
                        "policy",
                        "policy",
                        event="kill-switch",
                        proposal_id=pid,
                        playbook=pb.id,
                        reason=f"the kill switch stopped the run before step {i}",
                    )
                    final = "killed"
                    break
                ok = await self._apply_step(pid, i, aid, step, plan)
            if ok:
                completed.append(aid)
                continue
            failures.append(f"step {i} ({step.action}) failed")
            if step.on_failure == "continue":
                continue
            if step.on_failure == "rollback":
                await self._rollback(pid, completed, "policy", f"step {i} ({step.action}) failed")
                final = "rolled_back"
            else:
                final = "failed"
            break
        self.store.set_status(pid, final, expect=("running",), error="; ".join(failures) or None)
        self.record(
            "result",
            "policy",
            event=f"run-{final.replace('_', '-')}",
            proposal_id=pid,
            playbook=pb.id,
            status=final,
            failures=failures,
            rule_id=row.get("rule_id"),
            entity=row.get("entity"),
        )
        self.counters[f"runs_{final}"] += 1
        return final

    async def _apply_step(self, pid: str, i: int, aid: str, step: Any, plan: ActionPlan) -> bool:
        action = load_action(step.action)
        ctx = self.context(pid)
        self.store.journal_start(aid, pid, i, step.action, plan_to_json(plan), plan.reversible)
        self.record(
            "action",
            "policy",
            event="action-started",
            proposal_id=pid,
            action_id=aid,
            step=i,
            action=step.action,
            summary=plan.summary,
            target=asdict(plan.target),
            affected_peers=list(plan.affected_peers),
            executor=getattr(self.executor, "name", "?"),
        )
        attempts = 1 + int(step.retries)
        res = ActionResult(ok=False, summary="not run")
        for attempt in range(attempts):
            try:
                res = await asyncio.wait_for(action.apply(plan, ctx), self.cfg.step_timeout_secs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                res = ActionResult(
                    ok=False, summary=f"{step.action} raised", error=f"{type(exc).__name__}: {exc}"
                )
            if res.ok:
                break
            if attempt + 1 < attempts:
                await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
        status = "ok" if res.ok else "failed"
        self.store.journal_end(aid, status, _result_json(res), res.undo, res.error)
        self.record(
            "result",
            "policy",
            event="action-succeeded" if res.ok else "action-failed",
            proposal_id=pid,
            action_id=aid,
            step=i,
            action=step.action,
            target=asdict(plan.target),
            ok=res.ok,
            verified=res.verified,
            summary=res.summary,
            error=res.error,
            details=res.details,
            reversible=plan.reversible and res.undo is not None,
        )
        self.counters[f"actions_{status}"] += 1
        return res.ok

    async def _rollback(self, pid: str, completed: list[str], actor: str, reason: str) -> None:
        for aid in reversed(completed):
            row = self.store.action_row(aid)
            if row is None or row["status"] != "ok":
                continue
            if not row["reversible"] or not row["undo"]:
                self.record(
                    "policy",
                    "policy",
                    event="not-reversible",
                    proposal_id=pid,
                    action_id=aid,
                    action=row["action"],
                    reason=f"rollback ({reason}) cannot undo this step",
                )
                continue
            await self._undo_row(row, actor, f"rollback: {reason}")

    async def _undo_row(self, row: dict[str, Any], actor: str, reason: str) -> dict[str, Any]:
        aid = str(row["id"])
        if not self.store.set_action_status(aid, "undoing", expect=("ok",)):
            return {"ok": False, "summary": f"action {aid} is not in a state that can be undone"}
        self.record(
            "undo",
            actor,
            event="undo-started",
            proposal_id=row["proposal_id"],
            action_id=aid,
            action=row["action"],
            reason=reason,
        )
        action = load_action(row["action"])
        try:
            res = await asyncio.wait_for(
                action.undo(dict(row["undo"] or {}), self.context(str(row["proposal_id"]))),
                self.cfg.step_timeout_secs,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            res = ActionResult(ok=False, summary="undo raised", error=f"{type(exc).__name__}: {exc}")
        self.store.set_action_status(aid, "undone" if res.ok else "ok", expect=("undoing",))
        self.record(
            "result",
            actor,
            event="undo-succeeded" if res.ok else "undo-failed",
            proposal_id=row["proposal_id"],
            action_id=aid,
            action=row["action"],
            ok=res.ok,
            verified=res.verified,
            summary=res.summary,
            error=res.error,
        )
        return _result_json(res)

    async def undo_action(self, aid: str, actor: str, reason: str) -> dict[str, Any]:
        """Reverse one completed, reversible action (``wgsiem respond undo``)."""
        async with self._lock:
            row = self.store.action_row(aid)
            if row is None:
                return {"ok": False, "summary": f"no action {aid}"}
            if not row["reversible"] or not row["undo"]:
                return {"ok": False, "summary": f"action {aid} ({row['action']}) is not reversible"}
            return await self._undo_row(row, actor, reason)

    # ---- restart and polling -----------------------------------------------------------------------

    async def recover(self) -> None:
        """Finish what a crash interrupted: resume or roll back ``running`` proposals, requeue undos."""
        for req in self.store.undo_requests("running"):
            self.store.db.execute("UPDATE undo_requests SET status = 'queued' WHERE id = ?", (req["id"],))
        for row in self.store.proposals(status="running"):
            pid = str(row["id"])
            pb = self.playbooks.get(row["playbook"])
            actions = self.store.actions_of(pid)
            inflight = [a["id"] for a in actions if a["status"] == "started"]
            if pb is not None and pb.on_crash == "resume":
                self.record(
                    "policy",
                    "policy",
                    event="crash-resume",
                    proposal_id=pid,
                    playbook=row["playbook"],
                    inflight=inflight,
                    reason="interrupted run resumed (actions are idempotent)",
                )
                async with self._lock:
                    await self._run(pid, pb)
                continue
            self.record(
                "policy",
                "policy",
                event="crash-rollback",
                proposal_id=pid,
                playbook=row["playbook"],
                inflight=inflight,
                reason="interrupted run rolled back as its playbook says",
            )
            async with self._lock:
                for aid in inflight:
                    self.store.set_action_status(aid, "abandoned", expect=("started",))
                await self._rollback(
                    pid, [a["id"] for a in actions if a["status"] == "ok"], "policy", "crash"
                )
                self.store.set_status(pid, "rolled_back", expect=("running",))
                self.record(
                    "result",
                    "policy",
                    event="run-rolled-back",
                    proposal_id=pid,
                    playbook=row["playbook"],
                    status="rolled_back",
                )

    async def tick(self) -> None:
        """One poll: heartbeat, expire stale proposals, run approved ones, serve undo requests."""
        self.store.beat()
        now = time.time()
        for row in self.store.proposals(status="pending"):
            expired = row["expires"] is not None and row["expires"] <= now
            if expired and self.store.set_status(str(row["id"]), "expired", expect=("pending",)):
                self.record(
                    "decision",
                    "policy",
                    event="expired",
                    proposal_id=row["id"],
                    playbook=row["playbook"],
                    decision="expire",
                    reason="approval TTL elapsed",
                )
        for row in self.store.proposals(status="approved"):
            await self.execute(str(row["id"]))
        for req in self.store.undo_requests("queued"):
            if self.store.claim_undo_request(int(req["id"])):
                res = await self.undo_action(
                    str(req["action_id"]), str(req["actor"]), str(req["reason"] or "")
                )
                self.store.finish_undo_request(
                    int(req["id"]), "done" if res.get("ok") else "failed", str(res.get("summary", ""))
                )

    async def run_poller(self, stop: asyncio.Event) -> None:
        last_error = ""
        while not stop.is_set():
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bad row must not stop approvals from being served
                self.counters["poll_errors"] += 1
                text = f"{type(exc).__name__}: {exc}"
                if text != last_error:  # audited once per distinct error, not once per poll
                    self.record("policy", "policy", event="poll-error", reason=text)
                last_error = text
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.cfg.poll_interval_secs)
