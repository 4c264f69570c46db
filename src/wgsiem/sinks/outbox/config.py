"""Configuration of a sink's outbox (the ``outbox:`` block of every network sink)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["OutboxConfig"]


class OutboxConfig(BaseModel):
    """Where and how much a network sink buffers on disk while its destination is slow or down."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: str | None = Field(
        None, description="Outbox directory; default: <state_dir>/outbox/<sink id> (mode 0700)."
    )
    max_bytes: int = Field(
        1024 * 1024 * 1024, ge=1024 * 1024, description="Bound on the outbox's size on disk, in bytes."
    )
    overflow: Literal["block", "drop_newest", "drop_oldest"] = Field(
        "block",
        description="When the outbox is full: block (backpressure to the sources; nothing lost), "
        "drop_newest (refuse the incoming batch) or drop_oldest (discard the oldest undelivered segment). "
        "Every drop is counted and logged.",
    )
    batch_max_events: int = Field(1000, ge=1, description="Records per deliver call.")
    retry_initial_backoff_secs: float = Field(0.5, gt=0, description="First retry delay.")
    retry_max_backoff_secs: float = Field(30.0, gt=0, description="Retry delay cap (exponential, jittered).")
    segment_max_bytes: int = Field(
        16 * 1024 * 1024,
        ge=64 * 1024,
        description="A segment file is closed and a new one started past this size; space is freed a "
        "whole segment at a time, so the effective segment size is min(this, max_bytes / 8).",
    )
    fsync: Literal["batch", "never"] = Field(
        "batch",
        description="batch: every write batch is fsync-ed before the pipeline counts it accepted "
        "(survives a power loss); never: left to the OS (survives a process crash, not a power loss).",
    )
    flush_timeout_secs: float = Field(
        5.0,
        ge=0,
        description="How long flush() (every second, and at a graceful stop) waits for the records "
        "written so far to be delivered; it returns at once while the destination is failing.",
    )
    start_when_unhealthy: bool = Field(
        True,
        description="When the destination fails its health check as wgsiem starts (a SIEM outage, a "
        "gateway rebooting before the network is up): start anyway and buffer in the outbox, with the "
        "failure logged and shown by `wgsiem status`. false: refuse to start instead.",
    )
