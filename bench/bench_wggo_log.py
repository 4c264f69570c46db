"""Parsing speed of the ``wggo_log`` source on one core, on a busy wireguard-go gateway's debug log.

The log is what ``LOG_LEVEL=debug`` wireguard-go writes on a gateway with 1,000 peers: mostly
keepalives and handshakes (sent/received, responses), handshake retries, invalid initiations from
scanners (IPv4 and IPv6 endpoints), UAPI reconfiguration, routine start/stop and a few ERROR lines,
~2,000 lines per second of log time. Every ``peer(ABCD…wxyz)`` names one of the 1,000 peers the
PeerDirectory holds, so resolution runs on every peer line. Reported:

* parse: text line → :class:`LogLine` → time (``LocalClock``) → :func:`classify` — the pure parser, the
  figure the target (≥ 200,000 lines/s, like the kernel log) is about;
* parse + ECS: the same plus peer resolution, event id and the ECS document
  (:meth:`WggoLogSource.process`), what the live source does per line;
* file: the whole live path in file mode — read the file (``FileFollower``), decode, parse, ECS.

Times are CPU seconds of this process (``time.process_time``), pinned to one core: on a shared VM whose
other tenants keep the cores busy, wall time measures the queue for the CPU, not this code; the wall
figure of the parse is printed too.

Usage: .venv/bin/python bench/bench_wggo_log.py [--lines 300000] [--runs 3]
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo
from wgsiem.sources.wggo_log.catalog import classify
from wgsiem.sources.wggo_log.config import WggoLogSourceConfig
from wgsiem.sources.wggo_log.follow import FileFollower
from wgsiem.sources.wggo_log.lines import LocalClock, local_zone, parse_line
from wgsiem.sources.wggo_log.source import WggoLogSource, WggoRecord

TARGET = 200_000
WALL: dict[str, float] = {}

PEER_LINES = [
    ("{p} - Sending keepalive packet", 30),
    ("{p} - Receiving keepalive packet", 30),
    ("{p} - Received handshake initiation", 8),
    ("{p} - Sending handshake response", 8),
    ("{p} - Sending handshake initiation", 4),
    ("{p} - Received handshake response", 4),
    ("{p} - Handshake did not complete after 5 seconds, retrying (try {n})", 2),
    ("{p} - Retrying handshake because we stopped hearing back after 15 seconds", 1),
    ("{p} - Removing all keys, since we haven't received a new one in 540 seconds", 1),
    ("{p} - UAPI: Updating endpoint", 1),
    ("{p} - Routine: sequential sender - started", 1),
]
OTHER_LINES = [
    ("Received invalid initiation message from 198.51.100.{a}:{port}", 3),
    ("Received invalid initiation message from [2001:db8::{a:x}]:{port}", 1),
    ("Sending cookie response for denied handshake message for 203.0.113.{a}:{port}", 1),
    ("Received packet with invalid mac1", 1),
    ("Routine: decryption worker {n} - started", 1),
    ("IPv4 packet with disallowed source address from {p}", 1),
]
ERROR_LINES = [("{p} - Failed to send data packets: no known endpoint for peer", 1)]


def keys(n: int) -> list[str]:
    rnd = random.Random(3)
    return [base64.b64encode(rnd.randbytes(32)).decode() for _ in range(n)]


def make_log(n: int, peer_keys: list[str]) -> list[str]:
    rnd = random.Random(11)
    choices = [("DEBUG", t, w) for t, w in PEER_LINES + OTHER_LINES] + [
        ("ERROR", t, w) for t, w in ERROR_LINES
    ]
    population = [(lvl, t) for lvl, t, _ in choices]
    weights = [w for _, _, w in choices]
    start = datetime(2026, 11, 25, 17, 0, 0, tzinfo=UTC).timestamp()
    out = []
    picks = rnd.choices(population, weights, k=n)
    for i, (level, tmpl) in enumerate(picks):
        k = peer_keys[rnd.randrange(len(peer_keys))]
        msg = tmpl.format(
            p=f"peer({k[:4]}…{k[39:43]})",
            n=rnd.randint(2, 20),
            a=rnd.randint(1, 254),
            port=rnd.randint(1024, 65535),
        )
        stamp = datetime.fromtimestamp(start + i // 2000, UTC).strftime("%Y/%m/%d %H:%M:%S")
        out.append(f"{level}: (wg0) {stamp} {msg}")
    return out


def make_source(state_dir: Path, peer_keys: list[str], path: str) -> WggoLogSource:
    directory = PeerDirectory()
    directory.publish(
        "wg0",
        [PeerInfo("wg0", k, f"192.0.2.{i % 250 + 1}:51820", (), None, 0.0) for i, k in enumerate(peer_keys)],
        0.0,
    )
    ctx = SourceContext(
        hostname="bench",
        state_dir=state_dir,
        telemetry=TelemetryRegistry().register("b", "source", "wggo_log"),
        peers=directory,
    )
    return WggoLogSource("b", WggoLogSourceConfig(path=path, timezone="UTC", from_start=True), ctx)


def bench_parse(lines: list[str]) -> float:
    clock = LocalClock(local_zone("UTC"))
    t0, w0 = time.process_time(), time.perf_counter()
    for text in lines:
        line = parse_line(text)
        clock.epoch(line.local_time)
        classify(line.message)
    WALL["parse"] = time.perf_counter() - w0
    return time.process_time() - t0


def bench_ecs(lines: list[str], src: WggoLogSource) -> float:
    clock = src.clock
    t0 = time.process_time()
    for i, text in enumerate(lines, 1):
        line = parse_line(text)
        src.process(WggoRecord(line, i, None), clock.epoch(line.local_time))
    return time.process_time() - t0


def bench_file(path: Path, src: WggoLogSource) -> tuple[float, int]:
    follower = FileFollower(path)
    n = 0
    t0 = time.process_time()
    while True:
        got, more = follower.read()
        for lineno, raw in got:
            n += len(src._line_envelopes(raw.decode("utf-8"), lineno, file=str(path), where=str(path)))
        if not got and not more:
            break
    return time.process_time() - t0, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    peer_keys = keys(1000)
    lines = make_log(args.lines, peer_keys)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wg0.log"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        parse = min(bench_parse(lines) for _ in range(args.runs))
        ecs = min(bench_ecs(lines, make_source(Path(tmp), peer_keys, str(path))) for _ in range(args.runs))
        file_runs = [bench_file(path, make_source(Path(tmp), peer_keys, str(path))) for _ in range(args.runs)]
        file_secs = min(t for t, _ in file_runs)
        assert all(n == len(lines) for _, n in file_runs)
    n = len(lines)
    print(f"lines: {n:,} (1,000 peers, ~2,000 lines per log second), best of {args.runs}, one core")
    rate = n / parse
    print(f"parse (line → record → time → action):   {rate:>10,.0f} lines/s per CPU second")
    print(f"  (wall clock, last run: {n / WALL['parse']:,.0f} lines/s)")
    print(f"parse + ECS (resolution, id, document):   {n / ecs:>10,.0f} lines/s")
    print(f"file mode end to end (read + parse + ECS): {n / file_secs:>10,.0f} lines/s")
    print(
        f"ratio vs target {TARGET:,} lines/s: parse {rate / TARGET:.2f}x, parse + ECS {n / ecs / TARGET:.2f}x"
    )


if __name__ == "__main__":
    main()
