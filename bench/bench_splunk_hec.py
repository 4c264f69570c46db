"""Sustained events/s of the ``splunk_hec`` sink to the HEC contract server, against encoding alone.

The contract server (``tests/sinks/splunk_hec/contract_server.py``: token check, gzip, strict
per-event JSON validation, acks) runs in its own process, so the figure is what the sink's process
sustains. Reports, for the same events (the real ECS documents of the schema goldens, repeated with
distinct ids, default body ``cim+ecs``, default gzip level 1):

* reference — encoding the payload alone: HEC event objects (CIM mapping + ECS) joined and gzip-ed
  (level 1, the default), no I/O;
* the deliverer alone (``SplunkHecDeliverer.deliver`` in 1000-event batches);
* through the durable outbox (``OutboxSink.write`` → disk → deliverer), ``fsync: batch``, measured
  from the first write until the server has indexed every event;
* the same as events per CPU-second of the sink's process (``time.process_time``: the sink's own cost,
  whatever the contract server and the other tenants of the machine take);
* optionally (``--ack``) the outbox path with indexer acknowledgement.

The ratio printed is outbox events/s ÷ encode-only events/s. The machine is shared: figures are noisy.

Usage: .venv/bin/python bench/bench_splunk_hec.py [--events 50000] [--ack]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gzip
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sinks.splunk_hec.support import TOKEN, config, envelopes, real_documents  # noqa: E402

from wgsiem.pipeline.telemetry import TelemetryRegistry  # noqa: E402
from wgsiem.sinks.outbox.contract import Pending  # noqa: E402
from wgsiem.sinks.registry import SinkContext, build_sink  # noqa: E402
from wgsiem.sinks.splunk_hec.deliverer import SplunkHecDeliverer  # noqa: E402
from wgsiem.sinks.splunk_hec.encoder import HecEncoder  # noqa: E402
from wgsiem.sources.peer_directory import PeerDirectory  # noqa: E402

SERVER = """
import asyncio, sys
sys.path[:0] = [{root!r}]
from tests.sinks.splunk_hec.contract_server import HecServer, Token

async def main():
    server = HecServer([Token({token!r}, ack={ack!r})])
    await server.start()
    from aiohttp import web
    async def count(request):
        return web.json_response({{"events": len(server.events)}})
    app = web.Application()
    app.router.add_get("/count", count)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(server.port, site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def documents(n: int) -> list[dict[str, Any]]:
    base = real_documents()
    out = []
    for i in range(n):
        doc = copy.deepcopy(base[i % len(base)])
        doc["event"]["id"] = f"{doc['event']['id'][:24]}{i:08x}"
        out.append(doc)
    return out


def encode_only(docs: list[dict[str, Any]], batch: int) -> float:
    enc = HecEncoder(source="wgsiem", default_host="bench")
    mapper = enc.mapper()
    t0 = time.perf_counter()
    for i in range(0, len(docs), batch):
        body = b"\n".join(enc.encode(d, mapper) for d in docs[i : i + batch])
        gzip.compress(body, compresslevel=1, mtime=0)
    return len(docs) / (time.perf_counter() - t0)


class Server:
    def __init__(self, ack: bool) -> None:
        code = SERVER.format(root=str(ROOT), token=TOKEN, ack=ack)
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        hec, ctl = self.proc.stdout.readline().split()
        self.url, self.ctl = f"http://127.0.0.1:{hec}", f"http://127.0.0.1:{ctl}/count"

    async def count(self, session: aiohttp.ClientSession) -> int:
        async with session.get(self.ctl) as resp:
            return int((await resp.json())["events"])

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


async def deliverer_alone(docs: list[dict[str, Any]], batch: int) -> float:
    server = Server(ack=False)
    d = SplunkHecDeliverer(config(server.url), hostname="bench")
    try:
        await d.start()
        await d.health_check()
        t0 = time.perf_counter()
        for i in range(0, len(docs), batch):
            part = docs[i : i + batch]
            await d.deliver([Pending(i + j, p["event"]["id"], p) for j, p in enumerate(part)])
        return len(docs) / (time.perf_counter() - t0)
    finally:
        await d.close()
        server.stop()


async def through_outbox(docs: list[dict[str, Any]], batch: int, ack: bool) -> tuple[float, float]:
    """(events/s wall clock until all indexed, events per CPU-second of this process)."""
    server = Server(ack=ack)
    with tempfile.TemporaryDirectory() as state:
        cfg = config(server.url, ack=ack, ack_poll_interval_secs=0.05, outbox={"batch_max_events": batch})
        sink = build_sink(
            cfg, SinkContext(TelemetryRegistry(), "splunk", "bench", Path(state), PeerDirectory())
        )
        envs = envelopes(docs)
        async with aiohttp.ClientSession() as session:
            try:
                await sink.health_check()
                await sink.start()
                t0, c0 = time.perf_counter(), time.process_time()
                for i in range(0, len(envs), batch):
                    await sink.write(envs[i : i + batch])
                while await server.count(session) < len(docs):
                    await asyncio.sleep(0.02)
                took, cpu = time.perf_counter() - t0, time.process_time() - c0
                return len(docs) / took, len(docs) / cpu
            finally:
                await sink.close()
                server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument(
        "--ack", action="store_true", help="also measure the outbox path with indexer acknowledgement"
    )
    args = ap.parse_args()
    docs = documents(args.events)
    size = sum(len(orjson.dumps(d)) for d in docs[:1000]) / 1000
    print(
        f"{args.events} events (real ECS documents, {size:.0f} bytes of ECS JSON each), body cim+ecs, gzip 1"
    )
    ref = encode_only(docs, args.batch)
    print(f"reference: encode + gzip alone          {ref:>10,.0f} events/s")
    alone = asyncio.run(deliverer_alone(docs, args.batch))
    print(f"deliverer alone -> contract server       {alone:>10,.0f} events/s")
    rate, per_cpu = asyncio.run(through_outbox(docs, args.batch, ack=False))
    print(f"outbox -> deliverer -> contract server   {rate:>10,.0f} events/s wall")
    print(f"  sink process CPU (one core)            {per_cpu:>10,.0f} events per CPU-second")
    print(f"ratio outbox / encode-only: {rate / ref:.2f} wall, {per_cpu / ref:.2f} per CPU-second")
    if args.ack:
        rate_ack, cpu_ack = asyncio.run(through_outbox(docs, args.batch, ack=True))
        print(
            f"outbox with indexer ack                  {rate_ack:>10,.0f} events/s wall, {cpu_ack:,.0f}/CPU-s"
        )
    print("(shared 2-vCPU VM: figures are noisy; the contract server runs in its own process)")


if __name__ == "__main__":
    main()
