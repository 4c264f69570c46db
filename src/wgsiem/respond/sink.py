"""``type: respond`` — the sink that turns alerts into governed, audited responses.

It takes every event, acts on those with ``event.kind == "alert"`` (the rest are accepted and
ignored), and batches for only ``batch_max_wait_secs`` so that an automatic tier-1 containment lands
within one poll interval of the detection. Alongside the pipeline it runs the engine's poller
(approvals from the CLI or API, undo requests, expiries) and, when configured, the SOAR API; its
``as_source()`` emits each audit record as an event (``<id>.events``, dataset ``wireguard.respond``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from wgsiem.errors import WgsiemError
from wgsiem.event import Envelope
from wgsiem.pipeline.telemetry import ComponentTelemetry
from wgsiem.sinks.registry import SinkContext

from .config import RespondSinkConfig
from .engine import Engine
from .events import RespondEventsSource

__all__ = ["RespondSink"]


class RespondSink:
    component_type = "respond"

    def __init__(
        self, cfg: RespondSinkConfig, engine: Engine, telemetry: ComponentTelemetry, ctx: SinkContext
    ) -> None:
        self.cfg = cfg
        self.engine = engine
        self.telemetry = telemetry
        self.component_id = ctx.component_id
        self.batch_max_wait_secs = cfg.batch_max_wait_secs
        self.batch_max_events = 100
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._api: Any = None
        self._events = RespondEventsSource(
            f"{ctx.component_id}.events",
            engine.paths.audit,
            ctx.state_dir / f"respond-events.{ctx.component_id}.pos",
            ctx.hostname,
            self._wakeup,
        )
        engine.on_record = lambda _rec: self._wakeup.set()

    @classmethod
    def build(cls, cfg: RespondSinkConfig, ctx: SinkContext) -> RespondSink:
        telemetry = ctx.registry.register(ctx.component_id, "sink", "respond")
        engine = Engine(cfg, state_dir=ctx.state_dir, hostname=ctx.hostname)
        return cls(cfg, engine, telemetry, ctx)

    def provide_recent_events(self, query: Any) -> None:
        """The service's store query ``(target, limit) -> list[doc]`` for incident snapshots, used
        unless ``settings.recent_events`` is configured."""
        self.engine.settings_extra["recent_events"] = query

    def as_source(self) -> RespondEventsSource:
        return self._events

    async def health_check(self) -> None:
        try:
            self.engine.store.db.execute("SELECT 1").fetchone()
        except Exception as exc:
            raise WgsiemError(
                f"respond state database unusable: {exc}", fix="check the state directory"
            ) from exc
        if not self.engine.playbooks:
            raise WgsiemError("no playbook loaded", fix="enable builtin_playbooks or set playbook_dirs")

    async def start(self) -> None:
        await self.engine.recover()
        self._poller = asyncio.create_task(self.engine.run_poller(self._stop))
        if self.cfg.api is not None:
            from .api import RespondApi

            self._api = RespondApi(self.engine, self.cfg.api)
            await self._api.start()

    async def write(self, batch: list[Envelope]) -> None:
        for env in batch:
            event = env.data.get("event")
            if isinstance(event, dict) and event.get("kind") == "alert":
                try:
                    await self.engine.handle_alert(env.data)
                except Exception as exc:  # one bad alert never stops the others (counted, audited)
                    self.telemetry.error(type(exc).__name__, "respond", str(exc))
                    self.telemetry.drop("respond_failed")

    async def flush(self) -> None:
        self.engine.audit.maybe_write_head()

    async def close(self) -> None:
        self._stop.set()
        if self._poller is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._api is not None:
            await self._api.stop()
        closer = getattr(self.engine.executor, "close", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
        self.engine.close()

    def status(self) -> dict[str, Any]:
        return {
            **dict(self.engine.counters),
            "kill_switch": self.engine.kill_switch_on(),
            "dry_run": self.cfg.dry_run,
            "playbooks": sorted(self.engine.playbooks),
            "api": self._api.url if self._api is not None else None,
        }
