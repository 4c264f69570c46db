"""The asyncio runtime: sources → transforms → one bounded queue per sink → sinks (Vector's topology).

Why it is shaped this way:

* **Backpressure, not buffering without bound.** Every sink has its own bounded queue, counted in
  events. A source's ``await emit(batch)`` returns once the batch is in *every* sink's queue, so the
  slowest sink paces the sources (Vector's ``when_full: block``) and memory stays bounded.
* **Transforms run in the emitting task.** They are plain callables (structlog-style); running them
  inline costs no task switch per event. A transform that returns ``None`` drops the event
  ("filtered"); one that raises has the error counted and the event dropped ("transform_error") — a bad
  event never stops the pipeline.
* **Each sink task batches** up to ``batch_max_events`` or ``batch_max_wait_secs`` after the first event
  of a batch. A sink may override both with ``batch_max_events`` / ``batch_max_wait_secs`` attributes
  (the DuckDB store amortizes per-statement costs over larger batches).
* **A failed write is retried** with exponential backoff (:class:`RetryPolicy`), then counted as an
  error and dropped with reason "sink_failed" — never silently.
* **Graceful stop loses nothing queued**: on ``stop`` the sources return, every queued event is
  delivered, every sink is flushed and closed, and only then do sources save their state.

Telemetry, all in the :class:`~wgsiem.pipeline.telemetry.TelemetryRegistry`: a source's ``sent`` is
what it emitted; a transform's ``received``/``sent``/``dropped``/``errors``; a sink's ``received`` is
what its task took from its queue, ``sent`` what its writes accepted — minus anything the sink itself
recorded as dropped during the write (duplicates, unencodable events) — ``errors`` its failures. Once
drained, ``received == sent + sum(dropped)`` for every sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from wgsiem.errors import ConfigError, WgsiemError
from wgsiem.event import Envelope, Processor

from .telemetry import ComponentTelemetry, TelemetryRegistry

__all__ = [
    "Emit",
    "Pipeline",
    "RetryPolicy",
    "Sink",
    "Source",
    "install_signal_handlers",
]

log = logging.getLogger(__name__)

Emit = Callable[[list[Envelope]], Awaitable[None]]
"""What a source calls with each batch; it returns once every sink's queue has taken the batch."""


@runtime_checkable
class Source(Protocol):
    """Produces envelopes until ``stop`` is set, then returns.

    Optional: ``async def close()`` (called after ``run`` returned) and ``def save_state()`` (called
    after every sink has flushed, so a saved position never runs ahead of delivered events), and a
    ``component_type`` string for telemetry.
    """

    component_id: str

    async def run(self, emit: Emit, stop: asyncio.Event) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Delivers batches somewhere. Treats envelopes as read-only: they are shared by every sink.

    Optional: ``async def start()`` (called by :meth:`Pipeline.run` before the first write),
    ``batch_max_events`` / ``batch_max_wait_secs`` attributes overriding the pipeline's batching, and
    ``counts_own_sent = True`` for a sink that counts ``sent`` itself when the destination accepts
    (the outbox: a write only puts records on disk).
    """

    component_id: str
    telemetry: ComponentTelemetry

    async def write(self, batch: list[Envelope]) -> None: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...

    async def health_check(self) -> None:
        """Raise :class:`~wgsiem.errors.WgsiemError` if the sink cannot deliver."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failing sink write is retried before its batch is dropped ("sink_failed")."""

    attempts: int = 5
    initial_backoff_secs: float = 0.1
    max_backoff_secs: float = 5.0
    multiplier: float = 2.0

    def delays(self) -> list[float]:
        """The sleeps between the ``attempts`` tries."""
        out, delay = [], self.initial_backoff_secs
        for _ in range(self.attempts - 1):
            out.append(min(delay, self.max_backoff_secs))
            delay *= self.multiplier
        return out


class _EventQueue:
    """A bounded FIFO of envelopes, counted in events, holding the lists sources emitted.

    Storing the emitted lists (not single envelopes) keeps the per-event cost at zero queue
    operations; producers block while the queue is full (backpressure).
    """

    def __init__(self, max_events: int) -> None:
        self._max = max_events
        self._items: deque[list[Envelope]] = deque()
        self._size = 0
        self._closed = False
        self._want = 1
        self._ready = asyncio.Event()  # set when size >= _want, or closed
        self._space = asyncio.Event()  # set when size < _max, or closed

    def __len__(self) -> int:
        return self._size

    async def put(self, batch: list[Envelope]) -> None:
        i, total = 0, len(batch)
        while i < total:
            while self._size >= self._max and not self._closed:
                self._space.clear()
                await self._space.wait()
            if self._closed:
                raise WgsiemError("emit after the pipeline stopped", fix="return from Source.run on stop")
            n = min(total - i, self._max - self._size)
            self._items.append(batch if n == total else batch[i : i + n])
            self._size += n
            i += n
            if self._size >= self._want:
                self._ready.set()

    async def get(self, want: int, max_wait: float, idle_timeout: float) -> list[Envelope] | None:
        """Up to ``want`` events; ``[]`` after ``idle_timeout`` with none; ``None`` once closed and empty."""
        want = max(1, min(want, self._max))
        if self._size == 0:
            if self._closed:
                return None
            if not await self._wait_for(1, idle_timeout):
                return []
            if self._size == 0:
                return None
        if self._size < want and not self._closed and max_wait > 0:
            await self._wait_for(want, max_wait)
        out: list[Envelope] = []
        n = 0
        items = self._items
        while items and n < want:
            head = items[0]
            take = want - n
            if len(head) <= take:
                items.popleft()
                out.extend(head)
                n += len(head)
            else:
                out.extend(head[:take])
                items[0] = head[take:]
                n += take
        self._size -= n
        self._space.set()
        return out

    async def _wait_for(self, want: int, timeout: float) -> bool:
        self._want = want
        self._ready.clear()
        if self._size >= want or self._closed:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._closed = True
        self._ready.set()
        self._space.set()


class Pipeline:
    """Runs sources, transforms and sinks until stopped; see the module docstring for the guarantees."""

    def __init__(
        self,
        sources: Sequence[Source],
        transforms: Sequence[tuple[str, Processor]],
        sinks: Sequence[Sink],
        registry: TelemetryRegistry,
        *,
        queue_max_events: int = 10_000,
        batch_max_events: int = 1_000,
        batch_max_wait_secs: float = 1.0,
        retry: RetryPolicy | None = None,
        flush_interval_secs: float = 1.0,
        source_stop_timeout_secs: float = 10.0,
    ) -> None:
        problems: list[WgsiemError] = []
        ids = [s.component_id for s in sources] + [t[0] for t in transforms] + [s.component_id for s in sinks]
        for cid, n in Counter(ids).items():
            if n > 1:
                problems.append(
                    WgsiemError(f"component id {cid!r} used {n} times", fix="give each a unique id")
                )
        if not sinks:
            problems.append(WgsiemError("no sink", fix="configure at least one sink"))
        if queue_max_events < 1 or batch_max_events < 1:
            problems.append(WgsiemError("queue_max_events and batch_max_events must be at least 1"))
        elif batch_max_events > queue_max_events:
            problems.append(
                WgsiemError(
                    f"batch_max_events ({batch_max_events}) exceeds queue_max_events ({queue_max_events})",
                    fix="a batch must fit in the queue",
                )
            )
        policy = retry or RetryPolicy()
        if policy.attempts < 1:
            problems.append(WgsiemError("retry attempts must be at least 1"))
        if problems:
            raise ConfigError("invalid pipeline", problems=problems)

        self.sources = list(sources)
        self.sinks = list(sinks)
        self.registry = registry
        self.queue_max_events = queue_max_events
        self.batch_max_events = batch_max_events
        self.batch_max_wait_secs = batch_max_wait_secs
        self.retry = policy
        self.flush_interval_secs = flush_interval_secs
        self.source_stop_timeout_secs = source_stop_timeout_secs
        self._transforms = [
            (proc, registry.register(tid, "transform", getattr(proc, "__name__", type(proc).__name__)))
            for tid, proc in transforms
        ]
        self._source_tel = {
            s.component_id: registry.register(
                s.component_id, "source", getattr(s, "component_type", type(s).__name__)
            )
            for s in self.sources
        }
        self._queues: list[_EventQueue] = []

    # ---- the data path -----------------------------------------------------------------------------

    def _transform(self, batch: list[Envelope]) -> list[Envelope]:
        for proc, tel in self._transforms:
            tel.received += len(batch)
            out: list[Envelope] = []
            filtered = 0
            for env in batch:
                try:
                    res = proc(env)
                except Exception as exc:
                    tel.error(type(exc).__name__, "transform", str(exc))
                    tel.drop("transform_error")
                    continue
                if res is None:
                    filtered += 1
                else:
                    out.append(res)
            if filtered:
                tel.drop("filtered", filtered)
            drain = getattr(proc, "drain_alerts", None)
            if drain is not None:
                out.extend(drain())
            tel.sent += len(out)
            batch = out
            if not batch:
                break
        return batch

    def _emitter(self, tel: ComponentTelemetry) -> Emit:
        async def emit(batch: list[Envelope]) -> None:
            if not batch:
                return
            tel.sent += len(batch)
            out = self._transform(batch) if self._transforms else list(batch)
            if out:
                for q in self._queues:
                    await q.put(out)

        return emit

    async def _deliver(self, sink: Sink, batch: list[Envelope]) -> None:
        tel = sink.telemetry
        delays = self.retry.delays()
        for attempt in range(self.retry.attempts):
            before = Counter(tel.dropped)
            try:
                await sink.write(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The attempt's own drop counts are void: the whole batch is retried or dropped below.
                tel.dropped.clear()
                tel.dropped.update(before)
                if attempt < len(delays):
                    tel.error(type(exc).__name__, "write_retry", str(exc))
                    await asyncio.sleep(delays[attempt])
                    continue
                tel.error(type(exc).__name__, "write", str(exc))
                tel.drop("sink_failed", len(batch))
                log.error(
                    "sink %s dropped %d events after %d attempts: %s",
                    sink.component_id,
                    len(batch),
                    self.retry.attempts,
                    exc,
                )
                return
            if not getattr(sink, "counts_own_sent", False):
                dropped_now = sum(tel.dropped.values()) - sum(before.values())
                tel.sent += len(batch) - dropped_now
            return

    async def _call(self, tel: ComponentTelemetry, stage: str, fn: Callable[[], Awaitable[None]]) -> bool:
        try:
            await fn()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            tel.error(type(exc).__name__, stage, str(exc))
            log.error("%s %s failed: %s", tel.component_id, stage, exc)
            return False
        return True

    async def _sink_loop(self, sink: Sink, queue: _EventQueue) -> None:
        loop = asyncio.get_running_loop()
        tel = sink.telemetry
        want = int(getattr(sink, "batch_max_events", None) or self.batch_max_events)
        wait = float(getattr(sink, "batch_max_wait_secs", None) or self.batch_max_wait_secs)
        dirty = False
        last_flush = loop.time()
        while True:
            batch = await queue.get(want, wait, self.flush_interval_secs)
            if batch is None:
                break
            if batch:
                tel.received += len(batch)
                await self._deliver(sink, batch)
                dirty = True
            if dirty and (not batch or loop.time() - last_flush >= self.flush_interval_secs):
                await self._call(tel, "flush", sink.flush)
                dirty = False
                last_flush = loop.time()
        await self._call(tel, "flush", sink.flush)
        await self._call(tel, "close", sink.close)

    async def _run_source(self, source: Source, stop: asyncio.Event) -> None:
        tel = self._source_tel[source.component_id]
        try:
            await source.run(self._emitter(tel), stop)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            tel.error(type(exc).__name__, "run", str(exc))
            log.exception("source %s failed", source.component_id)

    # ---- lifecycle ---------------------------------------------------------------------------------

    async def health_check(self) -> dict[str, str | None]:
        """Each sink's health: ``None`` if healthy, else the error (also counted, stage "health_check")."""
        out: dict[str, str | None] = {}
        for sink in self.sinks:
            try:
                await sink.health_check()
                out[sink.component_id] = None
            except Exception as exc:
                sink.telemetry.error(type(exc).__name__, "health_check", str(exc))
                out[sink.component_id] = str(exc)
        return out

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (or every source has returned), then drain, flush and close.

        Returns only when every event a source emitted has been written or counted as dropped.
        """
        loop = asyncio.get_running_loop()
        started: list[Sink] = []
        try:
            for sink in self.sinks:
                start = getattr(sink, "start", None)
                if start is not None:
                    await start()
                started.append(sink)
        except BaseException:
            for sink in started:
                await self._call(sink.telemetry, "close", sink.close)
            raise

        self._queues = [_EventQueue(self.queue_max_events) for _ in self.sinks]
        sink_tasks = [
            loop.create_task(self._sink_loop(sink, q), name=f"sink:{sink.component_id}")
            for sink, q in zip(self.sinks, self._queues, strict=True)
        ]
        source_tasks = [
            loop.create_task(self._run_source(src, stop), name=f"source:{src.component_id}")
            for src in self.sources
        ]
        stop_task = loop.create_task(stop.wait(), name="pipeline:stop")
        try:
            running = set(source_tasks)
            while not stop.is_set() and (running or not source_tasks):
                done, _ = await asyncio.wait({stop_task, *running}, return_when=asyncio.FIRST_COMPLETED)
                running -= done
            if running:
                _, late = await asyncio.wait(running, timeout=self.source_stop_timeout_secs)
                for task in late:
                    task.cancel()
                    src = self.sources[source_tasks.index(task)]
                    self._source_tel[src.component_id].error("Timeout", "stop", "did not return on stop")
                await asyncio.gather(*late, return_exceptions=True)
            for src in self.sources:
                close = getattr(src, "close", None)
                if close is not None:
                    await self._call(self._source_tel[src.component_id], "close", close)
            for q in self._queues:
                q.close()
            await asyncio.gather(*sink_tasks)
            for src in self.sources:
                save_state = getattr(src, "save_state", None)
                if save_state is not None:
                    try:
                        save_state()
                    except Exception as exc:
                        self._source_tel[src.component_id].error(type(exc).__name__, "save_state", str(exc))
        finally:
            leftovers: list[asyncio.Task[Any]] = [stop_task, *source_tasks, *sink_tasks]
            for task in leftovers:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)


def _forget_wakeup_fd() -> None:
    """In a forked child: stop writing signal numbers into the parent's event-loop wakeup pipe.

    asyncio's signal handling writes each signal's number into a socket the child inherits on
    ``fork()``. Libraries fork helpers (pyroute2 opens a socket inside a network namespace from a
    forked child, then SIGTERMs it): without this, the child's SIGTERM lands in the *parent's* loop,
    which then stops wgsiem as if it had been asked to.
    """
    # ValueError: not the main thread of the child, where nothing was inherited
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)


_fork_hook_installed = False


def install_signal_handlers(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> Callable[[], None]:
    """Make SIGTERM and SIGINT set ``stop`` (graceful shutdown); returns a function that undoes it."""
    global _fork_hook_installed
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_forget_wakeup_fd)
        _fork_hook_installed = True
    sigs = (signal.SIGTERM, signal.SIGINT)
    for sig in sigs:
        loop.add_signal_handler(sig, stop.set)

    def remove() -> None:
        for sig in sigs:
            loop.remove_signal_handler(sig)

    return remove
