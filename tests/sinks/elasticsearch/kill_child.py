"""Child process of the SIGKILL test: a real sink (outbox + deliverer) writing to the contract server.

``python -m tests.sinks.elasticsearch.kill_child URL STATE_DIR N`` — writes the first N real documents
(repeated with unique ids) and delivers until killed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.registry import SinkContext, build_sink
from wgsiem.sources.peer_directory import PeerDirectory

from .conftest import config, real_documents


def documents(n: int) -> list[dict]:
    base = real_documents()
    out = []
    for i in range(n):
        d = dict(base[i % len(base)])
        d["event"] = {**d["event"], "id": f"{d['event']['id']}-{i}"}
        out.append(d)
    return out


async def main(url: str, state: Path, n: int) -> None:
    cfg = config(url, outbox={"batch_max_events": 20, "retry_initial_backoff_secs": 0.05})
    ctx = SinkContext(TelemetryRegistry(), "es", "gw-test", state, PeerDirectory())
    sink = build_sink(cfg, ctx)
    await sink.write([Envelope(d, EventMeta("child", time.time_ns())) for d in documents(n)])
    print("written", flush=True)
    await sink.start()
    await asyncio.Event().wait()  # deliver until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])))
