"""``OutboxSink``: the pipeline-facing half of every network sink (see :mod:`.contract`).

``write`` appends the batch to the disk queue (:mod:`.queue`) and returns; a background task reads the
queue in order, hands ``batch_max_events`` records at a time to the deliverer, and acknowledges them
on disk only once the deliverer accounted for every one (delivered, or parked as rejected): at-least-once.

Telemetry of an outbox sink (documented in ``docs/sinks/outbox.md``):

* ``received`` — events the pipeline handed to ``write`` (this process);
* ``sent`` — events the destination **accepted** (delivered), including records carried over on
  disk from a previous run. The sink sets ``counts_own_sent = True`` so the pipeline does not count a
  successful ``write`` as sent; the delivery loop adds each record when it is delivered;
* ``dropped`` — ``outbox_overflow`` (drop_newest / drop_oldest), ``rejected`` (parked),
  ``outbox_corrupt`` (lost to damage found while reading back), ``unencodable``.

So at any time ``received + carried_over == sent + sum(dropped) + queued`` (``carried_over`` and
``queued`` are in ``status()["outbox"]``); records still queued at a stop stay on disk and are
``carried_over`` at the next start. Once the outbox is drained this is the pipeline's
``received == sent + sum(dropped)`` plus what the previous run left.

Retries never give up while running: the outbox *is* the buffer. Backoff is exponential with "equal
jitter" (a delay in [d/2, d]), capped at ``retry_max_backoff_secs``; a server's ``Retry-After`` wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import orjson

from wgsiem.errors import WgsiemError
from wgsiem.event import Envelope
from wgsiem.sinks.ndjson.encoder import EncodeError, encode
from wgsiem.sinks.registry import SinkContext

from .config import OutboxConfig
from .contract import Deliverer, DeliveryReport, RetryableDeliveryError
from .queue import DamageReport, SegmentQueue, Stored
from .segment import HEADER, encode_payload

__all__ = ["OutboxSink", "event_id_of"]

log = logging.getLogger(__name__)

_PARKED = "parked.ndjson"
_MAX_RETRY_AFTER_SECS = 600.0


def event_id_of(doc: dict[str, Any], line: bytes) -> str:
    """The document's ``event.id``; else a digest of its JSON (deterministic, so a replay matches)."""
    ev = doc.get("event")
    if isinstance(ev, dict):
        eid = ev.get("id")
        if isinstance(eid, str) and eid:
            return eid
    return hashlib.blake2b(line, digest_size=16).hexdigest()


class OutboxSink:
    """A :class:`~wgsiem.pipeline.runtime.Sink` that buffers on disk and delivers in the background."""

    def __init__(
        self, ctx: SinkContext, *, component_type: str, config: OutboxConfig, deliverer: Deliverer
    ) -> None:
        self.component_id = ctx.component_id
        self.component_type = component_type
        self.counts_own_sent = True
        self.start_when_unhealthy = config.start_when_unhealthy
        self.drain_on_close = False
        """When set (``wgsiem replay``: a finite run whose state directory may be temporary), ``close``
        waits until every queued record is delivered or parked, retrying as long as it takes."""
        self.config = config
        self.deliverer = deliverer
        self.telemetry = ctx.registry.register(ctx.component_id, "sink", component_type)
        self.directory = (
            Path(config.directory) if config.directory else Path(ctx.state_dir) / "outbox" / ctx.component_id
        )
        self.queue = SegmentQueue(
            self.directory,
            max_bytes=config.max_bytes,
            segment_max_bytes=config.segment_max_bytes,
            fsync=config.fsync == "batch",
            cache_max=max(10_000, 4 * config.batch_max_events),
        )
        self._damage_seen = 0
        self._lost_reported = 0
        self.queue.open()
        self._account_damage("recover")
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._progress = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._deliverer_started = False
        # facts for status()
        self.accepted = 0
        self.delivered = 0
        self.parked = 0
        self.overflow_dropped = 0
        self.retries = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_delivery_at: float | None = None
        self._failing_since: float | None = None
        self._next_retry_at: float | None = None
        self._overflow_episode = 0
        self._blocked_since: float | None = None
        self._inflight_head_ms: int | None = None
        self._recovering: dict[str, float] | None = None
        self.recovery: dict[str, float] | None = None
        self._update_gauges()

    # ---- lifecycle ----------------------------------------------------------------------------------

    async def _start_deliverer(self) -> None:
        if not self._deliverer_started:
            await self.deliverer.start()
            self._deliverer_started = True

    async def start(self) -> None:
        """Open the deliverer's connections and start delivering (also what was left from a previous run)."""
        await self._start_deliverer()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._deliver_loop(), name=f"outbox:{self.component_id}"
            )
            if self.queue.carried_over:
                log.info(
                    "sink %s: %d undelivered event(s) from a previous run in %s",
                    self.component_id,
                    self.queue.carried_over,
                    self.directory,
                )

    async def health_check(self) -> None:
        """The deliverer's real request (its connections are opened first: the service checks every
        sink before the pipeline calls :meth:`start`). On failure the connections are released again."""
        await self._start_deliverer()
        try:
            await self.deliverer.health_check()
        except BaseException:
            if self._task is None:
                self._deliverer_started = False
                with contextlib.suppress(Exception):
                    await self.deliverer.close()
            raise

    async def flush(self) -> None:
        """Wait (at most ``flush_timeout_secs``) until the records written so far are delivered.

        The pipeline calls this every second while events flow, so it waits only for a *tail* (at
        most two delivery batches): an old backlog drains in the background and must not pace the
        sources. It returns at once while the destination is failing. Durability never depends on
        this wait — records are on disk from ``write`` on. :meth:`close` drains the rest.
        """
        await self._drain(tail_only=True)

    async def _drain(self, *, tail_only: bool) -> None:
        if self._task is None or self._task.done():
            return
        target = self.queue.next_seq - 1
        loop = asyncio.get_running_loop()
        full = self.drain_on_close and not tail_only
        deadline = loop.time() + (math.inf if full else self.config.flush_timeout_secs)
        if full and self.queue.queued:
            log.info(
                "sink %s: delivering %d queued event(s) before stopping", self.component_id, self.queue.queued
            )
        while self.queue.acked_seq < target and self.queue.queued > 0:
            if self._failing_since is not None and not full:
                return
            if tail_only and self.queue.queued > 2 * self.config.batch_max_events:
                return
            left = deadline - loop.time()
            if left <= 0:
                return
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if full else left):
                    await self._progress.wait()

    async def close(self) -> None:
        """Deliver what can be delivered within ``flush_timeout_secs`` (not while the destination is
        failing), then stop; undelivered records stay on disk for the next start."""
        await self._drain(tail_only=False)
        self._stopping.set()
        self._wake.set()
        self._space.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._deliverer_started:
            try:
                await self.deliverer.close()
            finally:
                self._deliverer_started = False
        self.queue.close()
        if self.queue.queued:
            log.info(
                "sink %s: %d undelivered event(s) kept in %s for the next start",
                self.component_id,
                self.queue.queued,
                self.directory,
            )

    # ---- write --------------------------------------------------------------------------------------

    def _encode(self, batch: list[Envelope]) -> list[tuple[str, dict[str, Any], bytes]]:
        items: list[tuple[str, dict[str, Any], bytes]] = []
        for env in batch:
            try:
                line = encode(env)
            except EncodeError as exc:
                self.telemetry.error("EncodeError", "encode", str(exc))
                self.telemetry.drop("unencodable")
                continue
            doc_json = line[:-1]
            eid = event_id_of(env.data, doc_json)
            items.append((eid, env.data, encode_payload(eid, doc_json)))
        return items

    async def write(self, batch: list[Envelope]) -> None:
        async with self._write_lock:
            items = self._encode(batch)
            accepted = 0
            i = 0
            while i < len(items):
                q = self.queue
                free = q.free_bytes()
                take, size = i, 0
                while take < len(items) and size + HEADER + len(items[take][2]) <= free:
                    size += HEADER + len(items[take][2])
                    take += 1
                if take == i and q.queued == 0 and q.disk_bytes == 0:
                    take = i + 1  # one record larger than the whole outbox: accept it rather than stall
                if take > i:
                    await q.append(items[i:take])
                    accepted += take - i
                    i = take
                    self._wake.set()
                    continue
                # full: apply the overflow policy to items[i:]
                if self._stopping.is_set():
                    raise WgsiemError("outbox closed while a write waited for space")
                q.release_space()
                if q.free_bytes() != free:
                    continue
                rest = items[i:]
                need = sum(HEADER + len(p) for _, _, p in rest)
                policy = self.config.overflow
                if policy == "block":
                    self._overflow_started("blocking the pipeline until the destination takes events")
                    if self._blocked_since is None:
                        self._blocked_since = time.time()
                    self._space.clear()
                    await self._space.wait()
                    continue
                if policy == "drop_oldest":
                    lost = q.drop_oldest(min(need, q.max_bytes))
                    if lost:
                        self._overflow_drop(lost, "dropped the oldest undelivered segment(s)")
                    if q.free_bytes() != free:
                        continue
                self._overflow_drop(len(rest), "dropped incoming events")
                break
            if i == len(items) and self._overflow_episode == 0 and self._blocked_since is not None:
                log.warning(
                    "sink %s: outbox has room again after blocking %.1fs",
                    self.component_id,
                    time.time() - self._blocked_since,
                )
                self._blocked_since = None
            self.accepted += accepted
            self._update_gauges()
            q = self.queue
            if self._overflow_episode and q.free_bytes() > q.max_bytes // 4:
                log.warning(
                    "sink %s: outbox overflow episode over: %d event(s) dropped (%s)",
                    self.component_id,
                    self._overflow_episode,
                    self.config.overflow,
                )
                self._overflow_episode = 0

    def _overflow_started(self, what: str) -> None:
        if self._blocked_since is None:
            log.warning(
                "sink %s: outbox full (%d bytes, %d events): %s",
                self.component_id,
                self.queue.disk_bytes,
                self.queue.queued,
                what,
            )
            self.telemetry.error("OutboxFull", "write", f"outbox full: {what}")

    def _overflow_drop(self, n: int, what: str) -> None:
        if n <= 0:
            return
        if self._overflow_episode == 0:
            log.warning(
                "sink %s: outbox full (%d bytes, %d events): %s (overflow: %s); logged once per episode",
                self.component_id,
                self.queue.disk_bytes,
                self.queue.queued,
                what,
                self.config.overflow,
            )
            self.telemetry.error("OutboxFull", "write", f"outbox full: {what}")
        self._overflow_episode += n
        self.overflow_dropped += n
        self.telemetry.drop("outbox_overflow", n)

    # ---- delivery -----------------------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        backoff = self.config.retry_initial_backoff_secs
        size = self.config.batch_max_events
        while not self._stopping.is_set():
            self._wake.clear()  # before reading: a write landing during the read sets it again
            batch = await self.queue.read(size)
            self._account_damage("read")
            if not batch:
                self._inflight_head_ms = None
                self._finish_recovery()
                self._update_gauges()
                self._progress.set()
                self._space.set()
                await self._wake.wait()
                continue
            self._inflight_head_ms = batch[0].written_ms
            todo = batch
            while todo:
                try:
                    report = await self.deliverer.deliver([s.pending for s in todo])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    retry_after = exc.retry_after_secs if isinstance(exc, RetryableDeliveryError) else None
                    self._failed(exc, len(todo))
                    backoff = await self._sleep(backoff, retry_after)
                    todo = [s for s in todo if self.queue.holds(s)]
                    continue
                todo = await self._settle(todo, report)
                if todo:
                    self.retries += 1
                    self._progress.set()
                    backoff = await self._sleep(backoff, None)
                else:
                    backoff = self.config.retry_initial_backoff_secs
            self.queue.ack(batch)
            self._inflight_head_ms = None
            self._update_gauges()
            self._progress.set()
            self._space.set()

    async def _settle(self, todo: list[Stored], report: DeliveryReport) -> list[Stored]:
        """Count what ``report`` says became of ``todo``; returns the records to retry."""
        rejected = report.rejected
        retry = set(report.retry)
        park: list[tuple[Stored, str]] = []
        again: list[Stored] = []
        delivered = 0
        for s in todo:
            seq = s.pending.seq
            if not self.queue.holds(s):
                continue  # dropped by drop_oldest while in flight: counted as dropped, not as sent
            if seq in rejected:
                park.append((s, rejected[seq]))
            elif seq in retry:
                again.append(s)
            else:
                delivered += 1
        if park:
            await self._park(park)
        now = time.time()
        self.delivered += delivered
        self.telemetry.sent += delivered
        if delivered or park:
            self.last_delivery_at = now
            if self._failing_since is not None:
                outage = now - self._failing_since
                log.warning(
                    "sink %s: destination back after %.1fs; %d event(s) queued",
                    self.component_id,
                    outage,
                    self.queue.queued,
                )
                self._recovering = {
                    "started_at": now,
                    "outage_secs": outage,
                    "backlog_events": float(self.queue.queued),
                    "delivered_before": float(self.delivered - delivered),
                }
                self._failing_since = None
                self._next_retry_at = None
        return again

    async def _park(self, park: list[tuple[Stored, str]]) -> None:
        lines = b"".join(
            orjson.dumps(
                {
                    "parked_at": time.time(),
                    "reason": reason,
                    "seq": s.pending.seq,
                    "id": s.pending.event_id,
                    "doc": s.pending.doc,
                },
                option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS,
            )
            for s, reason in park
        )
        path = self.directory / _PARKED
        await asyncio.to_thread(_append_private, path, lines)
        self.parked += len(park)
        self.telemetry.drop("rejected", len(park))
        first = park[0]
        self.telemetry.error("Rejected", "deliver", f"event {first[0].pending.event_id} rejected: {first[1]}")
        log.warning(
            "sink %s: destination rejected %d event(s), parked in %s (first: %s: %s)",
            self.component_id,
            len(park),
            path,
            first[0].pending.event_id,
            first[1],
        )

    def _failed(self, exc: BaseException, n: int) -> None:
        msg = str(exc) or type(exc).__name__
        now = time.time()
        self.retries += 1
        self.last_error, self.last_error_at = msg, now
        self.telemetry.error(type(exc).__name__, "deliver", msg)
        if self._failing_since is None:
            self._failing_since = now
            self._recovering = None
            level = logging.WARNING if isinstance(exc, WgsiemError) else logging.ERROR
            log.log(
                level,
                "sink %s: delivery of %d event(s) failed, retrying with backoff (logged once per outage): %s",
                self.component_id,
                n,
                msg,
            )
        self._progress.set()

    async def _sleep(self, backoff: float, retry_after: float | None) -> float:
        if retry_after is not None and retry_after > 0:
            delay = min(retry_after, _MAX_RETRY_AFTER_SECS)
        else:
            delay = random.uniform(backoff / 2, backoff)
        self._next_retry_at = time.time() + delay
        self._update_gauges()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stopping.wait()
        self._next_retry_at = None
        return min(backoff * 2, self.config.retry_max_backoff_secs)

    def _finish_recovery(self) -> None:
        rec = self._recovering
        if rec is None or self.queue.queued:
            return
        took = max(time.time() - rec["started_at"], 1e-6)
        drained = self.delivered - rec["delivered_before"]
        self.recovery = {
            "outage_secs": round(rec["outage_secs"], 3),
            "backlog_events": rec["backlog_events"],
            "drain_secs": round(took, 3),
            "events_per_sec": round(drained / took, 1),
        }
        log.info(
            "sink %s: backlog of %d event(s) drained in %.1fs (%.0f events/s)",
            self.component_id,
            int(rec["backlog_events"]),
            took,
            drained / took,
        )
        self._recovering = None

    def _account_damage(self, stage: str) -> None:
        """Report damage the queue found since the last call; count records it cost in this run."""
        q = self.queue
        for dmg in q.damage[self._damage_seen :]:
            self._report_damage(dmg, stage)
        self._damage_seen = len(q.damage)
        new = q.lost_at_runtime - self._lost_reported
        if new > 0:
            self.telemetry.drop("outbox_corrupt", new)
            self._lost_reported = q.lost_at_runtime

    def _report_damage(self, dmg: DamageReport, stage: str) -> None:
        self.telemetry.error("CorruptSegment", stage, dmg.describe())
        log.warning("sink %s: %s; the intact records around it are kept", self.component_id, dmg.describe())

    # ---- status -------------------------------------------------------------------------------------

    def lag_secs(self) -> float:
        head = self._inflight_head_ms or self.queue.head_written_ms()
        if head is None or self.queue.queued == 0:
            return 0.0
        return max(0.0, time.time() - head / 1000)

    def _update_gauges(self) -> None:
        g = self.telemetry.gauges
        q = self.queue
        g["outbox_queued_events"] = float(q.queued)
        g["outbox_queued_bytes"] = float(q.queued_bytes)
        g["outbox_disk_bytes"] = float(q.disk_bytes)
        g["outbox_oldest_age_seconds"] = self.lag_secs()
        g["outbox_retries"] = float(self.retries)
        g["outbox_parked_events"] = float(self.parked)
        g["outbox_delivery_failing"] = 1.0 if self._failing_since is not None else 0.0

    def status(self) -> dict[str, Any]:
        q = self.queue
        now = time.time()
        if self._failing_since is not None:
            state = "retrying"
        elif self._blocked_since is not None:
            state = "full"
        elif q.queued:
            state = "delivering"
        else:
            state = "idle"
        self._update_gauges()
        try:
            destination = self.deliverer.status()
        except Exception as exc:  # status must never fail because of a deliverer
            destination = {"error": str(exc)}
        return {
            "type": self.component_type,
            "outbox": {
                "directory": str(self.directory),
                "state": state,
                "queued_events": q.queued,
                "queued_bytes": q.queued_bytes,
                "disk_bytes": q.disk_bytes,
                "max_bytes": q.max_bytes,
                "segments": q.segments,
                "oldest_undelivered_age_secs": round(self.lag_secs(), 3),
                "accepted": self.accepted,
                "delivered": self.delivered,
                "carried_over": q.carried_over,
                "retries": self.retries,
                "parked": self.parked,
                "overflow_policy": self.config.overflow,
                "overflow_dropped": self.overflow_dropped,
                "corrupt_lost": q.lost_at_runtime,
                "damage": [
                    {
                        "file": d.file,
                        "offset": d.offset,
                        "length": d.length,
                        "reason": d.reason,
                        "torn": d.torn,
                        "lost_records": d.lost_records,
                    }
                    for d in q.damage[-20:]
                ],
                "last_error": self.last_error,
                "last_error_at": self.last_error_at,
                "failing_for_secs": round(now - self._failing_since, 3) if self._failing_since else None,
                "next_retry_in_secs": (
                    round(max(0.0, self._next_retry_at - now), 3) if self._next_retry_at else None
                ),
                "last_delivery_at": self.last_delivery_at,
                "recovery": self.recovery,
            },
            "destination": destination,
        }


def _append_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
