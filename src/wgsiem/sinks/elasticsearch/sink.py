"""``ElasticsearchSink.build``: the durable outbox in front of an :class:`ElasticsearchDeliverer`."""

from __future__ import annotations

from wgsiem.sinks.outbox.sink import OutboxSink
from wgsiem.sinks.registry import SinkContext

from .config import ElasticsearchSinkConfig
from .deliverer import ElasticsearchDeliverer

__all__ = ["ElasticsearchSink"]


class ElasticsearchSink:
    """Built by the sink registry (``type: elasticsearch``); not instantiated itself."""

    component_type = "elasticsearch"

    @classmethod
    def build(cls, config: ElasticsearchSinkConfig, ctx: SinkContext) -> OutboxSink:
        """An ``OutboxSink`` delivering through an :class:`ElasticsearchDeliverer` (no I/O here)."""
        return OutboxSink(
            ctx,
            component_type=cls.component_type,
            config=config.outbox,
            deliverer=ElasticsearchDeliverer(config),
        )
