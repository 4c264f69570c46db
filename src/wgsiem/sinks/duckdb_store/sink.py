"""The async sink around :class:`~.store.Store`: DuckDB work in a worker thread, retention on a timer.

Why: DuckDB calls block (they release the GIL while they run), so each goes through
``asyncio.to_thread``; an ``asyncio.Lock`` serializes them, because one DuckDB connection must not be
used by two threads at once. The pipeline's flush (about once a second) folds pending events into
``sessions``/``peers``, which bounds how stale those tables can look to a :meth:`reader`.

Each document is serialized once per process: the sink takes the NDJSON line the NDJSON encoder
memoized on the envelope (or makes it), and the store keeps exactly those bytes (in its compressed
document segments, see ``segments``).

Telemetry: events the store already held are dropped with reason "duplicate"; documents it rejects
with their reason ("missing_event_id", "unserializable", "too_large"). A database failure raises, and
the pipeline retries the batch (safe: the batch is one transaction and ``event.id`` de-duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from wgsiem.event import Envelope
from wgsiem.pipeline.telemetry import ComponentTelemetry, TelemetryRegistry
from wgsiem.sinks.ndjson.encoder import EncodeError, encode

from .config import DuckdbStoreConfig
from .store import INGEST_BATCH_EVENTS, IngestResult, RetentionResult, Store

__all__ = ["DuckdbStoreSink"]

log = logging.getLogger(__name__)


class DuckdbStoreSink:
    """Stores every event in the embedded DuckDB store."""

    component_type = "duckdb"

    def __init__(
        self,
        config: DuckdbStoreConfig,
        store: Store,
        telemetry: ComponentTelemetry,
        *,
        component_id: str,
        batch_max_events: int = INGEST_BATCH_EVENTS,
        retention_interval_secs: float = 3600.0,
        fold_interval_secs: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Prefer :meth:`build`, which opens the store."""
        self.config = config
        self.store = store
        self.telemetry = telemetry
        self.component_id = component_id
        # Each ingest pays a fixed planning cost in DuckDB; larger batches amortize it (see schema), and
        # batches of whole row groups skip the WAL (see store.ROW_GROUP_ROWS).
        self.batch_max_events = batch_max_events
        self.retention_interval_secs = retention_interval_secs
        self.fold_interval_secs = fold_interval_secs
        self._last_fold = time.monotonic()
        self.defaulted_ts = 0
        """Events stored with the ingest time because their ``@timestamp`` was missing or unparsable."""
        self.last_retention: RetentionResult | None = None
        self._clock = clock
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None

    @classmethod
    def build(
        cls,
        config: DuckdbStoreConfig,
        registry: TelemetryRegistry,
        *,
        component_id: str = "store",
        batch_max_events: int = INGEST_BATCH_EVENTS,
        retention_interval_secs: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> DuckdbStoreSink:
        """Register telemetry and open (or create) the store; raises ``StoreError`` with a fix."""
        store = Store.open(config.path, retention_days=config.retention_days)
        tel = registry.register(component_id, "sink", cls.component_type)
        return cls(
            config,
            store,
            tel,
            component_id=component_id,
            batch_max_events=batch_max_events,
            retention_interval_secs=retention_interval_secs,
            clock=clock,
        )

    def reader(self) -> Store:
        """A read-only handle for another thread of this process (the web API)."""
        return self.store.reader()

    async def start(self) -> None:
        """Enforce retention now, then every ``retention_interval_secs``."""
        await self.enforce_retention()
        self._timer = asyncio.get_running_loop().create_task(self._retention_timer(), name="store:retention")

    async def _retention_timer(self) -> None:
        while True:
            await asyncio.sleep(self.retention_interval_secs)
            await self.enforce_retention()

    async def enforce_retention(self) -> RetentionResult | None:
        """Delete what is older than ``retention_days``, then checkpoint; failures counted ("retention")."""
        try:
            async with self._lock:
                result = await asyncio.to_thread(self.store.enforce_retention, self._clock())
                await asyncio.to_thread(self.store.checkpoint)
        except Exception as exc:
            self.telemetry.error(type(exc).__name__, "retention", str(exc))
            log.error("store retention failed: %s", exc)
            return None
        self.last_retention = result
        if result.events or result.sessions or result.peers:
            log.info(
                "retention removed %d events, %d sessions, %d peers older than %s (%d document segments)",
                result.events,
                result.sessions,
                result.peers,
                result.cutoff.isoformat(),
                result.segments,
            )
        return result

    async def write(self, batch: list[Envelope]) -> None:
        async with self._lock:
            result = await asyncio.to_thread(self._ingest, batch)
        tel = self.telemetry
        if result.duplicates:
            tel.drop("duplicate", result.duplicates)
        for reason, n in result.rejected.items():
            tel.drop(reason, n)
        self.defaulted_ts += result.defaulted_ts

    def _ingest(self, batch: list[Envelope]) -> IngestResult:
        return self.store.ingest_encoded(map(_encoded, batch))

    async def flush(self) -> None:
        """Fold pending events into ``sessions``/``peers`` at most every ``fold_interval_secs``.

        Each ingest is already committed; folding is derived work. The pipeline flushes every second,
        and folding that often costs more per event than the insert itself under load, so readers that
        need the derived tables up to date call :meth:`refresh` instead.
        """
        if time.monotonic() - self._last_fold < self.fold_interval_secs:
            return
        await self.refresh()

    async def refresh(self) -> None:
        """Fold every pending event now (before a read of ``sessions``/``peers``)."""
        async with self._lock:
            await asyncio.to_thread(self.store.derive)
            self._last_fold = time.monotonic()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        async with self._lock:
            await asyncio.to_thread(self.store.close)

    async def health_check(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self.store.health_check)


def _encoded(env: Envelope) -> tuple[dict[str, Any], bytes | None]:
    try:
        return env.data, encode(env)  # memoized: the NDJSON sink may have encoded it already
    except EncodeError:
        return env.data, None  # the store tries itself, and counts it as "unserializable"
