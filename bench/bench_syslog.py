"""Syslog sink throughput: events/s to a real rsyslogd over TCP through the outbox, against the encoder alone.

Reports, per payload (RFC 5424 header + structured data, octet-counted):

* encoder alone — ECS document → framed bytes (``SyslogDeliverer.encode``): the reference, the most
  the sink could ever do on this CPU;
* through the outbox — ``OutboxSink.write`` (disk queue, fsync per batch) → delivery loop →
  TCP to a private rsyslogd (the test harness's, parsing RFC 5424 + ``mmpstrucdata`` + JSON template):
  rate at which the outbox acknowledged every event, and at which rsyslog had written them all.

The ratio is outbox / encoder. The machine is shared: figures are noisy.

Usage: .venv/bin/python bench/bench_syslog.py [--events 50000] [--payloads json,cef,leef]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sinks.syslog.rsyslog import Rsyslog

from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.outbox.contract import Pending
from wgsiem.sinks.registry import SinkContext, build_sink
from wgsiem.sinks.syslog.config import SyslogSinkConfig
from wgsiem.sinks.syslog.sink import SyslogDeliverer
from wgsiem.sources.peer_directory import PeerDirectory

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "syslog" / "events.ndjson"


def documents(n: int) -> list[dict[str, Any]]:
    base = [orjson.loads(line) for line in FIXTURE.read_bytes().splitlines()]
    out = []
    for i in range(n):
        doc = base[i % len(base)]
        out.append({**doc, "event": {**doc["event"], "id": f"{i:032x}"}})
    return out


def encoder_rate(config: SyslogSinkConfig, docs: list[dict[str, Any]]) -> float:
    deliverer = SyslogDeliverer(config, hostname="bench", procid="1")
    pending = [Pending(i, d["event"]["id"], d) for i, d in enumerate(docs)]
    start = time.perf_counter()
    for i in range(0, len(pending), 1000):
        deliverer.encode(pending[i : i + 1000])
    return len(docs) / (time.perf_counter() - start)


async def outbox_rate(
    config: SyslogSinkConfig, docs: list[dict[str, Any]], state: Path, rsyslog: Rsyslog
) -> tuple[float, float]:
    since = rsyslog.mark("tcp")
    ctx = SinkContext(TelemetryRegistry(), "syslog_bench", "bench", state, PeerDirectory())
    sink = build_sink(config, ctx)
    await sink.health_check()
    await sink.start()
    start = time.perf_counter()
    for i in range(0, len(docs), 1000):
        await sink.write([Envelope(d, EventMeta("bench", time.time_ns())) for d in docs[i : i + 1000]])
    while sink.status()["outbox"]["delivered"] < len(docs):
        await asyncio.sleep(0.005)
    delivered = time.perf_counter() - start
    path = rsyslog.output("tcp")
    while True:
        with path.open("rb") as fh:
            fh.seek(since)
            if fh.read().count(b"\n") >= len(docs):
                break
        await asyncio.sleep(0.01)
    written = time.perf_counter() - start
    await sink.close()
    return len(docs) / delivered, len(docs) / written


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--payloads", default="json,cef,leef")
    args = parser.parse_args()
    docs = documents(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        rsyslog = Rsyslog(Path(tmp) / "rsyslog")
        rsyslog.start()
        try:
            for payload in args.payloads.split(","):
                config = SyslogSinkConfig.model_validate(
                    {
                        "type": "syslog",
                        "host": "127.0.0.1",
                        "port": rsyslog.ports["tcp"],
                        "payload": payload,
                        "max_message_bytes": 16000,
                        "outbox": {"batch_max_events": 1000},
                    }
                )
                enc = encoder_rate(config, docs)
                acked, written = asyncio.run(outbox_rate(config, docs, Path(tmp) / payload, rsyslog))
                print(
                    f"{payload:5s} encoder alone {enc:10,.0f} ev/s | outbox→rsyslog acked {acked:9,.0f} ev/s "
                    f"(ratio {acked / enc:.2f}) | written by rsyslog {written:9,.0f} ev/s "
                    f"(ratio {written / enc:.2f})  [{args.events} events, shared 2-vCPU VM: noisy]"
                )
        finally:
            rsyslog.stop()


if __name__ == "__main__":
    main()
