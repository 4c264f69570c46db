"""The ``wgsiem`` command line.

Errors print as ``error: <what> in <file>:<line>:<col> — <how to fix>``; ``--debug`` adds tracebacks.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from typing import Any

import click
from rich.console import Console

from wgsiem import __version__
from wgsiem.errors import WgsiemError

__all__ = ["cli", "main"]

err_console = Console(stderr=True)


def parse_since(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``7d`` or an ISO date → epoch seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    t = text.strip()
    if t and t[-1] in units and t[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(t[:-1]) * units[t[-1]]
    from datetime import datetime

    try:
        return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise click.BadParameter(f"{text!r}: use e.g. 30m, 1h, 7d or 2026-11-25T10:00:00Z") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wgsiem")
@click.option("--debug", is_flag=True, help="show tracebacks on errors")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """wgsiem — WireGuard activity as security events for your SIEM."""
    ctx.obj = {"debug": debug}


config_option = click.option(
    "--config", "-c", "config_path", type=click.Path(dir_okay=False), help="YAML configuration file"
)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file: str) -> None:
    """Check a configuration file and report every problem with its line."""
    from wgsiem.config.loader import load_config

    cfg = load_config(file)
    click.echo(
        f"{file}: OK — {len(cfg.sources)} source(s): {', '.join(cfg.sources)}; "
        + (f"{len(cfg.transforms)} transform(s): {', '.join(cfg.transforms)}; " if cfg.transforms else "")
        + f"{len(cfg.sinks)} sink(s): {', '.join(cfg.sinks) or '(default store)'}"
    )


@cli.command()
@config_option
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="also write ECS NDJSON here ('-' = stdout)"
)
@click.option("--poll-interval", type=click.FloatRange(min=0.1), help="seconds between state reads")
@click.option("--state-dir", type=click.Path(file_okay=False), help="where state, store and API socket live")
@click.option("--interface", "-i", "interfaces", multiple=True, help="watch only this interface (repeatable)")
@click.option("--live/--no-live", default=False, help="show a live table of peers while running")
def run(
    config_path: str | None,
    output: str | None,
    poll_interval: float | None,
    state_dir: str | None,
    interfaces: tuple[str, ...],
    live: bool,
) -> None:
    """Collect, normalize, store and ship until SIGTERM/SIGINT (every buffer is flushed on stop)."""
    from wgsiem.config.loader import load_config
    from wgsiem.service import run_service

    cfg = load_config(config_path)
    cfg = apply_overrides(
        cfg, output=output, poll_interval=poll_interval, state_dir=state_dir, interfaces=interfaces
    )
    run_service(cfg, live=live)


def apply_overrides(
    cfg: Any,
    *,
    output: str | None,
    poll_interval: float | None,
    state_dir: str | None,
    interfaces: tuple[str, ...] = (),
) -> Any:
    from wgsiem.sinks.ndjson.config import NdjsonSinkConfig

    if state_dir:
        cfg = cfg.model_copy(update={"state_dir": state_dir})
    source_updates: dict[str, Any] = {}
    if poll_interval:
        source_updates["poll_interval_secs"] = poll_interval
    if interfaces:
        source_updates["interfaces"] = list(interfaces)
    if source_updates:
        cfg = cfg.model_copy(
            update={
                "sources": {
                    k: v.model_copy(update=source_updates) if v.type == "wg_state" else v
                    for k, v in cfg.sources.items()
                }
            }
        )
    if output:
        sinks = dict(cfg.sinks)
        sinks["output"] = NdjsonSinkConfig(type="ndjson", path=output)
        cfg = cfg.model_copy(update={"sinks": sinks})
    return cfg.with_default_store()


def _load(config_path: str | None, state_dir: str | None) -> Any:
    from wgsiem.config.loader import load_config

    cfg = load_config(config_path)
    return apply_overrides(cfg, output=None, poll_interval=None, state_dir=state_dir)


state_dir_option = click.option(
    "--state-dir", type=click.Path(file_okay=False), help="state directory of `run`"
)
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")


@cli.command()
@config_option
@state_dir_option
@json_option
def status(config_path: str | None, state_dir: str | None, as_json: bool) -> None:
    """Components, their counters, and the last poll."""
    from wgsiem.cli import views

    views.status(_load(config_path, state_dir), as_json)


@cli.command()
@config_option
@state_dir_option
@json_option
@click.option("--interface", "-i", help="only this interface")
def peers(config_path: str | None, state_dir: str | None, as_json: bool, interface: str | None) -> None:
    """Who is connected, from where, since when, and how much traffic."""
    from wgsiem.cli import views

    views.peers(_load(config_path, state_dir), as_json, interface)


@cli.command()
@config_option
@state_dir_option
@json_option
@click.option("--since", default="24h", show_default=True, help="e.g. 30m, 1h, 7d, or an ISO date")
@click.option("--open", "open_only", is_flag=True, help="only sessions still open")
@click.option("--peer", help="only this peer public key")
def sessions(
    config_path: str | None,
    state_dir: str | None,
    as_json: bool,
    since: str,
    open_only: bool,
    peer: str | None,
) -> None:
    """Session history: start, end, duration, bytes, endpoints."""
    from wgsiem.cli import views

    views.sessions(_load(config_path, state_dir), as_json, parse_since(since), open_only, peer)


@cli.command()
@config_option
@state_dir_option
@click.option("--since", default=None, help="e.g. 30m, 1h, 7d (default: the last 50 events)")
@click.option("--action", help="only this event.action")
@click.option("--follow", "-f", is_flag=True, help="keep printing new events")
@click.option("--format", "fmt", type=click.Choice(["line", "json"]), default="line", show_default=True)
def events(
    config_path: str | None,
    state_dir: str | None,
    since: str | None,
    action: str | None,
    follow: bool,
    fmt: str,
) -> None:
    """Print stored events (ECS documents) — and follow new ones with --follow."""
    from wgsiem.cli import views

    views.events(
        _load(config_path, state_dir), parse_since(since) if since else None, action, follow, fmt == "json"
    )


OPTIONAL_COMMANDS: tuple[tuple[str, str], ...] = (
    ("wgsiem.cli.doctor", "doctor"),
    ("wgsiem.cli.privacy", "privacy"),
    ("wgsiem.cli.replay", "record"),
    ("wgsiem.cli.replay", "replay"),
    ("wgsiem.cli.alerts", "alerts"),
    ("wgsiem.cli.rules", "rules"),
    ("wgsiem.cli.simulate", "simulate"),
    ("wgsiem.cli.export", "export"),
    ("wgsiem.cli.approvals", "approvals"),
    ("wgsiem.cli.audit", "audit"),
    ("wgsiem.cli.respond", "respond"),
    ("wgsiem.lab.cli", "lab"),
)
"""Command modules mounted when present (module, click command attribute)."""


def _mount_optional() -> None:
    for module, attr in OPTIONAL_COMMANDS:
        if importlib.util.find_spec(module) is None:
            continue
        cli.add_command(getattr(importlib.import_module(module), attr))


_mount_optional()


def main() -> None:
    debug = "--debug" in sys.argv
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except WgsiemError as exc:
        if debug:
            err_console.print_exception()
        for line in exc.render().splitlines():
            err_console.print(f"[bold red]error:[/] {line}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
