"""``wgsiem run``: build the configured components, run the pipeline and the local API, stop cleanly.

One process on one gateway: sources → transforms → sinks (the embedded store always among them), plus the
local API on a unix socket for the read commands. SIGTERM/SIGINT stop the sources, drain every queue,
flush every sink and persist source state before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from pathlib import Path
from typing import Any

from wgsiem.api.server import ApiServer
from wgsiem.config.model import Config
from wgsiem.enrich.base import TransformContext
from wgsiem.enrich.registry import build_transform, fuse_transforms
from wgsiem.errors import Location, StoreError, WgsiemError
from wgsiem.pipeline.runtime import Pipeline, install_signal_handlers
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.duckdb_store.config import DuckdbStoreConfig
from wgsiem.sinks.duckdb_store.sink import DuckdbStoreSink
from wgsiem.sinks.duckdb_store.store import Store, open_readonly
from wgsiem.sinks.ndjson.config import NdjsonSinkConfig
from wgsiem.sinks.ndjson.sink import NdjsonSink
from wgsiem.sinks.prometheus_exporter.config import PrometheusExporterConfig
from wgsiem.sinks.registry import SINK_CLASSES, SinkContext, build_sink
from wgsiem.sources.base import SourceContext
from wgsiem.sources.peer_directory import PeerDirectory
from wgsiem.sources.registry import build_source

__all__ = ["Service", "build_sinks", "query_store", "run_service", "tune_gc"]

log = logging.getLogger("wgsiem")


def _f(params: dict[str, Any], name: str) -> float | None:
    v = params.get(name)
    return float(v) if v not in (None, "") else None


def query_store(path: Path | Store, name: str, params: dict[str, Any]) -> Any:
    """Answer a read command from a store (the live one, or a file opened read-only)."""
    store = path if isinstance(path, Store) else open_readonly(path)
    try:
        if name == "peers":
            rows = store.query_peers(params.get("interface") or None)
            for r in rows:
                r["connected"] = bool(r.get("session_open"))
            return rows
        if name == "sessions":
            return store.query_sessions(
                _f(params, "since") or 0.0,
                peer=params.get("peer") or None,
                open_only=str(params.get("open", "0")) in ("1", "true"),
            )
        if name == "events":
            limit = int(params.get("limit") or 1000)
            after = params.get("after")
            tail = params.get("tail")
            if tail is not None and after is None:
                return store.query_events(action=params.get("action") or None, tail=int(tail))
            return store.query_events(
                since_epoch=_f(params, "since"),
                after_rowid=int(after) if after not in (None, "") else None,
                action=params.get("action") or None,
                limit=limit,
            )
        if name == "status":
            return {"running": False, "store": store.counts(), "components": [], "sources": {}}
        raise KeyError(f"unknown query {name}")
    finally:
        if not isinstance(path, Store):
            store.close()


def _open_store_sink(
    cfg: DuckdbStoreConfig, registry: TelemetryRegistry, component_id: str, wait_secs: float = 15.0
) -> DuckdbStoreSink:
    """Open the store, waiting out read-only readers (a `wgsiem peers` run while nothing served the
    API holds a shared lock for a moment); a lock still held after ``wait_secs`` is a real conflict."""
    deadline = time.monotonic() + wait_secs
    while True:
        try:
            return DuckdbStoreSink.build(cfg, registry, component_id=component_id)
        except StoreError as exc:
            if "lock" not in exc.what.lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def build_transforms(
    transform_cfgs: dict[str, Any],
    registry: TelemetryRegistry,
    *,
    hostname: str,
    state_dir: Path,
    peers: PeerDirectory,
    fuse: bool = True,
) -> list[tuple[str, Any]]:
    """Every configured transform, built in declared order (shared by ``run`` and ``replay``).

    With ``fuse`` (the default), a run of geo → identity → assets → risk becomes one pass over each
    event with byte-identical output (:mod:`wgsiem.enrich.fused_chain`, docs/enrich/caching.md)."""
    out: list[tuple[str, Any]] = []
    for tid, tcfg in transform_cfgs.items():
        tel = registry.register(tid, "transform", tcfg.type)
        tctx = TransformContext(hostname=hostname, state_dir=state_dir, telemetry=tel, peers=peers)
        out.append((tid, build_transform(tid, tcfg, tctx)))
    return fuse_transforms(out) if fuse else out


def sink_sources(sinks: list[Any]) -> list[Any]:
    """Sinks that also emit events (the ``respond`` sink's action results) expose ``as_source()``;
    the returned source (its own ``component_id``, e.g. ``<sink id>.events``) joins the pipeline."""
    return [k.as_source() for k in sinks if hasattr(k, "as_source")]


def build_sinks(
    sink_cfgs: dict[str, Any],
    registry: TelemetryRegistry,
    *,
    peers: PeerDirectory,
    sources: dict[str, Any],
    hostname: str,
    state_dir: Path,
) -> list[Any]:
    """Every configured sink, built (I/O happens here; health checks come later)."""
    sinks: list[Any] = []
    for kid, kcfg in sink_cfgs.items():
        if isinstance(kcfg, NdjsonSinkConfig):
            sinks.append(NdjsonSink.build(kcfg, registry, component_id=kid))
        elif isinstance(kcfg, DuckdbStoreConfig):
            sinks.append(_open_store_sink(kcfg, registry, kid))
        elif isinstance(kcfg, PrometheusExporterConfig):
            from wgsiem.sinks.prometheus_exporter.sink import PrometheusExporterSink

            sinks.append(
                PrometheusExporterSink.build(kcfg, registry, component_id=kid, peers=peers, sources=sources)
            )
        elif kcfg.type in SINK_CLASSES:
            ctx = SinkContext(registry, kid, hostname, state_dir, peers, sources)
            sinks.append(build_sink(kcfg, ctx))
        else:  # pragma: no cover - the config model admits only the types above
            raise WgsiemError(f"sink {kid}: unsupported type {kcfg.type}")
    return sinks


class Service:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.state_dir = Path(cfg.state_dir)
        self.registry = TelemetryRegistry()
        self.peers = PeerDirectory()
        self.sources: dict[str, Any] = {}
        self.sinks: list[Any] = []
        self.transforms: list[tuple[str, Any]] = []
        self.store_sink: DuckdbStoreSink | None = None
        self.started_at = time.time()

    def build(self) -> None:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.state_dir, 0o700)
        except OSError as exc:
            raise WgsiemError(
                f"cannot use the state directory: {exc.strerror}",
                location=Location(str(self.state_dir)),
                fix="run wgsiem as root (reading WireGuard state needs it) or pass --state-dir DIR",
            ) from exc
        # wg_state first: the other sources correlate with the peers it publishes
        ordered = sorted(self.cfg.sources.items(), key=lambda kv: kv[1].type != "wg_state")
        for sid, scfg in ordered:
            tel = self.registry.register(sid, "source", scfg.type)
            ctx = SourceContext(
                hostname=self.cfg.hostname, state_dir=self.state_dir, telemetry=tel, peers=self.peers
            )
            self.sources[sid] = build_source(sid, scfg, ctx)
        self.transforms = build_transforms(
            self.cfg.transforms,
            self.registry,
            hostname=self.cfg.hostname,
            state_dir=self.state_dir,
            peers=self.peers,
        )
        self.sinks = build_sinks(
            self.cfg.sinks,
            self.registry,
            peers=self.peers,
            sources=self.sources,
            hostname=self.cfg.hostname,
            state_dir=self.state_dir,
        )
        self.store_sink = next((k for k in self.sinks if isinstance(k, DuckdbStoreSink)), None)
        for src in sink_sources(self.sinks):
            self.sources[src.component_id] = src
        if self.store_sink is not None:
            for k in self.sinks:
                if hasattr(k, "provide_recent_events"):
                    k.provide_recent_events(self._recent_events)

    async def _recent_events(self, target: Any, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` stored events about an incident's peer or endpoint (for snapshots)."""
        store_sink = self.store_sink
        peer = getattr(target, "peer_public_key", None)
        ip = getattr(target, "endpoint_ip", None)
        if store_sink is None or (peer is None and ip is None):
            return []
        rows = await asyncio.to_thread(
            lambda: store_sink.reader().query_events(tail=limit, peer_key=peer, source_ip=ip)
        )
        return [r["doc"] for r in rows]

    # ---------------------------------------------------------------- local API
    def _handlers(self) -> dict[str, Any]:
        async def status(_p: dict[str, str]) -> Any:
            out: dict[str, Any] = {
                "running": True,
                "pid": os.getpid(),
                "started_at": self.started_at,
                "components": self.registry.snapshot(),
                "sources": {k: s.status() for k, s in self.sources.items() if hasattr(s, "status")},
                "transforms": {k: t.status() for k, t in self.transforms if hasattr(t, "status")},
                "sinks": {k.component_id: k.status() for k in self.sinks if hasattr(k, "status")},
            }
            if self.store_sink is not None:
                out["store"] = await self._store_query("status", {})
                out["store"] = out["store"]["store"]
            return out

        async def peers(p: dict[str, str]) -> Any:
            live = [row for s in self._wg_sources() for row in s.peers_view()]
            if p.get("interface"):
                live = [r for r in live if r["interface"] == p["interface"]]
            return sorted(live, key=lambda r: (r["interface"], r["public_key"]))

        async def sessions(p: dict[str, str]) -> Any:
            rows = await self._store_query("sessions", p)
            # open sessions: the store has bytes as of the last transfer event; the source knows them now
            live = {sid: v for s in self._wg_sources() for sid, v in s.open_sessions_view().items()}
            for r in rows:
                if r.get("end") is None and r.get("session_id") in live:
                    r.update(live[r["session_id"]])
            return rows

        async def events(p: dict[str, str]) -> Any:
            return await self._store_query("events", p)

        return {"status": status, "peers": peers, "sessions": sessions, "events": events}

    def _wg_sources(self) -> list[Any]:
        return [s for s in self.sources.values() if hasattr(s, "peers_view")]

    async def _store_query(self, name: str, params: dict[str, Any]) -> Any:
        if self.store_sink is None:
            raise KeyError("no embedded store configured")
        if name in ("sessions", "peers", "status"):
            await self.store_sink.refresh()  # fold pending events so the derived tables are current
        store = self.store_sink.store
        return await asyncio.to_thread(query_store, store.reader(), name, params)

    # ---------------------------------------------------------------- run
    async def run(self, stop: asyncio.Event, live: bool = False) -> None:
        for sink in self.sinks:
            try:
                await sink.health_check()
            except WgsiemError as exc:
                if not getattr(sink, "start_when_unhealthy", False):
                    raise
                # an outbox sink buffers on disk until the destination answers: start, and say so
                sink.telemetry.error(type(exc).__name__, "health_check", str(exc))
                log.error(
                    "sink %s is not healthy at start, buffering in its outbox until it is: %s",
                    sink.component_id,
                    exc.render().replace("\n", "; "),
                )
        pipeline = Pipeline(
            list(self.sources.values()),
            self.transforms,
            self.sinks,
            self.registry,
            queue_max_events=self.cfg.pipeline.queue_max_events,
            batch_max_events=self.cfg.pipeline.batch_max_events,
            batch_max_wait_secs=self.cfg.pipeline.batch_max_wait_secs,
        )
        api = ApiServer(self.cfg.api_socket, self._handlers())
        await api.start()
        log.info(
            "wgsiem running: %d source(s), %d sink(s), API on %s",
            len(self.sources),
            len(self.sinks),
            self.cfg.api_socket,
        )
        live_task = asyncio.create_task(self._live(stop)) if live else None
        try:
            await pipeline.run(stop)
        finally:
            if live_task is not None:
                live_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await live_task
            await api.stop()
            for _tid, t in self.transforms:
                close = getattr(t, "close", None)
                if close is not None:
                    close()
        log.info("wgsiem stopped: every buffer flushed, state saved")

    async def _live(self, stop: asyncio.Event) -> None:
        from rich.live import Live

        from wgsiem.cli.views import peers_table

        with Live(peers_table([]), refresh_per_second=2, screen=False) as lv:
            while not stop.is_set():
                rows = [row for s in self._wg_sources() for row in s.peers_view()]
                lv.update(peers_table(rows))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)


def tune_gc() -> None:
    """Fewer, cheaper cyclic-GC passes for a long-running event pipeline.

    Every event is a tree of small dicts; with the default gen-0 threshold (700) the collector runs
    every few events and re-walks everything alive. What exists after the build (configs, databases,
    tables) is frozen out of collection, and gen 0 collects every 50,000 allocations: measured, this
    roughly triples the rate of the enrichment chain (bench/bench_enrich.py) and costs a few MB.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def run_service(cfg: Config, live: bool = False) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    svc = Service(cfg)
    svc.build()
    tune_gc()

    async def _main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(asyncio.get_running_loop(), stop)
        await svc.run(stop, live=live)

    asyncio.run(_main())
