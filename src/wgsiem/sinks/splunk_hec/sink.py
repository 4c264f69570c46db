"""``SplunkHecSink.build``: the durable outbox in front of a :class:`SplunkHecDeliverer`."""

from __future__ import annotations

import importlib
from typing import Any

from wgsiem.sinks.registry import SinkContext

from .config import SplunkHecSinkConfig
from .deliverer import SplunkHecDeliverer

__all__ = ["SplunkHecSink"]

OUTBOX_SINK = "wgsiem.sinks.outbox.sink"


class SplunkHecSink:
    """Built by the sink registry (``type: splunk_hec``); not instantiated itself."""

    component_type = "splunk_hec"

    @classmethod
    def build(cls, config: SplunkHecSinkConfig, ctx: SinkContext) -> Any:
        """An ``OutboxSink`` delivering through a :class:`SplunkHecDeliverer` (no I/O here)."""
        outbox_sink = importlib.import_module(OUTBOX_SINK).OutboxSink
        return outbox_sink(
            ctx,
            component_type=cls.component_type,
            config=config.outbox,
            deliverer=SplunkHecDeliverer(config, hostname=ctx.hostname),
        )
