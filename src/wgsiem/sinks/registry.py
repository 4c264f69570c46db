"""Sink type name → class, imported lazily, and the context every registry-built sink receives.

The first sinks (``ndjson``, ``duckdb_store``, ``prometheus_exporter``) are built by
:func:`wgsiem.service.build_sinks` directly; every later sink is listed here and built as
``Cls.build(config, ctx)``, which returns an object satisfying :class:`wgsiem.pipeline.runtime.Sink`
(with ``component_id``, ``component_type`` and a ``telemetry`` registered through ``ctx.registry``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory

__all__ = ["SINK_CLASSES", "SinkContext", "build_sink"]

SINK_CLASSES: dict[str, str] = {
    "elasticsearch": "wgsiem.sinks.elasticsearch.sink:ElasticsearchSink",
    "splunk_hec": "wgsiem.sinks.splunk_hec.sink:SplunkHecSink",
    "syslog": "wgsiem.sinks.syslog.sink:SyslogSink",
    "webhook": "wgsiem.sinks.webhook.sink:WebhookSink",
    "respond": "wgsiem.respond.sink:RespondSink",
}


@dataclass(slots=True)
class SinkContext:
    registry: TelemetryRegistry
    component_id: str
    hostname: str
    state_dir: Path
    """The service's private state directory (mode 0700): outboxes live under ``state_dir/outbox/<id>``."""
    peers: PeerDirectory
    sources: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def build_sink(config: Any, ctx: SinkContext) -> Any:
    module, _, name = SINK_CLASSES[config.type].partition(":")
    return getattr(importlib.import_module(module), name).build(config, ctx)
