"""Scrape cost of the ``prometheus_exporter`` sink against prometheus_client's own floor.

Builds a real differ state of N peers (synthetic ``wg show all dump`` text through the real parser
and differ; half the peers with a recent handshake, so sessions are open) and measures, per size and
per-peer-labels setting:

* **scrape**: ``sink.exposition()`` — the collector reading the state plus the text encoding, i.e.
  the CPU a Prometheus scrape of ``/metrics`` costs minus the socket (the fast encoder);
* **client**: ``generate_latest`` of the same collector through prometheus_client (the path of
  OpenMetrics-only clients and ``name[]`` filters);
* **floor**: ``generate_latest`` over a registry of static ``Gauge``/``Counter`` children holding the
  *same samples* (names, labels, values) — what prometheus_client needs just to serialise them,
  with nothing to read;
* the ratio scrape / floor, and one real HTTP GET of ``/metrics`` through the server.

With per-peer labels off, the sample count does not grow with N (one series set per interface), so
the floor stays tiny and the ratio shows the O(N) pass over the peers that the per-interface sums
need; with them on, both sides serialise ~4 samples per peer. The state is ``gc.freeze()``-d as the
wg_state source does after its first poll.

Process metrics are off so both sides hold the same samples. Median of ``--runs`` runs.

Usage: .venv/bin/python bench/bench_prometheus_exporter.py [--sizes 10000,100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import statistics
import sys
import time
import urllib.request
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics, generate_latest

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.prometheus_exporter.config import PrometheusExporterConfig
from wgsiem.sinks.prometheus_exporter.sink import PrometheusExporterSink
from wgsiem.sources.wg_state.capture import read_capture
from wgsiem.sources.wg_state.differ import Differ
from wgsiem.sources.wg_state.records import Fingerprinter
from wgsiem.sources.wg_state.source import PollTiming

IFACE = "wg0"
NOW = 1_800_000_000.0


class BenchSource:
    """The attributes the collector reads of a wg_state source."""

    def __init__(self, differ: Differ) -> None:
        self.differ = differ
        self.polls = 1
        self.last_poll_at = NOW
        self.last_poll = PollTiming()


def state(n: int) -> BenchSource:
    fp = Fingerprinter(b"b" * 32)
    lines = [
        f"{IFACE}\t{base64.b64encode(b'p' * 32).decode()}\t{base64.b64encode(b'P' * 32).decode()}\t51820\toff"
    ]
    for i in range(n):
        key = base64.b64encode(i.to_bytes(32, "big")).decode()
        hs = int(NOW) - 30 if i % 2 == 0 else 0
        ep = f"203.0.113.{1 + i % 250}:{10000 + i % 50000}"
        ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}/32"
        lines.append(f"{IFACE}\t{key}\t(none)\t{ep}\t{ip}\t{hs}\t{i * 1000}\t{i * 500}\toff")
    differ = Differ(fp)
    differ.update(read_capture(("\n".join(lines) + "\n").encode(), NOW, fp, "bench"))
    return BenchSource(differ)


def floor_registry(sink_registry: CollectorRegistry) -> CollectorRegistry:
    """Static metrics with exactly the samples (names, labels, values) the sink exposes."""
    disable_created_metrics()  # our counters have no _created samples either
    reg = CollectorRegistry(auto_describe=False)
    for fam in sink_registry.collect():
        if not fam.samples:
            continue
        labels = list(fam.samples[0].labels)
        if fam.type == "counter":
            c = Counter(fam.name, fam.documentation, labels, registry=reg)
            for s in fam.samples:
                if s.name.endswith("_total"):
                    (c.labels(*s.labels.values()) if labels else c).inc(s.value)
        else:
            g = Gauge(fam.name, fam.documentation, labels, registry=reg)
            for s in fam.samples:
                (g.labels(*s.labels.values()) if labels else g).set(s.value)
    return reg


def median_secs(fn: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s); shared VM: figures are noisy")
    print(
        f"{'peers':>8} {'per-peer':>8} {'samples':>8} {'scrape s':>9} {'client s':>9} {'floor s':>9} "
        f"{'ratio':>6} {'HTTP GET s':>10}",
        flush=True,
    )
    for n in (int(x) for x in args.sizes.split(",")):
        src = state(n)
        gc.freeze()
        for per_peer in (False, True):
            sink = PrometheusExporterSink.build(
                PrometheusExporterConfig(port=0, per_peer_labels=per_peer, process_metrics=False),
                TelemetryRegistry(),
                component_id="prom",
                sources={"wg": src},
            )
            try:
                body = sink.exposition()
                assert body == generate_latest(sink.metrics)
                samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
                floor = floor_registry(sink.metrics)
                fl_body = generate_latest(floor)
                fl_samples = sum(1 for line in fl_body.splitlines() if line and not line.startswith(b"#"))
                assert fl_samples == samples, (fl_samples, samples)
                scrape = median_secs(sink.exposition, args.runs)
                client = median_secs(lambda s=sink: generate_latest(s.metrics), args.runs)
                base = median_secs(lambda f=floor: generate_latest(f), args.runs)
                http = median_secs(
                    lambda s=sink: urllib.request.urlopen(s.url, timeout=120).read(), args.runs
                )
                print(
                    f"{n:>8} {'on' if per_peer else 'off':>8} {samples:>8} {scrape:>9.4f} {client:>9.4f} "
                    f"{base:>9.4f} {scrape / base:>5.2f}x {http:>10.4f}",
                    flush=True,
                )
            finally:
                asyncio.run(sink.close())


if __name__ == "__main__":
    main()
