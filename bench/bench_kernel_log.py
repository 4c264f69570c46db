"""Parsing speed of the ``kernel_log`` source on one core, on a realistic kern.log mix.

The file is RFC 3164 kern.log as rsyslog writes it: kernel lines of other subsystems (firewall logs,
drivers, audit) mixed with WireGuard's debug messages (handshakes, keepalives, keypairs, invalid
initiations, unallowed source IPs, rate-limit notices; IPv4 and IPv6 endpoints, `(einval)`) and
wg-quick unit output. Reported:

* parse: text line → typed record (or "not ours") through :func:`parse_line`, the pure parser — the
  figure the target (≥ 200,000 lines/s) is about;
* parse + ECS: the same plus attribution and the ECS document for every WireGuard line
  (:meth:`KernelLogSource.process`), i.e. what the live source does per line;
* floor: ``grep -c wireguard`` over the same file (C, no parsing at all) — how far a line scan can go.

Our figures are CPU time of this process (``time.process_time``: one core, not counting time other
processes on a shared machine take from us); grep's is wall time of its process. Medians of ``--runs``.

Usage: .venv/bin/python bench/bench_kernel_log.py [--lines 500000] [--wg-share 0.4] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import tempfile
import time
from datetime import UTC
from pathlib import Path

from wgsiem.errors import Location
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.kernel_log import messages
from wgsiem.sources.kernel_log.config import KernelLogSourceConfig
from wgsiem.sources.kernel_log.lines import TimeContext, parse_line
from wgsiem.sources.kernel_log.source import KernelLogSource, Record, record_from_line
from wgsiem.sources.kernel_log.tail import TailLine
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

TARGET = 200_000

OTHER = [
    "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC=198.51.100.{a} DST=203.0.113.1 LEN=40 TOS=0x00 "
    "PREC=0x00 TTL=244 ID=54321 PROTO=TCP SPT=4{a}12 DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0",
    "e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
    'audit: type=1400 audit({a}.123:45): apparmor="DENIED" operation="open" profile="snap"',
    "nf_conntrack: nf_conntrack: table full, dropping packet",
    "TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.",
    "EXT4-fs (sda1): re-mounted. Opts: errors=remount-ro",
]
WG = [
    "wireguard: wg0: Receiving keepalive packet from peer {p} (203.0.113.{a}:51820)",
    "wireguard: wg0: Sending keepalive packet to peer {p} (203.0.113.{a}:51820)",
    "wireguard: wg0: Receiving handshake initiation from peer {p} (203.0.113.{a}:51820)",
    "wireguard: wg0: Sending handshake response to peer {p} (203.0.113.{a}:51820)",
    "wireguard: wg0: Keypair {k} created for peer {p}",
    "wireguard: wg0: Keypair {k} destroyed for peer {p}",
    "wireguard: wg0: Invalid handshake initiation from 198.51.100.{a}:4{a}",
    "wireguard: wg0: Packet has unallowed src IP (10.9.0.{a}) from peer {p} (203.0.113.{a}:51820)",
    "wireguard: wg0: Receiving handshake initiation from peer {p} ([2001:db8::{a}]:51820/0%0)",
    "wireguard: wg0: Handshake for peer {p} ((einval)) did not complete after 5 seconds, retrying (try 3)",
]


def make_file(path: Path, n: int, wg_share: float, seed: int = 7) -> int:
    rng = random.Random(seed)
    wg_lines = 0
    with open(path, "w") as fh:
        for i in range(n):
            sec = i // 2000
            ts = f"Nov 25 {10 + sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"
            up = f"[{86400 + i / 1000:12.6f}]"
            a = rng.randrange(1, 250)
            if rng.random() < wg_share:
                wg_lines += 1
                if rng.random() < 0.02:
                    fh.write(
                        f"{ts} gw wg-quick[4242]: [#] wg set wg0 peer AAAA{a} allowed-ips 10.9.0.{a}/32\n"
                    )
                    continue
                peer = rng.randrange(1, 60)
                tmpl = rng.choice(WG)
                # a peer keeps its endpoint (203.0.113.<peer>); scanners come from anywhere (198.51.100.x)
                msg = tmpl.format(p=peer, a=a if "198.51.100" in tmpl else peer, k=rng.randrange(1, 10**6))
                if rng.random() < 0.01:
                    msg = "net_ratelimit: 12 callbacks suppressed"
            else:
                msg = rng.choice(OTHER).format(a=a)
            fh.write(f"{ts} gw kernel: {up} {msg}\n")
    return wg_lines


def bench_parse(lines: list[str], *, cold: bool = False) -> tuple[float, int]:
    """``cold``: no memoization at all (every message and endpoint parsed from scratch)."""
    ctx = TimeContext(tz=UTC, year=2026)
    loc = Location("kern.log", 0)
    parse = parse_line
    saved = messages.CACHE_MAX
    messages.CACHE_MAX = 0 if cold else saved
    messages._BODY_CACHE.clear()
    messages._EP_CACHE.clear()
    try:
        t0 = time.process_time()
        found = 0
        for line in lines:
            if parse(line, ctx, loc) is not None:
                found += 1
        return time.process_time() - t0, found
    finally:
        messages.CACHE_MAX = saved


def bench_full(lines: list[str], peers: PeerDirectory) -> float:
    reg = TelemetryRegistry()
    ctx = SourceContext(
        "gw", Path(tempfile.mkdtemp()), reg.register("kl", "source", "kernel_log"), peers, True
    )
    src = KernelLogSource("kl", KernelLogSourceConfig(journal=False), ctx)
    tctx = TimeContext(tz=UTC, year=2026)
    t0 = time.process_time()
    offset = 0
    for i, text in enumerate(lines, 1):
        rec = record_from_line(TailLine(text, "kern.log", offset, i), tctx, 0.0)
        offset += len(text) + 1
        if isinstance(rec, Record):
            src.process(rec, rec.line.time or 0.0)
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--wg-share", type=float, default=0.4)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kern.log"
        wg_lines = make_file(path, args.lines, args.wg_share)
        size = path.stat().st_size
        lines = path.read_text().splitlines()
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        print(f"file: {args.lines:,} lines, {size / 1e6:.1f} MB, {wg_lines:,} WireGuard/wg-quick lines")

        grep = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run(["grep", "-c", "wireguard", str(path)], check=False, capture_output=True)
            grep.append(time.perf_counter() - t0)
        parse = [bench_parse(lines)[0] for _ in range(args.runs)]
        cold = [bench_parse(lines, cold=True)[0] for _ in range(args.runs)]
        found = bench_parse(lines)[1]
        peers = PeerDirectory()
        peers.publish(
            "wg0",
            [
                PeerInfo("wg0", f"{i:043d}=", f"203.0.113.{i}:51820", (f"10.9.0.{i}/32",), None, 0.0)
                for i in range(1, 250)
            ],
            0.0,
        )
        full = [bench_full(lines, peers) for _ in range(min(args.runs, 2))]

    g, p, f = statistics.median(grep), statistics.median(parse), statistics.median(full)
    c = statistics.median(cold)
    rate = args.lines / p
    print(f"records parsed: {found:,}")
    print(f"grep -c wireguard (floor): {g:.3f} s = {args.lines / g:,.0f} lines/s")
    print(f"parse (one core, CPU time): {p:.3f} s = {rate:,.0f} lines/s")
    print(f"parse, no memoization:     {c:.3f} s = {args.lines / c:,.0f} lines/s")
    print(f"parse + attribution + ECS: {f:.3f} s = {args.lines / f:,.0f} lines/s")
    print(f"ratio vs target {TARGET:,} lines/s: {rate / TARGET:.2f}x")
    print(f"ratio vs grep floor: {p / g:.1f}x grep's time")
    print("(shared 2-vCPU VM: figures are noisy)")


if __name__ == "__main__":
    main()
