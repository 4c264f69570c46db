"""rtnetlink messages per second through the ``host`` source, against iproute2's ``ip monitor``.

In a scratch namespace (a TUN device ``wgb0`` standing for a wireguard-go interface, a veth ``v0``) and
with ``--peers`` peers in the directory (10.200.0.0/16 /32 AllowedIPs on wgb0), ``ip -batch`` adds
``--routes`` routes on wgb0, adds ``--hijacks`` routes into peers' AllowedIPs via v0 (route poisoning),
then deletes them all. While it runs:

* ``rtmon`` (iproute2) records the messages to a file, the reference's input;
* the ``HostSource`` runs live on its own socket, and every datagram it reads is kept.

Reported:

1. live: messages the kernel sent, events the source emitted, overruns (ENOBUFS) — on a 2-vCPU VM the
   kernel's burst can outrun the receive buffer; an overrun is counted and the tables are re-read;
2. decode throughput on the very same messages (the rtmon dump), best of ``--runs``:
   ``ip monitor file <rtmon dump>`` (C: decode + print, captured) vs our parse + track + ECS
   (``HostSource.process`` on each message of the dump), messages/s and the ratio ours / ip monitor.

Usage (root): .venv/bin/python bench/bench_host.py [--routes 20000] [--hijacks 500] [--peers 1000] [--runs 3]
             [--receive-buffer-bytes 33554432]
The machine is shared: figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.host.config import HostSourceConfig
from wgsiem.sources.host.source import HostSource
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

HDR = struct.Struct("=IHHII")


def messages_in(data: bytes) -> int:
    n = off = 0
    while off + HDR.size <= len(data):
        length = HDR.unpack_from(data, off)[0]
        if length < HDR.size:
            break
        n += 1
        off += (length + 3) & ~3
    return n


def directory(peers: int) -> PeerDirectory:
    pd = PeerDirectory()
    infos = [
        PeerInfo("wgb0", f"bench-peer-{i:06d}", None, (f"10.200.{i // 250}.{i % 250 + 1}/32",), None, 0.0)
        for i in range(peers)
    ]
    pd.publish("wgb0", infos, 0.0)
    return pd


def source(ns: str, pd: PeerDirectory, tmp: Path, rcvbuf: int = 32 * 1024 * 1024) -> HostSource:
    ctx = SourceContext("bench", tmp, TelemetryRegistry().register("host", "source", "host"), pd)
    return HostSource("host", HostSourceConfig(namespace=ns, receive_buffer_bytes=rcvbuf), ctx)


def batch(routes: int, hijacks: int) -> str:
    adds = [
        f"route add 10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}/32 dev wgb0" for i in range(routes)
    ]
    poison = [f"route add 10.200.{i // 250}.{i % 250 + 1}/32 dev v0" for i in range(hijacks)]
    dels = [a.replace("route add", "route del") for a in adds + poison]
    return "\n".join(adds + poison + dels) + "\n"


async def live(
    ns: str, pd: PeerDirectory, tmp: Path, script: Path, rcvbuf: int
) -> tuple[HostSource, list[bytes], int, float]:
    src = source(ns, pd, tmp, rcvbuf)
    kept: list[bytes] = []
    real_process = src.process

    def keep(payload: bytes, at: float) -> list[Any]:
        kept.append(payload)
        return real_process(payload, at)

    src.process = keep  # type: ignore[method-assign]
    events = 0

    async def emit(b: list[Any]) -> None:
        nonlocal events
        events += len(b)

    stop = asyncio.Event()
    task = asyncio.create_task(src.run(emit, stop))
    await asyncio.wait_for(src.ready.wait(), 10)
    t0 = time.perf_counter()
    await asyncio.to_thread(subprocess.run, ["ip", "-n", ns, "-batch", str(script)], check=True)
    # the deletes end the batch: wait until the stream is quiet for 0.5 s
    last = -1
    while last != src.datagrams:
        last = src.datagrams
        await asyncio.sleep(0.5)
    took = time.perf_counter() - t0 - 0.5
    stop.set()
    await task
    return src, kept, events, took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=20000)
    ap.add_argument("--hijacks", type=int, default=500)
    ap.add_argument("--peers", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--receive-buffer-bytes", type=int, default=32 * 1024 * 1024, help="the source's config")
    args = ap.parse_args()
    ns = f"wgsiem-bench-host-{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-host-"))
    subprocess.run(["ip", "netns", "add", ns], check=True)
    rtmon = None
    try:
        for cmd in ("tuntap add dev wgb0 mode tun", "link set wgb0 up", "link add v0 type veth peer name v1",
                    "link set v0 up"):  # fmt: skip
            subprocess.run(["ip", "-n", ns, *cmd.split()], check=True)
        pd = directory(args.peers)
        script = tmp / "batch.txt"
        script.write_text(batch(args.routes, args.hijacks))
        dump = tmp / "rtmon.dump"
        rtmon = subprocess.Popen(["ip", "netns", "exec", ns, "rtmon", "file", str(dump)])
        time.sleep(0.5)
        src, kept, events, took = asyncio.run(live(ns, pd, tmp, script, args.receive_buffer_bytes))
        rtmon.terminate()
        rtmon.wait(10)
        msgs = sum(messages_in(d) for d in kept)
        changes = 2 * (args.routes + args.hijacks)
        print(
            f"live: {msgs} messages in {len(kept)} datagrams over {took:.2f}s -> {events} events "
            f"(overruns {src.overruns}); the batch made {changes} route changes"
        )

        ip_best = float("inf")
        ip_msgs = 0
        for _ in range(args.runs):
            t0 = time.perf_counter()
            out = subprocess.run(["ip", "monitor", "file", str(dump)], capture_output=True, check=True).stdout
            ip_best = min(ip_best, time.perf_counter() - t0)
            ip_msgs = out.count(b"Timestamp: ")
        # the reference's input, message by message (rtmon interleaves NLMSG_TSTAMP records, which
        # the parser skips as it skips any type it does not know)
        raw = dump.read_bytes()
        frames = []
        off = 0
        while off + HDR.size <= len(raw):
            length = HDR.unpack_from(raw, off)[0]
            if length < HDR.size:
                break
            frames.append(raw[off : off + length])
            off += (length + 3) & ~3
        ours_best = float("inf")
        for _ in range(args.runs):
            replay = source(ns, pd, tmp)
            replay.tracker.links = copy.deepcopy(src.tracker.links)
            t0 = time.perf_counter()
            n_events = 0
            for d in frames:
                n_events += len(replay.process(d, 1.0))
            ours_best = min(ours_best, time.perf_counter() - t0)
        msgs = ip_msgs
        ip_rate = ip_msgs / ip_best
        ours_rate = msgs / ours_best
        print(f"ip monitor file: {ip_msgs} messages in {ip_best:.3f}s = {ip_rate:,.0f} msg/s")
        print(f"host source (parse+track+ECS): {msgs} messages in {ours_best:.3f}s = {ours_rate:,.0f} msg/s "
              f"({n_events} events)")  # fmt: skip
        print(f"ratio ours / ip monitor: {ours_rate / ip_rate:.2f}")
    finally:
        if rtmon is not None and rtmon.poll() is None:
            rtmon.kill()
        subprocess.run(["ip", "netns", "del", ns], check=False)


if __name__ == "__main__":
    main()
