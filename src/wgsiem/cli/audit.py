"""``wgsiem audit verify|show``: check and read the hash-chained response audit log."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from wgsiem.cli.respond import config_option, state_dir_option

__all__ = ["audit"]


def _paths(config_path: str | None, state_dir: str | None, path: str | None) -> tuple[Path, list[Path]]:
    from wgsiem.cli.respond import respond_config
    from wgsiem.respond.audit import head_path_for
    from wgsiem.respond.store import RespondPaths

    if path:
        p = Path(path)
        return p, [head_path_for(p)]
    cfg, sink = respond_config(config_path, state_dir)
    rp = RespondPaths.from_sink_config(Path(cfg.state_dir), sink)
    return rp.audit, [head_path_for(rp.audit)] + ([rp.external_head] if rp.external_head else [])


@click.group()
def audit() -> None:
    """The response audit log (append-only, hash-chained)."""


@audit.command()
@click.option("--path", type=click.Path(dir_okay=False), help="audit log file (default: from the config)")
@config_option
@state_dir_option
def verify(path: str | None, config_path: str | None, state_dir: str | None) -> None:
    """Check every record's hash, the chain and the head; exit 1 naming the first bad record."""
    from wgsiem.respond.audit import verify as verify_log

    log, heads = _paths(config_path, state_dir, path)
    if not log.exists():
        raise click.ClickException(f"no audit log at {log}")
    res = verify_log(log, heads)
    click.echo(res.describe(log))
    if not res.ok:
        raise SystemExit(1)


@audit.command()
@click.option("--since", help="only records after this (30m, 1h, 7d, or an ISO time)")
@click.option(
    "--kind",
    type=click.Choice(["proposal", "decision", "action", "result", "undo", "policy"]),
    multiple=True,
    help="only these kinds (repeatable)",
)
@click.option("--json", "as_json", is_flag=True, help="one JSON record per line, as stored")
@click.option("--path", type=click.Path(dir_okay=False), help="audit log file (default: from the config)")
@config_option
@state_dir_option
def show(
    since: str | None,
    kind: tuple[str, ...],
    as_json: bool,
    path: str | None,
    config_path: str | None,
    state_dir: str | None,
) -> None:
    """Print audit records."""
    from wgsiem.respond.audit import read_records

    log, _heads = _paths(config_path, state_dir, path)
    if not log.exists():
        raise click.ClickException(f"no audit log at {log}")
    from wgsiem.cli.main import parse_since

    t0 = parse_since(since) if since else None
    for lineno, rec, raw in read_records(log):
        if rec is None:
            click.echo(f"line {lineno}: unreadable record ({len(raw)} bytes)", err=True)
            continue
        if t0 is not None and float(rec.get("time", 0)) < t0:
            continue
        if kind and rec.get("kind") not in kind:
            continue
        if as_json:
            click.echo(json.dumps(rec, sort_keys=True))
            continue
        when = dt.datetime.fromtimestamp(float(rec.get("time", 0)), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        what = rec.get("summary") or rec.get("reason") or rec.get("playbook") or ""
        ids = " ".join(str(rec[k]) for k in ("proposal_id", "action_id") if rec.get(k))
        click.echo(
            f"{rec.get('seq'):>6} {when} {rec.get('kind'):<8} {rec.get('event', ''):<18} "
            f"{rec.get('actor', ''):<16} {ids} {what}"
        )
