"""``wgsiem approvals list|show|approve|deny``: the human in the loop.

The approver is the OS user running the command (with the sudo user, when there is one); the reason
is required. The decision goes to the shared database and the audit log; the running engine picks an
approval up within its poll interval and executes it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from wgsiem.cli.respond import actor_identity, config_option, open_state, state_dir_option

__all__ = ["approvals"]


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if t else "-"


def _steps(row: dict[str, Any]) -> str:
    return "; ".join(str(p.get("summary") or p.get("action")) for p in row.get("plans") or []) or "(no plan)"


@click.group()
def approvals() -> None:
    """Proposals waiting for a human decision."""


@approvals.command("list")
@click.option("--status", default="pending", show_default=True, help="a status, or `all`")
@click.option("--json", "as_json", is_flag=True)
@config_option
@state_dir_option
def list_(status: str, as_json: bool, config_path: str | None, state_dir: str | None) -> None:
    """List proposals (pending ones by default)."""
    _paths, store, audit = open_state(config_path, state_dir)
    try:
        rows = store.proposals(None if status == "all" else status)
    finally:
        audit.close()
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo(f"no {status} proposals")
        return
    for r in rows:
        click.echo(
            f"{r['id']}  {r['status']:<12} tier {r['tier']}  {r['playbook']:<18} {r['entity'] or '-'}  "
            f"created {_when(r['created'])}  expires {_when(r['expires'])}\n"
            f"    why: {r['why'] or '-'}\n    plan: {_steps(r)}"
        )


@approvals.command()
@click.argument("proposal_id")
@config_option
@state_dir_option
def show(proposal_id: str, config_path: str | None, state_dir: str | None) -> None:
    """One proposal with its plan, decisions and action runs (JSON)."""
    _paths, store, audit = open_state(config_path, state_dir)
    try:
        row = store.proposal(proposal_id)
        if row is None:
            raise click.ClickException(f"no proposal {proposal_id}")
        row["decisions"] = store.decisions(proposal_id)
        row["actions"] = [
            {k: v for k, v in a.items() if k != "undo"} | {"undoable": bool(a["undo"])}
            for a in store.actions_of(proposal_id)
        ]
    finally:
        audit.close()
        store.close()
    click.echo(json.dumps(row, indent=2, default=str))


def _decide(
    decision: str, proposal_id: str, reason: str, config_path: str | None, state_dir: str | None
) -> None:
    from wgsiem.respond.governance import DecisionError, decide

    _paths, store, audit = open_state(config_path, state_dir)
    try:
        row = decide(store, audit, proposal_id, decision, actor_identity(), reason)
    except DecisionError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        audit.close()
        store.close()
    click.echo(f"{proposal_id}: {row['status']} by {actor_identity()}")


@approvals.command()
@click.argument("proposal_id")
@click.option("--reason", required=True, help="why (recorded in the audit log)")
@config_option
@state_dir_option
def approve(proposal_id: str, reason: str, config_path: str | None, state_dir: str | None) -> None:
    """Approve a pending proposal; the running engine executes it."""
    _decide("approve", proposal_id, reason, config_path, state_dir)


@approvals.command()
@click.argument("proposal_id")
@click.option("--reason", required=True, help="why (recorded in the audit log)")
@config_option
@state_dir_option
def deny(proposal_id: str, reason: str, config_path: str | None, state_dir: str | None) -> None:
    """Deny a pending proposal; nothing runs, the reason is audited."""
    _decide("deny", proposal_id, reason, config_path, state_dir)
