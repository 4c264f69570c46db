"""Building a KernelLogSource for tests and running it until a condition holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wgsiem.event import Envelope
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.kernel_log.config import KernelLogSourceConfig
from wgsiem.sources.kernel_log.source import KernelLogSource
from wgsiem.sources.peer_directory import PeerDirectory

Doc = dict[str, Any]


def make_source(
    state_dir: Path, peers: PeerDirectory | None = None, *, replay: bool = False, **cfg: Any
) -> KernelLogSource:
    reg = TelemetryRegistry()
    ctx = SourceContext(
        hostname="gw-test",
        state_dir=state_dir,
        telemetry=reg.register("kl", "source", "kernel_log"),
        peers=peers if peers is not None else PeerDirectory(),
        replay=replay,
    )
    return KernelLogSource("kl", KernelLogSourceConfig(**cfg), ctx)


class Running:
    """``source.run()`` as a task in the current loop, collecting every emitted document."""

    def __init__(self, source: KernelLogSource) -> None:
        self.source = source
        self.stop = asyncio.Event()
        self.docs: list[Doc] = []
        self.task = asyncio.create_task(source.run(self._emit, self.stop))

    async def _emit(self, envs: list[Envelope]) -> None:
        self.docs.extend(e.data for e in envs)

    async def until(self, pred: Callable[[list[Doc]], bool], timeout: float = 15.0, what: str = "") -> None:
        async def wait() -> None:
            while not pred(self.docs):
                if self.task.done():
                    self.task.result()
                    pytest.fail("source stopped early")
                await asyncio.sleep(0.02)

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            pytest.fail(f"timed out waiting for {what}; got {[d['event']['action'] for d in self.docs]}")

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 15)
        await self.source.close()


def strip_created(doc: Doc) -> Doc:
    """A document without ``event.created`` (when wgsiem read it: the wall clock, differs live vs replay)."""
    out = dict(doc)
    out["event"] = {k: v for k, v in doc["event"].items() if k != "created"}
    return out
