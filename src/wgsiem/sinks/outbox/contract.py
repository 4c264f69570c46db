"""The contract between the disk-backed outbox and a network sink's deliverer.

A network sink (Elasticsearch, Splunk HEC, syslog, webhook) is two parts:

* an :class:`OutboxSink` (``wgsiem.sinks.outbox.sink``) — the :class:`~wgsiem.pipeline.runtime.Sink`
  the pipeline writes to. ``write`` appends the batch to a bounded on-disk queue (that is what makes
  delivery survive a crash or a SIEM outage) and returns; a background task reads the queue in order
  and hands records to the deliverer, retrying with backoff, and only advances the on-disk
  acknowledgement once the deliverer has accounted for every record (at-least-once);
* a :class:`Deliverer` — the protocol code that knows one destination. It never touches the disk.

A sink's ``build(config, ctx)`` returns
``OutboxSink(ctx, component_type=..., config=config.outbox, deliverer=MyDeliverer(config, ...))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from wgsiem.errors import WgsiemError

__all__ = ["Deliverer", "DeliveryReport", "Pending", "RetryableDeliveryError"]


@dataclass(frozen=True, slots=True)
class Pending:
    """One record awaiting delivery. ``seq`` is the outbox's own monotonic sequence number."""

    seq: int
    event_id: str
    """The document's ``event.id`` (deterministic): the idempotency key (ES ``_id``, HEC event id)."""
    doc: dict[str, Any]
    """The ECS document as the pipeline produced it. Read-only: deliverers copy before mapping."""
    raw: bytes | None = field(default=None, compare=False, repr=False)
    """``doc`` as compact JSON (the NDJSON line without its newline) when the outbox has it — always
    for records it hands out. A deliverer that ships the ECS document unchanged may send these bytes
    instead of encoding ``doc`` again (after a restart records come from disk: this saves the re-encode)."""


@dataclass(slots=True)
class DeliveryReport:
    """What became of one :meth:`Deliverer.deliver` call; every seq not named here was delivered."""

    rejected: dict[int, str] = field(default_factory=dict)
    """Permanently refused (ES mapping error, HEC 400 for one event): parked with the reason, not retried."""
    retry: list[int] = field(default_factory=list)
    """Refused for now (ES per-item 429): retried later, in order, with backoff."""


class RetryableDeliveryError(WgsiemError):
    """The whole call failed transiently (connection refused, timeout, HTTP 429/5xx): retry it all.

    ``retry_after_secs`` carries a server's ``Retry-After`` when it gave one.
    """

    def __init__(
        self, message: str, *, retry_after_secs: float | None = None, fix: str | None = None
    ) -> None:
        super().__init__(message, fix=fix)
        self.retry_after_secs = retry_after_secs


class Deliverer(Protocol):
    """Sends records to one destination. Any other exception than :class:`RetryableDeliveryError`
    from :meth:`deliver` is a bug or a permanent failure of the whole batch; the outbox treats it as
    retryable too (bounded by its policy) and records it as the sink's last error."""

    async def start(self) -> None:
        """Open connections (called once, before :meth:`health_check`)."""

    async def health_check(self) -> None:
        """Make the destination's real request (ES ``GET /``, HEC ``/services/collector/health``, a
        syslog connect); raise :class:`~wgsiem.errors.WgsiemError` with a ``fix`` if it fails."""

    async def deliver(self, batch: list[Pending]) -> DeliveryReport:
        """Deliver ``batch`` (in order, ≤ the outbox's ``batch_max_events``)."""
        ...

    async def close(self) -> None:
        """Release connections."""

    def status(self) -> dict[str, Any]:
        """Destination-specific facts for ``wgsiem status`` (endpoint, last response code, …)."""
        ...
