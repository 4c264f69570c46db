"""The contract of a transform under ``enrich/<name>/``.

A transform is a plain callable ``Cls(transform_id, config, ctx)`` → ``__call__(envelope) -> envelope |
None`` (structlog's processors). It edits ``envelope.data`` in place and returns the envelope; ``None``
drops the event (counted by the runtime as "filtered"). It raises only for a bug — bad data is counted
through ``ctx.telemetry`` and the event passes through un-enriched. Optional: ``close()``, ``status()``.

Files a transform reads (databases, inventories) are re-read when they change on disk, without a
restart; a missing or corrupt file is a clear error at build time and, later, a counted error while the
last good version stays in use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wgsiem.pipeline.telemetry import ComponentTelemetry
from wgsiem.sources.peer_directory import PeerDirectory

__all__ = ["TransformContext"]


@dataclass(slots=True)
class TransformContext:
    hostname: str
    state_dir: Path
    telemetry: ComponentTelemetry
    peers: PeerDirectory
    extra: dict[str, Any] = field(default_factory=dict)
