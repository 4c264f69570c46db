"""The SOAR API: propose, approve, deny and query responses over authenticated HTTP.

Bearer tokens are compared in constant time (``hmac.compare_digest``) against every configured token
(no early exit that would tell which name exists); the token's *name* is the actor recorded in the
audit log. Routes (JSON in and out):

* ``POST /api/v1/proposals`` ``{"playbook": id|null, "alert": {...}, "target": {...}?, "reason": "..."}``
  → 202 ``{"id", "proposals": [...], "status"}``; with ``playbook: null`` every playbook the alert
  matches is proposed (422 when none does). Governance applies as for detections.
* ``POST /api/v1/proposals/{id}/approve`` | ``/deny`` ``{"reason": "..."}`` → 200 the proposal.
* ``GET /api/v1/proposals?status=pending`` → ``{"proposals": [...]}``; ``GET /api/v1/proposals/{id}``.
* ``GET /api/v1/actions/{id}`` → the action run (plan, result, undo availability; no secrets).
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from aiohttp import web

from .config import RespondApiConfig
from .engine import Engine
from .governance import DecisionError, decide

__all__ = ["RespondApi"]

_ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)
_ACTOR: web.RequestKey[str] = web.RequestKey("actor", str)


def _proposal_view(row: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "id",
        "status",
        "playbook",
        "tier",
        "requires_approval",
        "why",
        "origin",
        "actor",
        "reason",
        "alert_id",
        "rule_id",
        "entity",
        "target",
        "plans",
        "dry_run",
        "error",
        "created",
        "updated",
        "expires",
    )
    return {k: row.get(k) for k in keep}


def _action_view(row: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "id",
        "proposal_id",
        "step",
        "action",
        "status",
        "attempts",
        "started",
        "finished",
        "plan",
        "result",
        "error",
    )
    out = {k: row.get(k) for k in keep}
    out["undoable"] = bool(row.get("reversible")) and bool(row.get("undo")) and row.get("status") == "ok"
    return out


class RespondApi:
    def __init__(self, engine: Engine, cfg: RespondApiConfig) -> None:
        self.engine = engine
        self.cfg = cfg
        self._tokens = [(name, tok.get_secret_value().encode()) for name, tok in cfg.tokens.items()]
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.cfg.listen}:{self.port}"

    def _actor(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            return None
        found = None
        for name, token in self._tokens:
            if hmac.compare_digest(given.strip().encode(), token):
                found = name
        return found

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        actor = self._actor(request)
        if actor is None:
            return web.json_response(
                {"error": "missing or invalid bearer token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="wgsiem"'},
            )
        request[_ACTOR] = f"api:{actor}"
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth], client_max_size=1 << 20)
        app[_ENGINE] = self.engine
        app.router.add_post("/api/v1/proposals", self.post_proposal)
        app.router.add_get("/api/v1/proposals", self.list_proposals)
        app.router.add_get("/api/v1/proposals/{id}", self.get_proposal)
        app.router.add_post("/api/v1/proposals/{id}/{decision:approve|deny}", self.post_decision)
        app.router.add_get("/api/v1/actions/{id}", self.get_action)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.listen, self.cfg.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.cfg.port

    async def stop(self) -> None:
        for t in list(self._tasks):
            await t
        if self._runner is not None:
            await self._runner.cleanup()

    def _spawn_execute(self, pid: str) -> None:
        task = asyncio.create_task(self.engine.execute(pid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(
                text='{"error": "body is not JSON"}', content_type="application/json"
            ) from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(
                text='{"error": "body must be an object"}', content_type="application/json"
            )
        return body

    async def post_proposal(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        alert = body.get("alert")
        target = body.get("target")
        reason = str(body.get("reason") or "")
        pb_id = body.get("playbook")
        if not isinstance(alert, dict) or (target is not None and not isinstance(target, dict)):
            return web.json_response(
                {"error": "`alert` must be an object (and `target` one if given)"}, status=400
            )
        if pb_id is not None:
            pb = self.engine.playbooks.get(str(pb_id))
            if pb is None:
                return web.json_response(
                    {"error": f"no playbook {pb_id!r}", "playbooks": sorted(self.engine.playbooks)},
                    status=404,
                )
            chosen = [pb]
        else:
            chosen = [p for p in self.engine.playbooks.values() if p.matches(alert)]
            if not chosen:
                return web.json_response({"error": "no playbook matches this alert; name one"}, status=422)
        ids: list[dict[str, Any]] = []
        for pb in chosen:
            pid, new = await self.engine.propose(
                pb, alert, origin="api", actor=request[_ACTOR], target=target, reason=reason
            )
            if new:
                self._spawn_execute(pid)
            row = self.engine.store.proposal(pid) or {}
            ids.append({"id": pid, "playbook": pb.id, "status": row.get("status"), "duplicate": not new})
        return web.json_response(
            {"id": ids[0]["id"], "status": ids[0]["status"], "proposals": ids}, status=202
        )

    async def list_proposals(self, request: web.Request) -> web.Response:
        rows = self.engine.store.proposals(request.query.get("status") or None)
        return web.json_response({"proposals": [_proposal_view(r) for r in rows]})

    async def get_proposal(self, request: web.Request) -> web.Response:
        row = self.engine.store.proposal(request.match_info["id"])
        if row is None:
            return web.json_response({"error": "no such proposal"}, status=404)
        out = _proposal_view(row)
        out["decisions"] = self.engine.store.decisions(row["id"])
        out["actions"] = [_action_view(a) for a in self.engine.store.actions_of(row["id"])]
        return web.json_response(out)

    async def post_decision(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        pid = request.match_info["id"]
        try:
            row = decide(
                self.engine.store,
                self.engine.audit,
                pid,
                request.match_info["decision"],
                request[_ACTOR],
                str(body.get("reason") or ""),
            )
        except DecisionError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        if row["status"] == "approved":
            self._spawn_execute(pid)
        return web.json_response(_proposal_view(row))

    async def get_action(self, request: web.Request) -> web.Response:
        row = self.engine.store.action_row(request.match_info["id"])
        if row is None:
            return web.json_response({"error": "no such action"}, status=404)
        return web.json_response(_action_view(row))
