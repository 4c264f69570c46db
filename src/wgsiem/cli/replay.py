"""``wgsiem record`` and ``wgsiem replay``."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from wgsiem.errors import WgsiemError

__all__ = ["record", "replay"]


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="seconds between two state snapshots",
)
@click.option(
    "--duration", type=click.FloatRange(min=0), help="stop after this many seconds (default: until Ctrl-C)"
)
@click.option(
    "--conf",
    "conf_globs",
    multiple=True,
    default=("/etc/wireguard/*.conf",),
    show_default=True,
    help="config files to snapshot when they change (glob, repeatable)",
)
@click.option(
    "--log",
    "logs",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="log file whose new lines are captured (kern.log, a wireguard-go log; repeatable)",
)
@click.option(
    "--interface", "-i", "interfaces", multiple=True, help="record only this interface (repeatable)"
)
def record(
    directory: str,
    interval: float,
    duration: float | None,
    conf_globs: tuple[str, ...],
    logs: tuple[str, ...],
    interfaces: tuple[str, ...],
) -> None:
    """Capture this gateway's WireGuard telemetry into DIRECTORY for `wgsiem replay`.

    Writes <unix-ts>.dump state snapshots, <unix-ts>.<iface>.conf config versions and logs/<name>
    copies of the given logs. Private and preshared keys are written as keyed fingerprints only.
    """
    from wgsiem.pipeline.runtime import install_signal_handlers
    from wgsiem.replay.record import Recorder
    from wgsiem.sources.wg_state.config import WgStateSourceConfig

    rec = Recorder(
        Path(directory),
        interval_secs=interval,
        config_globs=conf_globs,
        logs=tuple(Path(p) for p in logs),
        wg_config=WgStateSourceConfig(interfaces=list(interfaces)),
        hostname=socket.gethostname(),
    )

    async def main() -> Any:
        stop = asyncio.Event()
        install_signal_handlers(asyncio.get_running_loop(), stop)
        click.echo(f"recording into {directory} every {interval:g}s — Ctrl-C to stop", err=True)
        return await rec.run(stop, duration)

    stats = asyncio.run(main())
    click.echo(
        f"recorded {stats.snapshots} snapshot(s), {stats.configs} config version(s), "
        f"{stats.log_bytes} log byte(s) into {directory}",
        err=True,
    )
    for e in stats.errors[:10]:
        click.echo(f"warning: {e}", err=True)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    help="use these source settings and sinks",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="write ECS NDJSON here ('-' = stdout; the default when the config has no sinks)",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="source state for the replay (default: a fresh temporary directory)",
)
@click.option("--quiet", "-q", is_flag=True, help="no progress on stderr")
def replay(
    paths: tuple[str, ...],
    config_path: str | None,
    output: str | None,
    state_dir: str | None,
    quiet: bool,
) -> None:
    """Run the pipeline over captures: .dump snapshot directories, kern.log/syslog, journalctl -o json
    exports, wireguard-go logs, NetFlow/IPFIX pcaps, config snapshots, context NDJSON.

    Event time comes from the data; a week of telemetry replays in seconds.
    """
    from wgsiem.config.loader import load_config
    from wgsiem.pipeline.runtime import Pipeline, install_signal_handlers
    from wgsiem.pipeline.telemetry import TelemetryRegistry
    from wgsiem.replay.driver import ReplaySource, ReplayStats, plan_replay
    from wgsiem.service import build_sinks, build_transforms, tune_gc
    from wgsiem.sinks.ndjson.config import NdjsonSinkConfig

    cfg = load_config(config_path) if config_path else None
    plan = plan_replay([Path(p) for p in paths])
    if not plan.files:
        raise WgsiemError(
            f"no replayable file among {len(plan.unclaimed)} file(s)",
            fix="pass `wgsiem record` directories, <unix-ts>.dump files, kern.log/syslog, journalctl -o json "
            "exports, wireguard-go logs, pcaps of NetFlow/IPFIX or context NDJSON",
        )
    if not quiet:
        kinds = ", ".join(f"{n} {t}" for t, n in plan.counts().items())
        click.echo(f"replaying {len(plan.files)} file(s): {kinds}", err=True)
        for p in plan.unclaimed[:10]:
            click.echo(f"skipped (no source recognises it): {p}", err=True)
    configs: dict[str, Any] = {}
    sink_cfgs: dict[str, Any] = {}
    transform_cfgs: dict[str, Any] = {}
    hostname = socket.gethostname()
    if cfg is not None:
        for sc in cfg.sources.values():
            configs.setdefault(sc.type, sc)
        sink_cfgs = {k: v for k, v in cfg.sinks.items() if v.type != "respond"}
        for k in sorted(set(cfg.sinks) - set(sink_cfgs)):
            # replayed alerts must never block, revoke or rotate anything on this gateway
            click.echo(f"sink {k} (respond) skipped: a replay never runs response actions", err=True)
        transform_cfgs = dict(cfg.transforms)
        hostname = cfg.hostname
    if output or not sink_cfgs:
        sink_cfgs["replay_output"] = NdjsonSinkConfig(type="ndjson", path=output or "-")

    started = time.monotonic()

    def progress(st: ReplayStats, files: int, done: int) -> None:
        if quiet:
            return
        rate = st.records / max(1e-9, time.monotonic() - started)
        click.echo(
            f"\r{'done' if done else 'replay'}: {st.records:,} records ({rate:,.0f}/s), "
            f"{st.events:,} events, {st.bad_records:,} bad",
            err=True,
            nl=bool(done),
        )

    with tempfile.TemporaryDirectory(prefix="wgsiem-replay-") as tmp:
        sdir = Path(state_dir or tmp)
        sdir.mkdir(parents=True, exist_ok=True)
        registry = TelemetryRegistry()
        # Diff and encode wg_state captures in a second process when nothing in this one needs the
        # source's peers or views (the Prometheus exporter does) and no transform edits documents (the
        # worker's encoded lines are then written as they are).
        parallel = not transform_cfgs and all(c.type == "ndjson" for c in sink_cfgs.values())
        # ... and when every one of them writes ECS (the lines as they are), the lines need not even
        # be parsed back into documents here
        lines_only = parallel and all(c.output_schema == "ecs" for c in sink_cfgs.values())
        source = ReplaySource(
            plan,
            configs,
            hostname=hostname,
            state_dir=sdir,
            registry=registry,
            progress=progress,
            worker_process=parallel,
            keep_encoded=parallel,
            lines_only=lines_only,
            # The peers over two differ processes (the merge is exact) where there are two cores: each
            # shard still reads every snapshot, so the three processes need ~35 % more CPU in all, but
            # on two idle cores the week's replay ends ~20 % sooner (docs/performance.md, Replay).
            shards=2 if (os.cpu_count() or 1) >= 2 else 1,
        )
        transforms = build_transforms(
            transform_cfgs, registry, hostname=hostname, state_dir=sdir, peers=source.peers
        )
        sinks = build_sinks(
            sink_cfgs, registry, peers=source.peers, sources=source.sources, hostname=hostname, state_dir=sdir
        )

        for sink in sinks:
            if hasattr(sink, "drain_on_close"):
                sink.drain_on_close = True  # a replay ends by delivering everything, however long it takes
        tune_gc()

        async def main() -> None:
            for sink in sinks:
                await sink.health_check()
            # Ctrl-C / SIGTERM stop the replay gracefully: what was read is delivered, the pending
            # transfers are drained (the worker processes ignore SIGINT and follow this stop)
            stop = asyncio.Event()
            install_signal_handlers(asyncio.get_running_loop(), stop)
            try:
                await Pipeline([source], transforms, sinks, registry).run(stop)
            finally:
                for _tid, t in transforms:
                    close = getattr(t, "close", None)
                    if close is not None:
                        close()

        asyncio.run(main())
    st = source.stats
    if not quiet:
        span = (st.last_time or 0) - (st.first_time or 0)
        click.echo(
            f"replayed {st.records:,} records spanning {span / 3600:.1f} h "
            f"in {time.monotonic() - started:.1f}s: "
            f"{st.events:,} events, {st.bad_records:,} bad record(s)",
            err=True,
        )
        for e in st.errors[:10]:
            click.echo(f"  bad: {e}", err=True)
    if st.bad_records and not st.events:
        sys.exit(1)
