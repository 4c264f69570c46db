"""Throughput of the pipeline into the NDJSON and DuckDB sinks, on one core.

    .venv/bin/python bench/bench_pipeline.py [--events 200000] [--batch 1000] [--store-batch 8192]
        [--cpus 0 | 0,1 | all] [--save-docs FILE | --docs FILE]

``--save-docs`` once and ``--docs`` afterwards run every comparison (before/after a change, another
checkout's code) on the same documents, and without the wg_state code of the moment.

Generates realistic ``wg_state``-shaped ECS documents (session-started/-ended, transfer with deltas,
handshake, endpoint-changed) for a few hundred peers, then measures three things, each pinned to CPU 0
(``--cpus`` changes that):

1. the store alone: ``Store.ingest`` from documents to rows, derived tables and the final checkpoint
   included (a checkpoint is deferred ingest work: DuckDB compresses and writes the rows then);
2. the NDJSON sink alone through the pipeline;
3. the full pipeline into both sinks (the figure the 50,000 events/s target is about), from the
   source's first emit to the sinks' close.

It prints events/s by wall clock and by process CPU time: on a shared VM the wall clock includes time
the hypervisor gave to someone else ("steal"), the CPU figure does not.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.runtime import Emit, Pipeline
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.duckdb_store.config import DuckdbStoreConfig
from wgsiem.sinks.duckdb_store.sink import DuckdbStoreSink
from wgsiem.sinks.duckdb_store.store import INGEST_BATCH_EVENTS, Store
from wgsiem.sinks.ndjson.config import NdjsonSinkConfig
from wgsiem.sinks.ndjson.sink import NdjsonSink
from wgsiem.sources.wg_state.differ import Differ, DiffSettings
from wgsiem.sources.wg_state.dump_parser import parse_dump
from wgsiem.sources.wg_state.normalize import to_ecs
from wgsiem.sources.wg_state.records import Fingerprinter, Snapshot

TARGET_EPS = 50_000


def make_docs(
    n: int, *, peers: int = 2000, seed: int = 1, t0: float = 1_795_621_801.0
) -> list[dict[str, Any]]:
    """``n`` real documents: synthetic `wg show all dump` snapshots run through the real Differ and
    ECS mapping, so the benchmark starts where the pipeline does — at the differ's output.

    Every 5 s of simulated time a tenth of the peers move traffic; some handshake, a few roam; idle
    peers' sessions expire. The mix is mostly ``transfer`` and ``handshake``, with session starts and
    ends and roaming, as on a busy gateway.
    """
    rnd = random.Random(seed)
    fp = Fingerprinter(b"bench-fingerprint-secret")
    differ = Differ(fp, DiffSettings(transfer_interval_secs=1.0), host="bench-gw")
    keys = [base64.b64encode(hashlib.sha256(f"peer{i}".encode()).digest()).decode() for i in range(peers)]
    priv, pub = base64.b64encode(b"\x01" * 32).decode(), base64.b64encode(b"\x02" * 32).decode()
    head = f"wgbench0\t{priv}\t{pub}\t51820\toff"
    state = {i: ["(none)", 0, 0, 0] for i in range(peers)}  # endpoint, handshake, rx, tx
    t = t0
    docs: list[dict[str, Any]] = []
    while len(docs) < n:
        t += 5.0
        for i in rnd.sample(range(peers), peers // 10):
            st = state[i]
            r = rnd.random()
            if st[0] == "(none)":
                st[0] = f"203.0.113.{i % 250 + 1}:{40_000 + i % 20_000}"
            elif r < 0.02:
                st[0] = f"198.51.100.{i % 250 + 1}:{rnd.randint(1024, 65535)}"
            if st[1] == 0 or t - st[1] >= 120:
                st[1] = int(t) - 1
            st[2] += rnd.randint(100, 200_000)
            st[3] += rnd.randint(100, 50_000)
        lines = [head]
        for i, (ep, hs, rx, tx) in state.items():
            tunnel = f"10.{i // 65536 + 200}.{i // 256 % 256}.{i % 256}/32"
            lines.append(f"wgbench0\t{keys[i]}\t(none)\t{ep}\t{tunnel}\t{hs}\t{rx}\t{tx}\toff")
        snap = Snapshot(t, parse_dump(("\n".join(lines) + "\n").encode(), fp).interfaces, [])
        docs.extend(to_ecs(c, hostname="bench-gw", observed_at=t) for c in differ.update(snap))
    return docs[:n]


class ListSource:
    """Emits prepared documents as envelopes, ``batch`` at a time, then returns."""

    component_id = "bench"
    component_type = "bench"

    def __init__(self, docs: list[dict[str, Any]], batch: int) -> None:
        self.docs = docs
        self.batch = batch

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        now = time.time_ns()
        for i in range(0, len(self.docs), self.batch):
            if stop.is_set():
                return
            await emit([Envelope(d, EventMeta("bench", now)) for d in self.docs[i : i + self.batch]])


def _rate(n: int, wall: float, cpu: float) -> str:
    return (
        f"{n / wall:>9,.0f} ev/s wall ({n / wall / TARGET_EPS:4.2f}x target), "
        f"{n / cpu:>9,.0f} ev/s cpu ({n / cpu / TARGET_EPS:4.2f}x target)"
    )


def bench_store(docs: list[dict[str, Any]], batch: int, path: Path) -> str:
    store = Store.open(path)
    w, c = time.perf_counter(), time.process_time()
    for i in range(0, len(docs), batch):
        store.ingest(docs[i : i + batch])
    store.derive()
    c1 = time.process_time() - c
    store.checkpoint()  # deferred work a long run pays too: count it
    w, c = time.perf_counter() - w, time.process_time() - c
    counts = store.counts()
    store.close()
    before = f"{len(docs) / c1:,.0f} ev/s cpu before the final checkpoint"
    return f"{_rate(len(docs), w, c)}  ({before})  rows={counts}"


def bench_pipeline(
    docs: list[dict[str, Any]], batch: int, store_batch: int, workdir: Path, *, ndjson: bool, duckdb: bool
) -> str:
    registry = TelemetryRegistry()
    sinks: list[Any] = []
    if ndjson:
        cfg = NdjsonSinkConfig(type="ndjson", path=str(workdir / "events.ndjson"), max_bytes=1 << 40)
        sinks.append(NdjsonSink.build(cfg, registry, component_id="ndjson"))
    if duckdb:
        dcfg = DuckdbStoreConfig(type="duckdb", path=str(workdir / "pipeline.duckdb"))
        sinks.append(
            DuckdbStoreSink.build(dcfg, registry, component_id="store", batch_max_events=store_batch)
        )
    pipeline = Pipeline(
        [ListSource(docs, batch)],
        [],
        sinks,
        registry,
        queue_max_events=max(10_000, 2 * store_batch),
        batch_max_events=batch,
        batch_max_wait_secs=0.05,
    )
    w, c = time.perf_counter(), time.process_time()
    asyncio.run(pipeline.run(asyncio.Event()))
    w, c = time.perf_counter() - w, time.process_time() - c
    delivered = {s.component_id: s.telemetry.sent for s in sinks}
    if any(n != len(docs) for n in delivered.values()):
        raise SystemExit(f"lost events: {delivered} of {len(docs)}; telemetry {registry.snapshot()}")
    return f"{_rate(len(docs), w, c)}  delivered={delivered}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument(
        "--docs",
        type=Path,
        help="read the documents from this NDJSON file (made by --save-docs) instead of generating them: "
        "the same input across runs, and no dependency on the wg_state code of the moment",
    )
    ap.add_argument("--save-docs", type=Path, help="write the generated documents to this NDJSON file")
    ap.add_argument("--batch", type=int, default=1_000, help="source batch / pipeline batch_max_events")
    ap.add_argument(
        "--store-batch", type=int, default=INGEST_BATCH_EVENTS, help="DuckDB sink batch_max_events"
    )
    ap.add_argument(
        "--cpus",
        default="0",
        help="CPUs to pin to, comma separated, or 'all' (DuckDB's C++ work releases the GIL and can then "
        "overlap the Python pipeline on a second core); the target is about one core: the default",
    )
    args = ap.parse_args()
    if args.cpus != "all":
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    cpus = sorted(os.sched_getaffinity(0))
    if args.docs is not None:
        with args.docs.open("rb") as fh:
            docs = [orjson.loads(line) for line, _ in zip(fh, range(args.events), strict=False)]
    else:
        docs = make_docs(args.events)
    if args.save_docs is not None:
        args.save_docs.write_bytes(b"".join(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in docs))
    # the prepared documents stand in for events arriving over time; a real process never holds
    # 200k of them, so keep the cyclic GC from re-traversing them on every collection
    gc.collect()
    gc.freeze()
    mix = Counter(d["event"]["action"] for d in docs)
    print("event mix: " + ", ".join(f"{a}={c}" for a, c in mix.most_common()), flush=True)
    print(
        f"{args.events:,} documents, ~{len(str(docs[1]))} bytes each; CPUs {cpus}; "
        f"target {TARGET_EPS:,} events/s",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="wgsiem-bench-") as tmp:
        work = Path(tmp)
        print(
            f"store.ingest only       : {bench_store(docs, args.store_batch, work / 'store.duckdb')}",
            flush=True,
        )
        print(
            f"pipeline → ndjson       : "
            f"{bench_pipeline(docs, args.batch, args.store_batch, work, ndjson=True, duckdb=False)}",
            flush=True,
        )
        (work / "events.ndjson").unlink()
        print(
            f"pipeline → ndjson+duckdb: "
            f"{bench_pipeline(docs, args.batch, args.store_batch, work, ndjson=True, duckdb=True)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
