"""The outbox's depth, lag and delivery failures on /metrics (the prometheus_exporter collector)."""

from __future__ import annotations

from pathlib import Path

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.outbox.contract import RetryableDeliveryError
from wgsiem.sinks.prometheus_exporter.collector import EventCounters, WgsiemCollector
from wgsiem.sinks.prometheus_exporter.encoder import encode_text

from .support import ScriptedDeliverer, aio, envs, make_sink, wait_for

LABELS = 'component_id="out",component_kind="sink",component_type="test"'


@aio
async def test_outbox_gauges_and_delivery_errors_are_exposed(tmp_path: Path) -> None:
    reg = TelemetryRegistry()
    sink = make_sink(tmp_path, ScriptedDeliverer(lambda b: RetryableDeliveryError("down")), registry=reg)
    await sink.start()
    await sink.write(envs(7))
    await wait_for(lambda: sink.retries >= 2)
    text = encode_text(WgsiemCollector(reg, {}, EventCounters()).families()).decode()
    await sink.close()
    assert f"wgsiem_component_outbox_queued_events{{{LABELS}}} 7.0" in text
    assert f"wgsiem_component_outbox_delivery_failing{{{LABELS}}} 1.0" in text
    assert "# TYPE wgsiem_component_outbox_oldest_age_seconds gauge" in text
    assert (
        f'wgsiem_component_errors_total{{{LABELS},error_type="RetryableDeliveryError",stage="deliver"}}'
        in text
    )


def test_no_outbox_families_without_an_outbox_sink() -> None:
    reg = TelemetryRegistry()
    reg.register("file", "sink", "ndjson")
    text = encode_text(WgsiemCollector(reg, {}, EventCounters()).families()).decode()
    assert "outbox" not in text
