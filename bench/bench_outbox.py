"""Throughput of the durable outbox (write + deliver), on one core, against the NDJSON sink.

    .venv/bin/python bench/bench_outbox.py [--events 100000] [--batch 1000] [--cpus 0]

Measures, with fresh ~700-byte ECS documents per scenario (the NDJSON encoding is memoized on an
envelope, so reusing envelopes would flatter every scenario after the first):

1. the reference: the same documents written through ``NdjsonSink`` to a file (write + fsync at close);
2. the outbox to a null deliverer, ``fsync: batch`` (the default) and ``fsync: never`` — from the first
   write until the last record is acknowledged;
3. the outbox to the webhook sink posting to a minimal aiohttp receiver on loopback (the receiver runs
   in its own process on another CPU when there is one; wgsiem is pinned to ``--cpus``);
4. recovery after an outage: records written while the destination is down, then the destination comes
   back; the drain rate is the sink's own ``status()["outbox"]["recovery"]`` figure (null deliverer and
   webhook).

Prints events/s and the ratio against (1). The machine is a shared VM: figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from wgsiem.event import Envelope, EventMeta, event_id
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.ndjson.config import NdjsonSinkConfig
from wgsiem.sinks.ndjson.sink import NdjsonSink
from wgsiem.sinks.outbox.config import OutboxConfig
from wgsiem.sinks.outbox.contract import DeliveryReport, Pending, RetryableDeliveryError
from wgsiem.sinks.outbox.sink import OutboxSink
from wgsiem.sinks.registry import SinkContext
from wgsiem.sinks.webhook.config import WebhookSinkConfig
from wgsiem.sinks.webhook.sink import WebhookSink
from wgsiem.sources.peer_directory import PeerDirectory

RECEIVER = textwrap.dedent(
    """
    import sys, orjson
    from aiohttp import web
    count = 0
    async def hook(req):
        global count
        body = await req.read()
        doc = orjson.loads(body)
        count += len(doc) if isinstance(doc, list) else 1
        return web.json_response({"n": count})
    async def head(req):
        return web.Response()
    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/hook", hook)
    app.router.add_route("HEAD", "/hook", head)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
    """
)


def batches(n: int, size: int, seed: int) -> list[list[Envelope]]:
    out, cur = [], []
    for i in range(n):
        doc = {
            "@timestamp": f"2026-11-25T21:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
            "event": {
                "kind": "event",
                "category": ["network", "session"],
                "type": ["start"],
                "action": "session-started",
                "dataset": "wireguard.state",
                "module": "wireguard",
                "id": event_id("bench", seed, i),
                "created": "2026-11-25T21:00:00.000Z",
            },
            "observer": {
                "hostname": "gw1",
                "type": "vpn",
                "vendor": "WireGuard",
                "product": "wgsiem",
                "ingress": {"interface": {"name": "wg0"}},
            },
            "source": {"ip": f"198.51.100.{i % 250 + 1}", "port": 40000 + i % 20000},
            "destination": {"ip": "203.0.113.1", "port": 51820},
            "related": {"ip": [f"198.51.100.{i % 250 + 1}", "10.222.0.7"]},
            "wireguard": {
                "interface": "wg0",
                "peer": {"public_key": f"k{i % 500:04d}" + "A" * 39, "name": f"laptop-{i % 500}"},
                "session": {"id": event_id("session", i), "rx_bytes": i * 1500, "tx_bytes": i * 900},
            },
        }
        cur.append(Envelope(doc, EventMeta("bench", time.time_ns())))
        if len(cur) == size:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


class NullDeliverer:
    def __init__(self) -> None:
        self.down = False
        self.n = 0

    async def start(self) -> None: ...

    async def health_check(self) -> None: ...

    async def deliver(self, batch: list[Pending]) -> DeliveryReport:
        if self.down:
            raise RetryableDeliveryError("down")
        self.n += len(batch)
        return DeliveryReport()

    async def close(self) -> None: ...

    def status(self) -> dict[str, Any]:
        return {}


def ctx(state: Path, sid: str) -> SinkContext:
    return SinkContext(TelemetryRegistry(), sid, "gw1", state, PeerDirectory())


async def drained(sink: OutboxSink, total: int, timeout: float = 600) -> None:
    t0 = time.monotonic()
    while sink.delivered < total:
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"not drained: {sink.status()['outbox']}")
        await asyncio.sleep(0.002)


async def run_ndjson(tmp: Path, data: list[list[Envelope]]) -> float:
    sink = NdjsonSink.build(
        NdjsonSinkConfig(type="ndjson", path=str(tmp / "out.ndjson"), max_bytes=1 << 40), TelemetryRegistry()
    )
    t0 = time.perf_counter()
    for b in data:
        await sink.write(b)
    await sink.flush()
    await sink.close()
    return time.perf_counter() - t0


async def run_outbox(tmp: Path, data: list[list[Envelope]], deliverer: Any, sid: str, **cfg: Any) -> float:
    sink = OutboxSink(ctx(tmp, sid), component_type="bench", config=OutboxConfig(**cfg), deliverer=deliverer)
    await sink.health_check()
    await sink.start()
    total = sum(len(b) for b in data)
    t0 = time.perf_counter()
    for b in data:
        await sink.write(b)
    await drained(sink, total)
    took = time.perf_counter() - t0
    await sink.close()
    return took


async def run_recovery(tmp: Path, data: list[list[Envelope]], sid: str, port: int | None) -> dict[str, Any]:
    total = sum(len(b) for b in data)
    cfg = {"retry_initial_backoff_secs": 0.05, "retry_max_backoff_secs": 0.2, "fsync": "never"}
    rx = None
    if port is None:
        null = NullDeliverer()
        null.down = True
        sink = OutboxSink(ctx(tmp, sid), component_type="bench", config=OutboxConfig(**cfg), deliverer=null)
    else:
        wcfg = WebhookSinkConfig(
            type="webhook", url=f"http://127.0.0.1:{port}/hook", outbox=cfg, health_check="none"
        )
        sink = WebhookSink.build(wcfg, ctx(tmp, sid))
    await sink.start()
    for b in data:
        await sink.write(b)
    while sink.status()["outbox"]["state"] != "retrying":
        await asyncio.sleep(0.01)
    if port is None:
        null.down = False
    else:
        rx = start_receiver(port)
    await drained(sink, total)
    while sink.recovery is None:
        await asyncio.sleep(0.01)
    rec = dict(sink.recovery)
    await sink.close()
    if rx is not None:
        rx.kill()
        rx.wait()
    return rec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_receiver(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    others = sorted(os.sched_getaffinity(0) ^ set(range(os.cpu_count() or 1)))
    if others:
        os.sched_setaffinity(proc.pid, {others[0]})
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--cpus", default="0")
    args = ap.parse_args()
    if args.cpus != "all":
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    n, size = args.events, args.batch
    tmp = Path(tempfile.mkdtemp(prefix="bench_outbox_"))
    rows: list[tuple[str, float]] = []

    def report(name: str, secs: float, count: int = n) -> None:
        rows.append((name, count / secs))
        print(f"{name:<46} {count / secs:>10,.0f} events/s  ({secs:.2f}s)", flush=True)

    report("ndjson sink (reference)", await run_ndjson(tmp, batches(n, size, 1)))
    report(
        "outbox -> null, fsync batch",
        await run_outbox(tmp, batches(n, size, 2), NullDeliverer(), "n1", batch_max_events=size),
    )
    report(
        "outbox -> null, fsync never",
        await run_outbox(
            tmp, batches(n, size, 3), NullDeliverer(), "n2", batch_max_events=size, fsync="never"
        ),
    )
    port = free_port()
    rx = start_receiver(port)
    try:
        wcfg = WebhookSinkConfig(
            type="webhook", url=f"http://127.0.0.1:{port}/hook", outbox={"batch_max_events": size}
        )
        sink = WebhookSink.build(wcfg, ctx(tmp, "w1"))
        await sink.health_check()
        await sink.start()
        data = batches(n, size, 4)
        t0 = time.perf_counter()
        for b in data:
            await sink.write(b)
        await drained(sink, n)
        report("outbox -> webhook (loopback), fsync batch", time.perf_counter() - t0)
        await sink.close()
    finally:
        rx.kill()
        rx.wait()
    base = rows[0][1]
    print("\nratio against the NDJSON sink:")
    for name, eps in rows[1:]:
        print(f"  {name:<44} {eps / base:.2f}x")
    rec = await run_recovery(tmp, batches(n, size, 5), "r1", None)
    print(
        f"\nrecovery after an outage, null deliverer: backlog {int(rec['backlog_events'])} drained at "
        f"{rec['events_per_sec']:,.0f} events/s"
    )
    rec = await run_recovery(tmp, batches(n, size, 6), "r2", free_port())
    print(
        f"recovery after an outage, webhook: backlog {int(rec['backlog_events'])} drained at "
        f"{rec['events_per_sec']:,.0f} events/s (read back from disk: records decoded again)"
    )


if __name__ == "__main__":
    asyncio.run(main())
