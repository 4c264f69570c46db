"""The contract of a transform under ``enrich/<name>/``.

A transform is a plain callable ``Cls(transform_id, config, ctx)`` → ``__call__(envelope) -> envelope |
None`` (structlog's processors). It edits ``envelope.data`` in place and returns the envelope; ``None``
drops the event (counted by the runtime as "filtered"). It raises only for a bug — bad data is counted
through ``ctx.telemetry`` and the event passes through un-enriched. Optional: ``close()``, ``status()``.

A transform that caches per address or per peer exposes ``cache_stats()`` → ``{cache name: {hits,
misses, size, hit_rate}}`` (``wgsiem status``, ``bench/bench_enrich_chain.py``) and ``clear_cache()``;
a cache is emptied whenever what it was computed from is reloaded, so an edit takes effect at once.

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

__all__ = ["TransformContext", "cache_stat"]


@dataclass(slots=True)
class TransformContext:
    hostname: str
    state_dir: Path
    telemetry: ComponentTelemetry
    peers: PeerDirectory
    extra: dict[str, Any] = field(default_factory=dict)


def cache_stat(hits: int, misses: int, size: int, max_entries: int | None = None) -> dict[str, Any]:
    """One cache's figures, the same shape for every transform."""
    total = hits + misses
    out: dict[str, Any] = {"hits": hits, "misses": misses, "size": size}
    if max_entries is not None:
        out["max_entries"] = max_entries
    out["hit_rate"] = round(hits / total, 4) if total else None
    return out
