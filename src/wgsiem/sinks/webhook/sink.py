"""The ``webhook`` sink: an :class:`~wgsiem.sinks.outbox.sink.OutboxSink` in front of a
:class:`~wgsiem.sinks.webhook.deliverer.WebhookDeliverer`."""

from __future__ import annotations

from wgsiem.sinks.outbox.sink import OutboxSink
from wgsiem.sinks.registry import SinkContext

from .config import WebhookSinkConfig
from .deliverer import WebhookDeliverer

__all__ = ["WebhookSink"]


class WebhookSink:
    """Builder only: the runtime object is the :class:`OutboxSink` it returns."""

    component_type = "webhook"

    @classmethod
    def build(cls, config: WebhookSinkConfig, ctx: SinkContext) -> OutboxSink:
        return OutboxSink(
            ctx, component_type=cls.component_type, config=config.outbox, deliverer=WebhookDeliverer(config)
        )
