"""``wgsiem alerts``: list and triage the alerts of the detect stage (``<state_dir>/alerts.db``).

Works while ``wgsiem run`` runs: the lifecycle file is SQLite in WAL mode, written by the running
engine (new alerts) and by these commands (status changes, suppressions); the engine picks up a new
suppression within ``suppression_check_interval_secs``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import time
from pathlib import Path
from typing import Any

import click

from wgsiem.errors import WgsiemError

__all__ = ["alerts"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _store(config_path: str | None, state_dir: str | None) -> Any:
    from wgsiem.cli.main import _load
    from wgsiem.detect.lifecycle import AlertStore

    cfg = _load(config_path, state_dir)
    path = Path(cfg.state_dir) / "alerts.db"
    if not path.exists():
        raise WgsiemError(
            f"no alert database at {path}",
            fix="run `wgsiem run` with a `detect` transform first, or pass --state-dir",
        )
    return AlertStore(path)


def _duration(text: str) -> float:
    t = text.strip()
    if t and t[-1] in _UNITS and t[:-1].replace(".", "", 1).isdigit():
        return float(t[:-1]) * _UNITS[t[-1]]
    raise click.BadParameter(f"{text!r}: use e.g. 30m, 24h, 7d")


def _iso(t: float | None) -> str:
    if t is None:
        return ""
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


_common = [
    click.option(
        "--config", "-c", "config_path", type=click.Path(dir_okay=False), help="YAML configuration file"
    ),
    click.option("--state-dir", type=click.Path(file_okay=False), help="where alerts.db lives"),
]


def _with_common(f: Any) -> Any:
    for opt in reversed(_common):
        f = opt(f)
    return f


@click.group()
def alerts() -> None:
    """List and triage alerts: open → acknowledged → closed, and suppressions."""


@alerts.command("list")
@_with_common
@click.option("--status", type=click.Choice(["open", "acknowledged", "closed"]), help="only this status")
@click.option("--rule", help="rule name or id")
@click.option("--entity", help="entity value (peer key, user, address)")
@click.option("--since", help="event time: 30m, 24h, 7d or an ISO date")
@click.option("--limit", type=int, default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def list_(
    config_path: str | None,
    state_dir: str | None,
    status: str | None,
    rule: str | None,
    entity: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Alerts, newest first."""
    from wgsiem.cli.main import parse_since

    store = _store(config_path, state_dir)
    try:
        rows = store.list(
            status=status, rule=rule, entity=entity, since=parse_since(since) if since else None, limit=limit
        )
    finally:
        store.close()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r.summary(), sort_keys=True))
        return
    if not rows:
        click.echo("no alerts")
        return
    click.echo(f"{'ID':<12} {'TIME (UTC)':<20} {'SEV':>3} {'STATUS':<12} {'RULE':<36} ENTITY")
    for r in rows:
        click.echo(
            f"{r.id[:12]:<12} {_iso(r.event_time):<20} {r.severity:>3} {r.status:<12} {r.rule_name:<36} "
            f"{r.entity_field}={r.entity_value}"
        )


@alerts.command()
@_with_common
@click.argument("alert_id")
@click.option("--json", "as_json", is_flag=True)
def show(config_path: str | None, state_dir: str | None, alert_id: str, as_json: bool) -> None:
    """One alert: its lifecycle, history and the alert document (an id prefix is enough)."""
    store = _store(config_path, state_dir)
    try:
        rec = store.get(alert_id)
        if rec is None:
            raise WgsiemError(
                f"no alert {alert_id!r} (or the prefix is ambiguous)", fix="see `wgsiem alerts list`"
            )
        history = store.history(rec.id)
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps({**rec.summary(), "history": history, "document": rec.document}, sort_keys=True)
        )
        return
    alert = rec.document.get("wireguard", {}).get("alert", {})
    click.echo(f"{rec.id}  {rec.title}")
    click.echo(f"  rule      {rec.rule_name} ({rec.rule_id})  severity {rec.severity}")
    click.echo(f"  entity    {rec.entity_field}={rec.entity_value}")
    click.echo(f"  time      {_iso(rec.event_time)}")
    click.echo(
        f"  status    {rec.status}"
        + (f" by {rec.actor} at {_iso(rec.updated)}: {rec.reason}" if rec.actor else "")
    )
    click.echo(f"  reason    {rec.document.get('event', {}).get('reason', '')}")
    click.echo(f"  evidence  {', '.join(alert.get('evidence_ids', []))}")
    click.echo(f"  playbook  {alert.get('playbook', '')}")
    click.echo(f"  triage    {alert.get('triage', '')}")
    for h in history:
        click.echo(f"  history   {_iso(h['at'])} {h['status']} by {h['actor']}: {h['reason']}")


def _transition(status: str) -> Any:
    @_with_common
    @click.argument("alert_id")
    @click.option("--reason", required=True, help="why (kept in the history)")
    @click.option("--actor", help="who (default: the invoking user)")
    def cmd(
        config_path: str | None, state_dir: str | None, alert_id: str, reason: str, actor: str | None
    ) -> None:
        store = _store(config_path, state_dir)
        try:
            rec = store.get(alert_id)
            if rec is None:
                raise WgsiemError(
                    f"no alert {alert_id!r} (or the prefix is ambiguous)", fix="see `wgsiem alerts list`"
                )
            if rec.status == "closed" and status != "closed":
                raise WgsiemError(f"alert {rec.id} is closed", fix="closed alerts stay closed")
            store.set_status(rec.id, status, reason=reason, actor=_actor(actor))
        finally:
            store.close()
        click.echo(f"{rec.id} {status}")

    return cmd


alerts.command("ack", help="Acknowledge an alert (someone is on it).")(_transition("acknowledged"))
alerts.command("close", help="Close an alert with a reason (resolved, false positive, …).")(
    _transition("closed")
)


@alerts.command()
@_with_common
@click.option("--rule", default="*", show_default=True, help="rule name or id, or * for every rule")
@click.option("--entity", default="*", show_default=True, help="entity value, or * for every entity")
@click.option("--for", "duration", required=True, help="how long: 30m, 24h, 7d")
@click.option("--reason", required=True)
@click.option("--actor", help="who (default: the invoking user)")
def suppress(
    config_path: str | None,
    state_dir: str | None,
    rule: str,
    entity: str,
    duration: str,
    reason: str,
    actor: str | None,
) -> None:
    """Mute a rule for an entity (either may be *) until now + --for; the running engine honours it."""
    if rule == "*" and entity == "*":
        raise click.BadParameter("give --rule or --entity (muting everything is not a suppression)")
    until = time.time() + _duration(duration)
    store = _store(config_path, state_dir)
    try:
        sid = store.suppress(rule=rule, entity=entity, until=until, reason=reason, actor=_actor(actor))
    finally:
        store.close()
    click.echo(f"suppression {sid}: rule={rule} entity={entity} until {_iso(until)}")
