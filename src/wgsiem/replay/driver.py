"""``wgsiem replay``: the live pipeline over captured files, in event-time order.

Every capture file is claimed by the source type whose ``replay_detect`` recognises it (see
:mod:`wgsiem.sources.base`); one instance of each needed source type is built with the configured (or
default) settings, and the files' records are merged by event time — so a kernel line at 12:00:05 is
processed after the state snapshot of 12:00:00 and correlates with the peers as they were then. Nothing
reads the wall clock: a week of telemetry replays in seconds and gives the events the live run gave.

A bad record is counted, reported with its location, and skipped; the records around it are kept.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wgsiem.errors import Location, ParseError, WgsiemError
from wgsiem.event import Envelope
from wgsiem.pipeline.runtime import Emit
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import ReplayItem, SourceContext
from wgsiem.sources.peer_directory import PeerDirectory
from wgsiem.sources.registry import SOURCE_CLASSES, build_source, source_class

__all__ = ["ReplayPlan", "ReplaySource", "ReplayStats", "plan_replay"]

log = logging.getLogger("wgsiem.replay")

HEAD_BYTES = 4096
BATCH_EVENTS = 2000
GC_EVERY_RECORDS = 2000


@dataclass(slots=True)
class ReplayPlan:
    files: list[tuple[Path, str]] = field(default_factory=list)  # (file, source type)
    unclaimed: list[Path] = field(default_factory=list)

    def types(self) -> list[str]:
        return list(dict.fromkeys(t for _, t in self.files))

    def counts(self) -> Counter[str]:
        return Counter(t for _, t in self.files)


def _detectors() -> list[tuple[str, Callable[[Path, bytes], bool]]]:
    out = []
    for name in SOURCE_CLASSES:
        try:
            cls = source_class(name)
        except (ImportError, AttributeError):  # a source without a runtime yet
            continue
        detect = getattr(cls, "replay_detect", None)
        if detect is not None:
            out.append((name, detect))
    return out


def _expand(paths: list[Path]) -> Iterator[Path]:
    for p in paths:
        if not p.exists():
            raise WgsiemError(
                "nothing to replay here: the path does not exist",
                location=Location(str(p)),
                fix="pass capture directories or files written by `wgsiem record` (or raw logs/dumps)",
            )
        if p.is_dir():
            yield from map(Path, _files_under(str(p)))
        else:
            yield p


def _files_under(root: str) -> list[str]:
    """The files below ``root`` in ``sorted(Path(root).rglob("*"))`` order, hidden ones (any part
    starting with ``.``) left out; os.scandir instead of pathlib, which costs seconds for a week of
    10-second captures (60,480 files)."""
    found: list[str] = []
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file():
                    found.append(entry.path)
    found.sort(key=lambda path: path.split(os.sep))  # what ordering Path objects by their parts does
    return found


def _head(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, HEAD_BYTES)
    finally:
        os.close(fd)


def plan_replay(paths: list[Path]) -> ReplayPlan:
    """Which source reads which file. Files no source recognises are listed, not guessed at."""
    plan = ReplayPlan()
    detectors = _detectors()
    for f in _expand(paths):
        head = _head(f)
        for name, detect in detectors:
            if detect(f, head):
                plan.files.append((f, name))
                break
        else:
            plan.unclaimed.append(f)
    return plan


@dataclass(slots=True)
class ReplayStats:
    records: int = 0
    bad_records: int = 0
    events: int = 0
    first_time: float | None = None
    last_time: float | None = None
    errors: list[str] = field(default_factory=list)
    by_type: Counter[str] = field(default_factory=Counter)


class ReplaySource:
    """One pipeline source that drives every replayed source in event-time order."""

    component_type = "replay"

    def __init__(
        self,
        plan: ReplayPlan,
        configs: dict[str, Any],
        *,
        hostname: str,
        state_dir: Path,
        registry: TelemetryRegistry,
        progress: Callable[[ReplayStats, int, int], None] | None = None,
        worker_process: bool = False,
        keep_encoded: bool = False,
        lines_only: bool = False,
        shards: int = 1,
    ) -> None:
        """``worker_process``: when every file is a ``wg_state`` capture, diff and encode them in a
        second process (:mod:`wgsiem.replay.worker`) — the same events, on two cores; the source's
        in-process state (``self.sources``, ``self.peers``) then stays empty. ``keep_encoded``: attach
        each worker line to its envelope as the NDJSON sinks' encoding of it, so it is not encoded
        again; only valid when no transform changes documents. ``lines_only`` (with ``keep_encoded``):
        every sink writes ECS NDJSON and nothing reads documents, so the worker's lines are not parsed
        back into dicts: each envelope's document is a :class:`~wgsiem.replay.document.LineDocument`,
        parsed only if something reads it. ``shards`` (with ``worker_process``): split the peers over
        this many worker processes (:mod:`wgsiem.replay.sharded`) — the same events, merged exactly."""
        self.component_id = "replay"
        self.worker_process = worker_process
        self.keep_encoded = keep_encoded
        self.lines_only = lines_only and keep_encoded
        self.shards = max(1, shards)
        self.hostname = hostname
        self.state_dir = state_dir
        self.plan = plan
        self.telemetry = registry.register("replay", "source", "replay")
        self.peers = PeerDirectory()
        self.stats = ReplayStats()
        self.progress = progress
        self.sources: dict[str, Any] = {}
        # wg_state first: the others correlate with the peers it publishes
        for name in sorted(plan.types(), key=lambda t: t != "wg_state"):
            cfg = configs.get(name)
            if cfg is None:
                from wgsiem.config.model import SOURCE_CONFIGS

                cfg = next(c for c in SOURCE_CONFIGS if c.model_fields["type"].default == name)()
            tel = registry.register(f"replay.{name}", "source", name)
            ctx = SourceContext(
                hostname=hostname, state_dir=state_dir, telemetry=tel, peers=self.peers, replay=True
            )
            self.sources[name] = build_source(f"replay.{name}", cfg, ctx)

    def _items(self) -> Iterator[tuple[ReplayItem, str]]:
        seq = itertools.count()

        def tagged(path: Path, name: str) -> Iterator[tuple[float, int, ReplayItem, str]]:
            reader = source_class(name).replay_read
            for item in reader(path):
                yield (item.time, next(seq), item, name)

        streams = [tagged(p, n) for p, n in self.plan.files]
        for _t, _s, item, name in heapq.merge(*streams, key=lambda x: (x[0], x[1])):
            yield item, name

    async def run(self, emit: Emit, stop: Any) -> None:
        # Replay makes documents as fast as the sinks take them, so the pipeline's queue holds ~10,000
        # of them (~250,000 container objects): every full pass of the cyclic GC walks all of them, and
        # those passes cost as much as the replay itself. The documents are acyclic (freed by reference
        # counting), so automatic collection is off while replaying; a young-generation pass every
        # GC_EVERY_RECORDS records still reclaims the odd cycle (asyncio's), and the caller's GC
        # settings come back at the end.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            await self._run(emit, stop)
        finally:
            if was_enabled:
                gc.enable()

    def _uses_worker(self) -> bool:
        return self.worker_process and self.plan.types() == ["wg_state"]

    async def _run(self, emit: Emit, stop: Any) -> None:
        if self._uses_worker():
            from wgsiem.replay.worker import run_parallel

            await run_parallel(self, emit, stop)
            return
        st = self.stats
        batch: list[Envelope] = []
        total = len(self.plan.files)
        last_report = time.monotonic()
        # sources with a timer in the live loop (config_watch's drift check) run it in event time
        tickers = [
            (n, fn)
            for n, src in self.sources.items()
            if (fn := getattr(src, "replay_tick", None)) is not None
        ]
        for item, name in self._items():
            if stop.is_set():
                break
            st.records += 1
            self.telemetry.received += 1
            if st.records % GC_EVERY_RECORDS == 0:
                gc.collect(1)
            if isinstance(item.payload, ParseError):
                st.bad_records += 1
                self.telemetry.error("parse", name, item.payload.render())
                if len(st.errors) < 20:
                    st.errors.append(item.payload.render())
                continue
            if st.first_time is None:
                st.first_time = item.time
            st.last_time = max(st.last_time or item.time, item.time)
            try:
                envs = self.sources[name].process(item.payload, item.time)
            except WgsiemError as exc:
                st.bad_records += 1
                msg = f"{item.location}: {exc.render()}"
                self.telemetry.error("process", name, msg)
                if len(st.errors) < 20:
                    st.errors.append(msg)
                continue
            if envs:
                st.by_type[name] += len(envs)
                batch.extend(envs)
            for tick_name, tick in tickers:
                ticked = tick(item.time)
                if ticked:
                    st.by_type[tick_name] += len(ticked)
                    batch.extend(ticked)
            if len(batch) >= BATCH_EVENTS:
                await self._emit(emit, batch)
                batch = []
            if self.progress is not None and time.monotonic() - last_report >= 1.0:
                self.progress(st, total, 0)
                last_report = time.monotonic()
        for src in self.sources.values():
            drain = getattr(src, "drain", None)
            if drain is not None:
                batch.extend(drain())
        if batch:
            await self._emit(emit, batch)
        if self.progress is not None:
            self.progress(st, total, 1)

    def ordered_payloads(self) -> list[tuple[float, Any]]:
        """Every record's (time, payload) in the order the replay processes them."""
        return [(item.time, item.payload) for item, _ in self._items()]

    async def _emit(self, emit: Emit, batch: list[Envelope]) -> None:
        self.stats.events += len(batch)
        self.telemetry.sent += len(batch)
        await emit(batch)
