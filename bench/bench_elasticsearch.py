"""Sustained events/s to Elasticsearch ``_bulk`` through the durable outbox, and recovery after an outage.

The destination is the contract server (``tests/sinks/elasticsearch/contract_server.py``, its fast
mode: no ECS/type checks) in a *separate process* on loopback, so its cost is not charged to the
sink's core. Documents are the project's real ECS documents, each with a unique ``event.id``.

Prints:
* sustained ev/s: write → outbox on disk → deliverer → official client → server, until every event
  is acknowledged (target ≥ 30,000 ev/s);
* the ratio against encoding the same ``_bulk`` bodies alone (``bulk.encode_bulk``): how much the
  outbox, the client and HTTP add on top of the unavoidable serialization;
* recovery ev/s: the server is down while N events are written, then started; time to drain.

Usage: ``.venv/bin/python bench/bench_elasticsearch.py [--events 100000]``. The machine is shared, so
figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wgsiem.event import Envelope, EventMeta  # noqa: E402
from wgsiem.pipeline.telemetry import TelemetryRegistry  # noqa: E402
from wgsiem.sinks.elasticsearch.bulk import encode_bulk  # noqa: E402
from wgsiem.sinks.elasticsearch.config import ElasticsearchSinkConfig  # noqa: E402
from wgsiem.sinks.outbox.contract import Pending  # noqa: E402
from wgsiem.sinks.registry import SinkContext, build_sink  # noqa: E402
from wgsiem.sources.peer_directory import PeerDirectory  # noqa: E402


def documents(n: int) -> list[dict[str, Any]]:
    base = [
        orjson.loads(p.read_bytes()) for p in sorted((ROOT / "tests/fixtures/schema/ecs").glob("*/*.json"))
    ]
    out = []
    for i in range(n):
        d = dict(base[i % len(base)])
        d["event"] = {**d["event"], "id": f"{d['event']['id']}-{i}"}
        out.append(d)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PIN: tuple[int, int] | None = None
"""``--pin``: (sink core, server core) — the sink measured on one core, the server on the other."""


def start_server(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.sinks.elasticsearch.contract_server", str(port)], cwd=ROOT
    )
    if PIN is not None:
        os.sched_setaffinity(proc.pid, {PIN[1]})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("contract server did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


async def run_sink(
    port: int, docs: list[dict[str, Any]], state: Path, *, outage: bool
) -> tuple[float, dict[str, Any]]:
    cfg = ElasticsearchSinkConfig.model_validate(
        {
            "type": "elasticsearch",
            "hosts": [f"http://127.0.0.1:{port}"],
            "request_timeout_secs": 5,
            "outbox": {
                "batch_max_events": 1000,
                "retry_initial_backoff_secs": 0.05,
                "retry_max_backoff_secs": 0.2,
            },
        }
    )
    ctx = SinkContext(TelemetryRegistry(), "es", "bench", state, PeerDirectory())
    sink = build_sink(cfg, ctx)
    await sink.start()
    deliverer = sink.deliverer
    envelopes = [Envelope(d, EventMeta("bench", 0)) for d in docs]
    proc = None
    cpu0 = time.process_time()
    if outage:
        for i in range(0, len(envelopes), 1000):
            await sink.write(envelopes[i : i + 1000])
        proc = start_server(port)
        t0 = time.perf_counter()
    else:
        t0 = time.perf_counter()
        for i in range(0, len(envelopes), 1000):
            await sink.write(envelopes[i : i + 1000])
    while deliverer.counts["delivered"] + deliverer.counts["duplicate"] < len(docs):
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - t0
    status = deliverer.status()
    status["sink_cpu_secs"] = time.process_time() - cpu0
    await sink.close()
    if proc is not None:
        stop_server(proc)
    return elapsed, status


class _CannedClient:
    """Answers every _bulk with a real-shaped all-created response (no network): the deliverer's own cost."""

    async def bulk(self, body: bytes, *, pipeline: str | None) -> dict[str, Any]:
        n = body.count(b"\n") // 2
        item = {"create": {"_index": "logs-wireguard.state-default", "_id": "x", "status": 201}}
        return dict(orjson.loads(orjson.dumps({"errors": False, "items": [item] * n})))

    async def close(self) -> None:
        return None


def deliverer_alone(docs: list[dict[str, Any]]) -> float:
    """CPU seconds per event of ElasticsearchDeliverer.deliver (encode + response reading)."""
    from wgsiem.sinks.elasticsearch.deliverer import ElasticsearchDeliverer

    cfg = ElasticsearchSinkConfig.model_validate({"type": "elasticsearch"})
    deliverer = ElasticsearchDeliverer(cfg, client=_CannedClient())  # type: ignore[arg-type]
    batch = [Pending(i, d["event"]["id"], d) for i, d in enumerate(docs)]

    async def go() -> float:
        t0 = time.process_time()
        for i in range(0, len(batch), 1000):
            await deliverer.deliver(batch[i : i + 1000])
        return time.process_time() - t0

    return asyncio.run(go()) / len(docs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin this process (the sink) to CPU 0 and the contract server to CPU 1",
    )
    args = parser.parse_args()
    if args.pin:
        global PIN
        PIN = (0, 1)
        os.sched_setaffinity(0, {0})
    docs = documents(args.events)

    pendings = [Pending(i, d["event"]["id"], d) for i, d in enumerate(docs)]
    t0 = time.perf_counter()
    for i in range(0, len(pendings), 1000):
        encode_bulk(pendings[i : i + 1000], namespace="default", max_request_bytes=10 * 1024 * 1024)
    encode_secs = time.perf_counter() - t0
    encode_rate = len(docs) / encode_secs

    alone = deliverer_alone(docs)

    port = free_port()
    proc = start_server(port)
    try:
        with tempfile.TemporaryDirectory() as state:
            elapsed, status = asyncio.run(run_sink(port, docs, Path(state), outage=False))
    finally:
        stop_server(proc)
    rate = len(docs) / elapsed

    port = free_port()
    with tempfile.TemporaryDirectory() as state:
        rec_elapsed, rec_status = asyncio.run(run_sink(port, docs, Path(state), outage=True))
    rec_rate = len(docs) / rec_elapsed

    print(
        f"events: {len(docs)} real ECS documents, _bulk batches of 1000, contract server in its own process"
    )
    print(f"sustained through the outbox: {rate:,.0f} ev/s ({elapsed:.2f} s; target >= 30,000 ev/s)")
    print(f"encode the same _bulk bodies alone: {encode_rate:,.0f} ev/s")
    print(f"ratio sustained / encode-only: {rate / encode_rate:.2f}")
    cpu = status["sink_cpu_secs"]
    print(
        f"sink CPU (outbox + deliverer + client): {cpu:.2f} s = {cpu / len(docs) * 1e6:.1f} us/event"
        f" -> {len(docs) / cpu:,.0f} ev/s per core if the destination kept up"
    )
    print(
        f"deliverer alone (canned responses, no network): {alone * 1e6:.1f} us/event = {1 / alone:,.0f} ev/s"
    )
    print(f"recovery after an outage ({len(docs)} queued): {rec_rate:,.0f} ev/s ({rec_elapsed:.2f} s)")
    print(f"requests: {status['documents']['requests']} (recovery {rec_status['documents']['requests']})")
    print("note: shared 2-vCPU VM; the server and the sink compete for the same two cores; figures are noisy")


if __name__ == "__main__":
    main()
