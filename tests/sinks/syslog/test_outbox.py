"""End to end through the real outbox: pipeline ``write`` → disk → deliverer → a real rsyslogd."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.registry import SinkContext, build_sink
from wgsiem.sinks.syslog.config import SyslogSinkConfig
from wgsiem.sources.peer_directory import PeerDirectory

from .rsyslog import Rsyslog

pytestmark = pytest.mark.component

pytest.importorskip("wgsiem.sinks.outbox.sink")


def _sink(rsyslog: Rsyslog, state_dir: Path, **kw: Any) -> Any:
    config = SyslogSinkConfig.model_validate(
        {
            "type": "syslog",
            "host": "127.0.0.1",
            "port": rsyslog.ports["tcp"],
            "transport": "tcp",
            "payload": "cef",
            "reconnect_initial_backoff_secs": 0.05,
            "reconnect_max_backoff_secs": 0.2,
            "outbox": {"retry_initial_backoff_secs": 0.05, "retry_max_backoff_secs": 0.2},
            **kw,
        }
    )
    ctx = SinkContext(TelemetryRegistry(), "syslog_out", "testhost", state_dir, PeerDirectory())
    return build_sink(config, ctx)


def _envelopes(events: list[dict[str, Any]], copies: int) -> list[Envelope]:
    out = []
    for n in range(copies):
        for doc in events:
            doc = {**doc, "event": {**doc["event"], "id": f"{doc['event']['id'][:24]}{n:08d}"}}
            out.append(Envelope(doc, EventMeta("test", time.time_ns())))
    return out


async def _until(predicate: Any, timeout_secs: float, what: str) -> None:
    deadline = time.monotonic() + timeout_secs
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_outbox_delivers_to_rsyslog(rsyslog: Rsyslog, events: list[dict[str, Any]], tmp_path: Path) -> None:
    envelopes = _envelopes(events, 20)
    since = rsyslog.mark("tcp")

    async def run() -> dict[str, Any]:
        sink = _sink(rsyslog, tmp_path)
        await sink.health_check()
        await sink.start()
        await sink.write(envelopes)
        await _until(lambda: sink.status()["outbox"]["delivered"] == len(envelopes), 20, "delivery")
        status: dict[str, Any] = sink.status()
        await sink.close()
        return status

    status = asyncio.run(run())
    records = rsyslog.records("tcp", since, len(envelopes))
    ids = [r["sd"]["wgsiem@32473"]["id"] for r in records]
    assert ids == [e.data["event"]["id"] for e in envelopes]  # all, in order
    assert status["type"] == "syslog"
    assert status["outbox"]["queued_events"] == 0


def test_receiver_down_then_back_loses_nothing(
    own_rsyslog: Rsyslog, events: list[dict[str, Any]], tmp_path: Path
) -> None:
    envelopes = _envelopes(events, 10)
    own_rsyslog.stop()

    async def run() -> None:
        sink = _sink(own_rsyslog, tmp_path)
        await sink.start()
        await sink.write(envelopes)
        await _until(lambda: sink.status()["outbox"]["retries"] > 0 or sink.last_error, 10, "a failure")
        assert sink.status()["outbox"]["delivered"] == 0
        await asyncio.to_thread(own_rsyslog.start)
        await _until(lambda: sink.status()["outbox"]["delivered"] == len(envelopes), 20, "delivery")
        await sink.close()

    asyncio.run(run())
    records = own_rsyslog.records("tcp", 0, len(envelopes))
    assert sorted(r["sd"]["wgsiem@32473"]["id"] for r in records) == sorted(
        e.data["event"]["id"] for e in envelopes
    )


def test_service_builds_the_sink_from_yaml(
    rsyslog: Rsyslog, events: list[dict[str, Any]], tmp_path: Path
) -> None:
    from wgsiem.config.loader import load_config_text
    from wgsiem.service import build_sinks

    text = f"""
sinks:
  siem:
    type: syslog
    host: 127.0.0.1
    port: {rsyslog.ports["tls"]}
    transport: tls
    payload: leef
    tls: {{ca_file: "{rsyslog.tls.ca}", cert_file: "{rsyslog.tls.client_cert}",
           key_file: "{rsyslog.tls.client_key}", server_name: localhost}}
"""
    config = load_config_text(text, "test.yaml")
    registry = TelemetryRegistry()
    since = rsyslog.mark("tls")

    async def run() -> None:
        (sink,) = build_sinks(
            config.sinks, registry, peers=PeerDirectory(), sources={}, hostname="gw", state_dir=tmp_path
        )
        await sink.health_check()
        await sink.start()
        await sink.write([Envelope(d, EventMeta("test", time.time_ns())) for d in events])
        await _until(lambda: sink.status()["outbox"]["delivered"] == len(events), 20, "delivery")
        await sink.close()

    asyncio.run(run())
    assert len(rsyslog.records("tls", since, len(events))) == len(events)
    assert registry.get("siem").component_type == "syslog"


def test_truncation_is_counted_in_the_sink_telemetry(
    rsyslog: Rsyslog, events: list[dict[str, Any]], tmp_path: Path
) -> None:
    since = rsyslog.mark("tcp")

    async def run() -> Any:
        sink = _sink(rsyslog, tmp_path, payload="json", max_message_bytes=600)
        await sink.start()
        await sink.write(_envelopes(events, 1))
        await _until(lambda: sink.status()["outbox"]["delivered"] == len(events), 20, "delivery")
        await sink.close()
        return sink

    sink = asyncio.run(run())
    assert sink.telemetry.errors["message_truncated@encode"] == len(events)  # every JSON doc > 600 B
    assert sink.status()["destination"]["messages_truncated"] == len(events)
    assert all(len(r["msg"].encode()) < 600 for r in rsyslog.records("tcp", since, len(events)))
