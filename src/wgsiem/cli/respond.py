"""``wgsiem respond``: the kill switch, undo, and the loaded playbooks.

The commands work on the state the running engine shares (``<state_dir>/respond.db``, the audit log,
the kill-switch file); the engine notices within its poll interval. ``undo`` is queued for the
running engine; when none is running it is done here, with the executor the configuration names.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import time
from pathlib import Path
from typing import Any

import click

__all__ = ["actor_identity", "config_option", "open_state", "respond", "respond_config", "state_dir_option"]

# Declared here, not imported from wgsiem.cli.main: this module is imported while main is still being
# initialized (it mounts the optional commands), and under `python -m wgsiem.cli.main` main is __main__.
config_option = click.option(
    "--config", "-c", "config_path", type=click.Path(dir_okay=False), help="YAML configuration file"
)
state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="the service's state directory (overrides the config)",
)


def actor_identity() -> str:
    """The OS user running the command (and who ran sudo, when they did)."""
    user = getpass.getuser()
    sudo = os.environ.get("SUDO_USER")
    return f"os:{user}" + (f"(sudo:{sudo})" if sudo and sudo != user else "")


def respond_config(config_path: str | None, state_dir: str | None) -> tuple[Any, Any]:
    """``(whole config, the respond sink's config or None)``."""
    from wgsiem.cli.main import _load

    cfg = _load(config_path, state_dir)
    sink = next((s for s in cfg.sinks.values() if getattr(s, "type", "") == "respond"), None)
    return cfg, sink


def open_state(config_path: str | None, state_dir: str | None) -> tuple[Any, Any, Any]:
    """``(paths, store, audit)`` of the respond sink of this configuration."""
    from wgsiem.respond.audit import AuditLog
    from wgsiem.respond.store import RespondPaths, Store

    cfg, sink = respond_config(config_path, state_dir)
    paths = RespondPaths.from_sink_config(Path(cfg.state_dir), sink)
    store = Store(paths.db)
    audit = AuditLog(paths.audit, external_head_path=paths.external_head)
    return paths, store, audit


@click.group()
def respond() -> None:
    """Response engine controls: kill switch, undo, playbooks."""


@respond.command("kill-switch")
@click.argument("state", type=click.Choice(["on", "off", "status"]))
@click.option("--reason", default="", help="why (recorded in the audit log)")
@config_option
@state_dir_option
def kill_switch(state: str, reason: str, config_path: str | None, state_dir: str | None) -> None:
    """Stop every response action at once (on), allow them again (off), or show the state."""
    from wgsiem.respond.engine import set_kill_switch

    paths, store, audit = open_state(config_path, state_dir)
    try:
        if state == "status":
            click.echo(f"kill switch {'ON' if paths.kill_switch.exists() else 'off'} ({paths.kill_switch})")
            return
        if state == "on" and not reason:
            reason = "operator stopped all response actions"
        set_kill_switch(
            paths, audit, state == "on", actor_identity(), reason or "operator re-enabled responses"
        )
        click.echo(f"kill switch {state.upper()}: {paths.kill_switch}")
    finally:
        audit.close()
        store.close()


@respond.command()
@click.argument("action_id")
@click.option("--reason", required=True, help="why (recorded in the audit log)")
@click.option(
    "--wait", "wait_secs", type=float, default=30.0, show_default=True, help="seconds to wait for the result"
)
@config_option
@state_dir_option
def undo(
    action_id: str, reason: str, wait_secs: float, config_path: str | None, state_dir: str | None
) -> None:
    """Reverse a completed, reversible action (e.g. lift a block, restore a revoked peer)."""
    from wgsiem.respond.config import RespondSinkConfig
    from wgsiem.respond.engine import Engine

    cfg, sink = respond_config(config_path, state_dir)
    _paths, store, audit = open_state(config_path, state_dir)
    try:
        row = store.action_row(action_id)
        if row is None:
            raise click.ClickException(f"no action {action_id} (see `wgsiem approvals show <proposal id>`)")
        beat = store.last_beat()
        poll = sink.poll_interval_secs if sink is not None else 0.25
        if beat is not None and time.time() - beat < max(5.0, 10 * poll):
            rid = store.request_undo(action_id, actor_identity(), reason)
            deadline = time.monotonic() + wait_secs
            while time.monotonic() < deadline:
                req = store.undo_request(rid)
                if req and req["status"] in ("done", "failed"):
                    click.echo(f"undo {req['status']}: {req['outcome']}")
                    if req["status"] == "failed":
                        raise SystemExit(1)
                    return
                time.sleep(0.1)
            click.echo(f"undo queued (request {rid}); the engine has not finished it yet")
            raise SystemExit(2)
    finally:
        audit.close()
        store.close()
    engine = Engine(
        sink or RespondSinkConfig(type="respond"), state_dir=Path(cfg.state_dir), hostname=cfg.hostname
    )
    try:
        res = asyncio.run(engine.undo_action(action_id, actor_identity(), reason))
    finally:
        engine.audit.close()
        engine.store.close()
    click.echo(f"undo {'done' if res.get('ok') else 'failed'}: {res.get('summary')}")
    if not res.get("ok"):
        raise SystemExit(1)


@respond.command()
@click.option("--json", "as_json", is_flag=True)
@config_option
@state_dir_option
def playbooks(as_json: bool, config_path: str | None, state_dir: str | None) -> None:
    """List (and thereby lint) the playbooks the respond sink would load."""
    from wgsiem.respond.playbook import load_playbooks

    _cfg, sink = respond_config(config_path, state_dir)
    pbs = load_playbooks(
        list(sink.playbook_dirs) if sink else [], builtin=sink.builtin_playbooks if sink else True
    )
    if as_json:
        click.echo(json.dumps([p.model_dump() | {"source": p.source} for p in pbs.values()], indent=2))
        return
    for p in pbs.values():
        steps = " → ".join(s.action for s in p.steps)
        click.echo(f"{p.id:<20} tier {p.tier}  approval={p.approval:<6} {steps}   ({p.source})")


@respond.command()
@click.option("--json", "as_json", is_flag=True)
@config_option
@state_dir_option
def status(as_json: bool, config_path: str | None, state_dir: str | None) -> None:
    """Proposals by status, the kill switch, and whether an engine is running."""
    paths, store, audit = open_state(config_path, state_dir)
    try:
        counts: dict[str, int] = {}
        for row in store.db.execute("SELECT status, count(*) AS n FROM proposals GROUP BY status").fetchall():
            counts[row["status"]] = row["n"]
        beat = store.last_beat()
        out = {
            "proposals": counts,
            "kill_switch": paths.kill_switch.exists(),
            "engine_running": beat is not None and time.time() - beat < 10,
            "audit": str(paths.audit),
        }
    finally:
        audit.close()
        store.close()
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            click.echo(f"{k}: {v}")
