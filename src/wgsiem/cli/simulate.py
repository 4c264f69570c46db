"""``wgsiem simulate``: labelled WireGuard telemetry for measuring detections."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

__all__ = ["simulate"]


@click.command()
@click.option("--peers", type=click.IntRange(min=1), default=50, show_default=True, help="benign population")
@click.option(
    "--days", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="simulated period"
)
@click.option(
    "--attacks",
    default="all:5",
    show_default=True,
    help="attacks per class: all:50, or spike:50,travel:20 (classes: see docs/detections-evaluation.md)",
)
@click.option("--seed", type=int, default=1, show_default=True, help="same seed, same directory")
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="seconds between two state captures",
)
@click.option(
    "--learning-days",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="benign history before the first attack",
)
@click.option("--start", default="2026-11-02T00:00:00Z", show_default=True, help="ISO start time (UTC)")
@click.option("--no-flows", is_flag=True, help="no NetFlow pcap (smaller, faster; lateral attacks need it)")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="directory to write")
@click.option("--quiet", "-q", is_flag=True, help="no progress on stderr")
def simulate(
    peers: int,
    days: float,
    attacks: str,
    seed: int,
    poll_interval: float,
    learning_days: float,
    start: str,
    no_flows: bool,
    out: str,
    quiet: bool,
) -> None:
    """Write a benign population plus injected attacks, with labels, in the replay formats.

    Then `wgsiem rules evaluate OUT` measures every rule against it.
    """
    from wgsiem.detect.simulate import SimulationSpec, parse_attacks
    from wgsiem.detect.simulate import simulate as run

    try:
        when = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{start!r} is not an ISO date", param_hint="--start") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    target = Path(out)
    if target.exists() and any(target.iterdir()):
        raise click.BadParameter(f"{out} is not empty", param_hint="--out")
    spec = SimulationSpec(
        peers=peers,
        days=days,
        attacks=parse_attacks(attacks),
        seed=seed,
        poll_interval_secs=poll_interval,
        learning_days=learning_days,
        start=when,
        flows=not no_flows,
    )
    res = run(spec, target, None if quiet else (lambda m: click.echo(m, err=True)))
    for cls, missing in res.shortfall.items():
        click.echo(
            f"warning: placed {spec.attacks[cls] - missing} of {spec.attacks[cls]} {cls} attack(s) "
            "(not enough eligible peers or free time)",
            err=True,
        )
    click.echo(
        f"{out}: {res.labels} labels, {sum(res.attacks.values())} attacks, {res.capture_files:,} captures "
        f"({res.capture_bytes / 1e6:.1f} MB) in {res.seconds:.1f}s"
    )
