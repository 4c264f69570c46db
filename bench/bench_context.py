"""NDJSON records per second ingested by the ``context`` source over HTTP, against a raw aiohttp echo.

Both servers run in a child process on 127.0.0.1 and get the very same requests from an aiohttp client
in this process (``--concurrency`` requests in flight, ``--bodies`` bodies of ``--records`` identity
records each, bearer token sent to both):

* reference: a bare aiohttp handler that reads the body and echoes it back — the transport's cost;
* ours: ``ContextSource`` — token check, NDJSON split, pydantic validation, ECS normalisation, peer
  attribution against a 1,000-peer directory, emit into a counting sink.

Prints records/s for each and the ratio ours / echo. Usage:
.venv/bin/python bench/bench_context.py [--records 1000] [--bodies 60] [--concurrency 4]
The machine is a shared 2-vCPU VM: figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.context.config import ContextHttpConfig, ContextSourceConfig
from wgsiem.sources.context.source import ContextSource
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

TOKEN = "bench-token-0123456789abcdef"


def body(records: int, salt: int) -> bytes:
    lines = [
        orjson.dumps(
            {
                "time": f"2026-11-25T09:{(i // 60) % 60:02d}:{i % 60:02d}.{salt % 1000:03d}Z",
                "provider": "okta",
                "user": f"user{i % 500}",
                "action": "mfa",
                "result": "success" if i % 7 else "failure",
                "factor": "push",
                "source_ip": f"10.200.{(i // 250) % 4}.{i % 250 + 1}",
                "id": f"evt-{salt}-{i}",
            }
        )
        for i in range(records)
    ]
    return b"\n".join(lines) + b"\n"


async def serve_echo(port_q: Any, stop_ev: Any) -> None:
    async def echo(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.Response(status=401)
        return web.Response(body=await request.read())

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/ingest/{kind}", echo)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port_q.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    await asyncio.to_thread(stop_ev.wait)
    await runner.cleanup()


async def serve_context(port_q: Any, stop_ev: Any) -> None:
    pd = PeerDirectory()
    peers = [
        PeerInfo("wg0", f"bench-peer-{i:06d}", None, (f"10.200.{i // 250}.{i % 250 + 1}/32",), None, 0.0)
        for i in range(1000)
    ]
    pd.publish("wg0", peers, 0.0)
    tel = TelemetryRegistry().register("ctx", "source", "context")
    ctx = SourceContext("bench", Path(tempfile.mkdtemp()), tel, pd)
    http = ContextHttpConfig(listen_port=0, token=TOKEN, max_body_bytes=64 * 1024 * 1024)  # type: ignore[arg-type]
    src = ContextSource("ctx", ContextSourceConfig(http=http), ctx)

    async def emit(batch: list[Any]) -> None:
        return None

    stop = asyncio.Event()
    task = asyncio.create_task(src.run(emit, stop))
    await src.ready.wait()
    port_q.put(src.bound_port)
    await asyncio.to_thread(stop_ev.wait)
    stop.set()
    await task


def child(which: str, port_q: Any, stop_ev: Any) -> None:
    asyncio.run((serve_context if which == "context" else serve_echo)(port_q, stop_ev))


async def drive(port: int, bodies: list[bytes], concurrency: int, records: int) -> float:
    url = f"http://127.0.0.1:{port}/v1/ingest/identity"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
    queue = list(bodies)
    async with aiohttp.ClientSession() as s:
        async with s.post(url, data=bodies[0], headers=headers) as r:  # warm-up
            await r.read()

        async def worker() -> None:
            while queue:
                b = queue.pop()
                async with s.post(url, data=b, headers=headers) as r:
                    await r.read()
                    assert r.status == 200, r.status

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) * records / (time.perf_counter() - t0)


def measure(which: str, bodies: list[bytes], concurrency: int, records: int) -> float:
    port_q: Any = mp.Queue()
    stop_ev: Any = mp.Event()
    proc = mp.Process(target=child, args=(which, port_q, stop_ev))
    proc.start()
    try:
        port = port_q.get(timeout=30)
        return asyncio.run(drive(port, bodies, concurrency, records))
    finally:
        stop_ev.set()
        proc.join(30)
        if proc.is_alive():
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1000, help="records per request body")
    ap.add_argument("--bodies", type=int, default=60)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    bodies = [body(args.records, i) for i in range(args.bodies)]
    size = sum(len(b) for b in bodies) / len(bodies)
    echo = measure("echo", bodies, args.concurrency, args.records)
    ours = measure("context", bodies, args.concurrency, args.records)
    print(
        f"{args.bodies} bodies x {args.records} records ({size / 1024:.0f} KiB each), "
        f"concurrency {args.concurrency}"
    )
    print(f"raw aiohttp echo: {echo:,.0f} records/s")
    print(f"context source:   {ours:,.0f} records/s (validated, normalised, attributed, emitted)")
    print(f"ratio ours / echo: {ours / echo:.3f}")


if __name__ == "__main__":
    main()
