"""``SplunkHecSink.build``: the durable outbox in front of a :class:`SplunkHecDeliverer`."""

from __future__ import annotations

from wgsiem.sinks.outbox.sink import OutboxSink
from wgsiem.sinks.registry import SinkContext

from .config import SplunkHecSinkConfig
from .deliverer import SplunkHecDeliverer

__all__ = ["SplunkHecSink"]


class SplunkHecSink:
    """Built by the sink registry (``type: splunk_hec``); not instantiated itself."""

    component_type = "splunk_hec"

    @classmethod
    def build(cls, config: SplunkHecSinkConfig, ctx: SinkContext) -> OutboxSink:
        """An ``OutboxSink`` delivering through a :class:`SplunkHecDeliverer` (no I/O here)."""
        return OutboxSink(
            ctx,
            component_type=cls.component_type,
            config=config.outbox,
            deliverer=SplunkHecDeliverer(config, hostname=ctx.hostname),
        )
