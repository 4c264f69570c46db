"""``ElasticsearchSink.build``: the durable outbox in front of an :class:`ElasticsearchDeliverer`."""

from __future__ import annotations

import importlib
from typing import Any

from wgsiem.sinks.registry import SinkContext

from .config import ElasticsearchSinkConfig
from .deliverer import ElasticsearchDeliverer

__all__ = ["ElasticsearchSink"]

OUTBOX_SINK = "wgsiem.sinks.outbox.sink"


class ElasticsearchSink:
    """Built by the sink registry (``type: elasticsearch``); not instantiated itself."""

    component_type = "elasticsearch"

    @classmethod
    def build(cls, config: ElasticsearchSinkConfig, ctx: SinkContext) -> Any:
        """An ``OutboxSink`` delivering through an :class:`ElasticsearchDeliverer` (no I/O here)."""
        outbox_sink = importlib.import_module(OUTBOX_SINK).OutboxSink
        return outbox_sink(
            ctx,
            component_type=cls.component_type,
            config=config.outbox,
            deliverer=ElasticsearchDeliverer(config),
        )
