"""The asyncio runtime: ordering, backpressure, graceful stop, errors counted, retries.

No test sleeps to let something happen: each waits on a condition, with a timeout.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from wgsiem.errors import ConfigError, WgsiemError
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.runtime import Emit, Pipeline, RetryPolicy, install_signal_handlers
from wgsiem.pipeline.telemetry import ComponentTelemetry, TelemetryRegistry

TIMEOUT = 10.0


def aio(fn: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run an async test in a fresh event loop (the project has no pytest asyncio plugin)."""

    @functools.wraps(fn)
    def run() -> None:
        asyncio.run(fn())

    return run


def env(i: int) -> Envelope:
    return Envelope({"event": {"id": f"{i:032x}", "action": "test"}, "n": i}, EventMeta("src", 0))


async def until(cond: Callable[[], bool], what: str) -> None:
    """Yield to the loop until ``cond()`` holds; fail after TIMEOUT seconds."""
    try:
        async with asyncio.timeout(TIMEOUT):
            while not cond():
                await asyncio.sleep(0.001)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


class ListSource:
    """Emits ``n`` events in batches of ``batch``; then waits for stop unless ``finite``."""

    component_type = "test"

    def __init__(
        self, n: int, batch: int = 1, *, cid: str = "src", finite: bool = True, start: int = 0
    ) -> None:
        self.component_id = cid
        self.n, self.batch, self.finite, self.start = n, batch, finite, start
        self.accepted = 0  # events whose emit returned
        self.log: list[str] = []

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        for i in range(self.start, self.start + self.n, self.batch):
            chunk = [env(j) for j in range(i, min(i + self.batch, self.start + self.n))]
            await emit(chunk)
            self.accepted += len(chunk)
        if not self.finite:
            await stop.wait()

    async def close(self) -> None:
        self.log.append("close")

    def save_state(self) -> None:
        self.log.append("save_state")


class RecordingSink:
    """Records what it is given; ``gate`` (if set) holds writes; ``fail`` decides per attempt."""

    component_type = "test"

    def __init__(
        self,
        registry: TelemetryRegistry,
        cid: str = "sink",
        *,
        gate: asyncio.Event | None = None,
        fail: Callable[[int], bool] | None = None,
        on_write: Callable[[list[Envelope]], Awaitable[None]] | None = None,
    ) -> None:
        self.component_id = cid
        self.telemetry: ComponentTelemetry = registry.register(cid, "sink", "test")
        self.gate = gate
        self.fail = fail
        self.on_write = on_write
        self.attempts = 0
        self.writing = False
        self.events: list[int] = []
        self.batches: list[int] = []
        self.log: list[str] = []

    async def write(self, batch: list[Envelope]) -> None:
        self.attempts += 1
        self.writing = True
        if self.gate is not None:
            await self.gate.wait()
        self.writing = False
        if self.fail is not None and self.fail(self.attempts):
            raise OSError(f"attempt {self.attempts} failed")
        if self.on_write is not None:
            await self.on_write(batch)
        self.batches.append(len(batch))
        self.events.extend(e.data["n"] for e in batch)

    async def flush(self) -> None:
        self.log.append("flush")

    async def close(self) -> None:
        self.log.append("close")

    async def health_check(self) -> None:
        if self.fail is not None and self.fail(0):
            raise WgsiemError("unhealthy")


def pipeline(
    sources: list[Any], transforms: list[Any], sinks: list[Any], registry: TelemetryRegistry, **kw: Any
) -> Pipeline:
    kw.setdefault("batch_max_wait_secs", 0.0)
    kw.setdefault("retry", RetryPolicy(attempts=3, initial_backoff_secs=0.001, max_backoff_secs=0.002))
    return Pipeline(sources, transforms, sinks, registry, **kw)


async def run_to_end(p: Pipeline, stop: asyncio.Event | None = None) -> None:
    async with asyncio.timeout(TIMEOUT):
        await p.run(stop or asyncio.Event())


@aio
async def test_every_sink_gets_every_event_in_order() -> None:
    reg = TelemetryRegistry()
    src = ListSource(5000, batch=7)
    a, b = RecordingSink(reg, "a"), RecordingSink(reg, "b")
    await run_to_end(pipeline([src], [], [a, b], reg, batch_max_events=300, queue_max_events=1000))
    assert a.events == list(range(5000))
    assert b.events == list(range(5000))
    assert max(a.batches) <= 300
    snap = {c["id"]: c for c in reg.snapshot()}
    assert snap["src"]["sent"] == 5000
    for sid in ("a", "b"):
        assert (snap[sid]["received"], snap[sid]["sent"], snap[sid]["dropped"], snap[sid]["errors"]) == (
            5000,
            5000,
            {},
            {},
        )


@aio
async def test_two_sources_each_keep_their_order() -> None:
    reg = TelemetryRegistry()
    s1, s2 = ListSource(500, batch=3, cid="s1"), ListSource(500, batch=5, cid="s2", start=1000)
    sink = RecordingSink(reg)
    await run_to_end(pipeline([s1, s2], [], [sink], reg, batch_max_events=64, queue_max_events=128))
    assert [n for n in sink.events if n < 1000] == list(range(500))
    assert [n for n in sink.events if n >= 1000] == list(range(1000, 1500))


@aio
async def test_slow_sink_blocks_fast_source_and_loses_nothing() -> None:
    reg = TelemetryRegistry()
    gate = asyncio.Event()
    slow = RecordingSink(reg, "slow", gate=gate)
    src = ListSource(100, batch=1)
    p = pipeline([src], [], [slow], reg, batch_max_events=5, queue_max_events=10)
    task = asyncio.create_task(p.run(asyncio.Event()))
    await until(lambda: slow.writing and src.accepted == 15, "the queue to fill behind the held write")
    for _ in range(200):  # let the loop run freely: the source must stay blocked
        await asyncio.sleep(0)
    assert src.accepted == 15  # 5 in the held write + 10 queued: emit is blocked, not buffering
    assert slow.telemetry.received == 5
    gate.set()
    async with asyncio.timeout(TIMEOUT):
        await task
    assert slow.events == list(range(100))
    assert max(slow.batches) == 5


@aio
async def test_graceful_stop_delivers_everything_queued_then_flushes_closes_and_saves_state() -> None:
    reg = TelemetryRegistry()
    gate = asyncio.Event()
    sink = RecordingSink(reg, gate=gate)
    src = ListSource(40, batch=4, finite=False)
    stop = asyncio.Event()
    p = pipeline([src], [], [sink], reg, batch_max_events=8, queue_max_events=64)
    task = asyncio.create_task(p.run(stop))
    await until(lambda: src.accepted == 40 and sink.writing, "all events queued")
    stop.set()
    await until(lambda: src.log == ["close"], "the source to be stopped and closed")
    assert not task.done()  # still draining: the write is held
    gate.set()
    async with asyncio.timeout(TIMEOUT):
        await task
    assert sink.events == list(range(40))
    assert sink.log[-2:] == ["flush", "close"]
    assert src.log == ["close", "save_state"]


@aio
async def test_transform_errors_and_filters_are_counted_and_never_stop_the_pipeline() -> None:
    reg = TelemetryRegistry()

    def explode_on_multiples_of_ten(e: Envelope) -> Envelope:
        if e.data["n"] % 10 == 0:
            raise ValueError("boom")
        return e

    def drop_odd(e: Envelope) -> Envelope | None:
        return None if e.data["n"] % 2 else e

    sink = RecordingSink(reg)
    src = ListSource(100, batch=9)
    transforms = [("explode", explode_on_multiples_of_ten), ("even_only", drop_odd)]
    await run_to_end(pipeline([src], transforms, [sink], reg, batch_max_events=50, queue_max_events=100))
    assert sink.events == [n for n in range(100) if n % 10 and n % 2 == 0]
    explode, even = reg.get("explode").snapshot(), reg.get("even_only").snapshot()
    assert (explode["received"], explode["sent"]) == (100, 90)
    assert explode["errors"] == {"ValueError@transform": 10}
    assert explode["dropped"] == {"transform_error": 10}
    assert explode["last_error"] == "boom"
    assert (even["received"], even["sent"], even["dropped"]) == (90, 40, {"filtered": 50})


@aio
async def test_failed_write_is_retried_then_succeeds() -> None:
    reg = TelemetryRegistry()
    sink = RecordingSink(reg, fail=lambda attempt: attempt in (1, 2))
    await run_to_end(pipeline([ListSource(10, batch=10)], [], [sink], reg, batch_max_events=10))
    assert sink.events == list(range(10))
    snap = sink.telemetry.snapshot()
    assert (snap["received"], snap["sent"], snap["dropped"]) == (10, 10, {})
    assert snap["errors"] == {"OSError@write_retry": 2}


@aio
async def test_write_failing_every_attempt_is_dropped_as_sink_failed_and_others_still_deliver() -> None:
    reg = TelemetryRegistry()
    broken = RecordingSink(reg, "broken", fail=lambda attempt: attempt > 0)
    good = RecordingSink(reg, "good")
    await run_to_end(
        pipeline(
            [ListSource(20, batch=10)], [], [broken, good], reg, batch_max_events=10, queue_max_events=20
        )
    )
    assert good.events == list(range(20))
    assert broken.events == []
    assert broken.attempts == 2 * 3  # two batches, three attempts each
    snap = broken.telemetry.snapshot()
    assert (snap["received"], snap["sent"], snap["dropped"]) == (20, 0, {"sink_failed": 20})
    assert snap["errors"] == {"OSError@write_retry": 4, "OSError@write": 2}
    assert snap["last_error"] == "attempt 6 failed"


@aio
async def test_drops_a_sink_records_reduce_its_sent_and_a_failed_attempts_drops_are_void() -> None:
    reg = TelemetryRegistry()
    holder: dict[str, RecordingSink] = {}

    async def drop_three(batch: list[Envelope]) -> None:
        holder["s"].telemetry.drop("duplicate", 3)

    def fail_first(attempt: int) -> bool:
        if attempt == 1:
            holder["s"].telemetry.drop("duplicate", 3)  # recorded, then the attempt fails
            return True
        return False

    sink = RecordingSink(reg, fail=fail_first, on_write=drop_three)
    holder["s"] = sink
    await run_to_end(pipeline([ListSource(10, batch=10)], [], [sink], reg, batch_max_events=10))
    snap = sink.telemetry.snapshot()
    assert (snap["received"], snap["sent"], snap["dropped"]) == (10, 7, {"duplicate": 3})


@aio
async def test_a_failing_source_is_counted_and_the_rest_is_still_delivered() -> None:
    reg = TelemetryRegistry()

    class Failing(ListSource):
        async def run(self, emit: Emit, stop: asyncio.Event) -> None:
            await emit([env(0), env(1)])
            raise RuntimeError("socket gone")

    sink = RecordingSink(reg)
    await run_to_end(pipeline([Failing(0, cid="bad"), ListSource(3, cid="ok", start=10)], [], [sink], reg))
    assert sorted(sink.events) == [0, 1, 10, 11, 12]
    assert reg.get("bad").snapshot()["errors"] == {"RuntimeError@run": 1}


@aio
async def test_a_source_ignoring_stop_is_cancelled_after_its_timeout() -> None:
    reg = TelemetryRegistry()

    class Deaf(ListSource):
        async def run(self, emit: Emit, stop: asyncio.Event) -> None:
            await emit([env(0)])
            await asyncio.Event().wait()  # never returns on its own

    sink = RecordingSink(reg)
    src = Deaf(0, cid="deaf")
    stop = asyncio.Event()
    p = pipeline([src], [], [sink], reg, source_stop_timeout_secs=0.05)
    task = asyncio.create_task(p.run(stop))
    await until(lambda: sink.events == [0], "the first event")
    stop.set()
    async with asyncio.timeout(TIMEOUT):
        await task
    assert reg.get("deaf").snapshot()["errors"] == {"Timeout@stop": 1}
    assert sink.log[-2:] == ["flush", "close"]


@aio
async def test_idle_sink_is_flushed_after_the_flush_interval() -> None:
    reg = TelemetryRegistry()
    sink = RecordingSink(reg)
    stop = asyncio.Event()
    p = pipeline([ListSource(3, finite=False)], [], [sink], reg, flush_interval_secs=0.01)
    task = asyncio.create_task(p.run(stop))
    await until(lambda: sink.events == [0, 1, 2] and "flush" in sink.log, "a flush while idle")
    stop.set()
    async with asyncio.timeout(TIMEOUT):
        await task


@aio
async def test_health_check_reports_each_sink() -> None:
    reg = TelemetryRegistry()
    ok, bad = RecordingSink(reg, "ok"), RecordingSink(reg, "bad", fail=lambda attempt: attempt == 0)
    p = pipeline([], [], [ok, bad], reg)
    assert await p.health_check() == {"ok": None, "bad": "unhealthy"}
    assert bad.telemetry.snapshot()["errors"] == {"WgsiemError@health_check": 1}


def test_invalid_pipelines_report_every_problem_at_once() -> None:
    reg = TelemetryRegistry()
    sink = RecordingSink(reg, "x")
    with pytest.raises(ConfigError) as info:
        Pipeline([ListSource(1, cid="x")], [], [sink], reg, batch_max_events=20, queue_max_events=10)
    assert [p.what for p in info.value.problems] == [
        "component id 'x' used 2 times",
        "batch_max_events (20) exceeds queue_max_events (10)",
    ]


@aio
async def test_sigterm_sets_stop() -> None:
    stop = asyncio.Event()
    remove = install_signal_handlers(asyncio.get_running_loop(), stop)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT):
            await stop.wait()
    finally:
        remove()


@aio
async def test_a_signal_in_a_forked_child_does_not_stop_the_parent() -> None:
    """pyroute2 forks a helper to open a socket in a network namespace and SIGTERMs it; the child
    inherits the loop's signal wakeup pipe, and its SIGTERM must not reach the parent's handler."""
    import multiprocessing

    stop = asyncio.Event()
    remove = install_signal_handlers(asyncio.get_running_loop(), stop)
    try:
        child = multiprocessing.get_context("fork").Process(target=_sigterm_self)
        child.start()
        await asyncio.to_thread(child.join, TIMEOUT)
        assert child.exitcode is not None
        # the loop has read whatever the child wrote into the wakeup pipe once a few turns have run
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)  # and the parent's own handling still works
        async with asyncio.timeout(TIMEOUT):
            await stop.wait()
    finally:
        remove()


def _sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


@aio
async def test_a_transforms_drained_alerts_flow_through_later_transforms_to_every_sink() -> None:
    class AlertOnMultiplesOfFive:
        def __init__(self) -> None:
            self.pending: list[Envelope] = []

        def __call__(self, e: Envelope) -> Envelope:
            if e.data["n"] % 5 == 0:
                self.pending.append(Envelope({"n": 1000 + e.data["n"]}, EventMeta("alerts", 0)))
            return e

        def drain_alerts(self) -> list[Envelope]:
            out, self.pending = self.pending, []
            return out

    seen_by_later: list[int] = []

    def later(e: Envelope) -> Envelope:
        seen_by_later.append(e.data["n"])
        return e

    reg = TelemetryRegistry()
    sink = RecordingSink(reg)
    transforms = [("alerting", AlertOnMultiplesOfFive()), ("later", later)]
    await run_to_end(pipeline([ListSource(10, batch=10)], transforms, [sink], reg))
    assert sink.events == [*range(10), 1000, 1005]
    assert seen_by_later == sink.events
    alerting = reg.get("alerting").snapshot()
    assert (alerting["received"], alerting["sent"]) == (10, 12)
