"""Helpers for outbox tests: ECS documents, envelopes, scriptable deliverers, a sink factory."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wgsiem.event import Envelope, EventMeta, event_id
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.outbox.config import OutboxConfig
from wgsiem.sinks.outbox.contract import DeliveryReport, Pending, RetryableDeliveryError
from wgsiem.sinks.outbox.sink import OutboxSink
from wgsiem.sinks.registry import SinkContext
from wgsiem.sources.peer_directory import PeerDirectory


def make_doc(i: int, pad: int = 0) -> dict[str, Any]:
    """An ECS document shaped like a wg_state handshake event (valid for tests/support/ecs.py)."""
    return {
        "@timestamp": f"2026-11-25T21:{(i // 60) % 60:02d}:{i % 60:02d}.000Z",
        "event": {
            "kind": "event",
            "category": ["network"],
            "type": ["connection"],
            "action": "handshake",
            "dataset": "wireguard.state",
            "module": "wireguard",
            "id": event_id("test", i),
        },
        "observer": {"hostname": "gw1", "type": "vpn", "vendor": "WireGuard", "product": "wgsiem"},
        "source": {"ip": "198.51.100.7", "port": 40000 + i % 1000},
        "wireguard": {"n": i, "pad": "x" * pad},
    }


def make_env(i: int, pad: int = 0) -> Envelope:
    return Envelope(make_doc(i, pad), EventMeta("test", time.time_ns()))


def envs(n: int, start: int = 0, pad: int = 0) -> list[Envelope]:
    return [make_env(i, pad) for i in range(start, start + n)]


class ScriptedDeliverer:
    """Records every delivered record; ``script`` decides each call (report, or an exception)."""

    def __init__(self, script: Callable[[list[Pending]], DeliveryReport | Exception] | None = None) -> None:
        self.script = script
        self.delivered: list[Pending] = []
        self.calls = 0
        self.started = False
        self.closed = False
        self.healthy = True
        self.gate: asyncio.Event | None = None

    async def start(self) -> None:
        self.started = True

    async def health_check(self) -> None:
        if not self.healthy:
            raise RetryableDeliveryError("down")

    async def deliver(self, batch: list[Pending]) -> DeliveryReport:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        out = self.script(batch) if self.script is not None else DeliveryReport()
        if isinstance(out, Exception):
            raise out
        skip = set(out.rejected) | set(out.retry)
        self.delivered.extend(p for p in batch if p.seq not in skip)
        return out

    async def close(self) -> None:
        self.closed = True

    def status(self) -> dict[str, Any]:
        return {"calls": self.calls}


def make_sink(
    state_dir: Path,
    deliverer: Any,
    *,
    registry: TelemetryRegistry | None = None,
    sink_id: str = "out",
    **cfg: Any,
) -> OutboxSink:
    cfg.setdefault("retry_initial_backoff_secs", 0.01)
    cfg.setdefault("retry_max_backoff_secs", 0.05)
    ctx = SinkContext(registry or TelemetryRegistry(), sink_id, "gw1", state_dir, PeerDirectory())
    return OutboxSink(ctx, component_type="test", config=OutboxConfig(**cfg), deliverer=deliverer)


async def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``cond`` on the event loop until true; fail after ``timeout`` (no fixed sleeps)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def invariant(sink: OutboxSink) -> bool:
    tel = sink.telemetry
    st = sink.status()["outbox"]
    return tel.received + st["carried_over"] == tel.sent + sum(tel.dropped.values()) + st["queued_events"]


def aio(fn: Callable[..., Any]) -> Callable[..., None]:
    """Run an ``async def`` test on a fresh event loop (the suite has no asyncio plugin)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper
