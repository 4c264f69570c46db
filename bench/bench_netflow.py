"""Decode rate of the ``netflow`` source against nfdump reading the same flows, on one core.

1. Writes a capture of synthetic tunnel traffic (``--flows`` distinct IPv4 UDP/TCP flows between
   10.222.x.y addresses, three packets each; raw-IP link type, as tcpdump writes on a WireGuard
   interface).
2. Real ``softflowd -r`` turns it into NetFlow v9 and IPFIX export datagrams (collected on loopback).
3. Sends the same datagrams to a real ``nfcapd`` and times ``nfdump -r FILE -q -o csv`` reading the
   resulting file (the reference: nfdump's C decoder of its own file format, printing every record).
4. Measures, in this one process (one core): ``decode`` alone (datagram → typed records, the hot
   path) and ``process`` (decode + ECS document with Community ID and peer attribution), over the
   whole stream with a warm template cache, ``--rounds`` times interleaved with nfdump's runs.

Rates are records per **CPU second** (``process_time`` for us, ``RUSAGE_CHILDREN`` for nfdump), so the
other engineers' load on the shared VM distorts them less than wall time would; still noisy.

Usage: sudo .venv/bin/python bench/bench_netflow.py [--flows 30000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dpkt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.sources.netflow.exporters

from tests.sources.netflow.exporters import Nfcapd, UdpSink, replay_to, softflowd_replay

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.netflow.config import NetflowSourceConfig
from wgsiem.sources.netflow.decoder import decode
from wgsiem.sources.netflow.records import Datagram
from wgsiem.sources.netflow.source import NetflowSource
from wgsiem.sources.netflow.templates import TemplateCache
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo


def write_traffic(path: Path, flows: int, seed: int = 7) -> None:
    """``flows`` distinct flows, 3 packets each, interleaved, 1 ms apart, in a raw-IP pcap."""
    rnd = random.Random(seed)
    t0 = time.time() - 60
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_RAW, snaplen=65535)
        pkts = []
        for i in range(flows):
            src = socket.inet_aton(f"10.222.{1 + i % 200}.{10 + i // 200 % 200}")
            dst = socket.inet_aton(f"10.222.0.{1 + rnd.randrange(3)}")
            sport, dport = 1024 + i % 60000, rnd.choice((53, 443, 9, 5001))
            tcp = i % 2 == 0
            for k in range(3):
                if tcp:
                    l4: dpkt.Packet = dpkt.tcp.TCP(
                        sport=sport, dport=dport, flags=0x18, seq=k, data=b"x" * 99
                    )
                    proto = 6
                else:
                    l4 = dpkt.udp.UDP(sport=sport, dport=dport, data=b"y" * 200)
                    l4.ulen = len(l4)
                    proto = 17
                ip = dpkt.ip.IP(src=src, dst=dst, p=proto, data=l4, ttl=64)
                ip.len = len(ip)
                pkts.append((t0 + (i * 3 + k) * 0.0002, bytes(ip)))
        for ts, raw in pkts:
            w.writepkt(raw, ts)


def exports(traffic: Path, version: str, work: Path) -> list[bytes]:
    sink = UdpSink()
    try:
        softflowd_replay(traffic, sink.port, version, work / f"sf{version}", "-m", "1000000")
        time.sleep(0.5)
    finally:
        sink.close()
    return sink.datagrams


def nfdump_file(datagrams: list[bytes], work: Path) -> Path:
    nfcapd = Nfcapd(work / f"nfcapd-{time.monotonic_ns()}")
    replay_to(nfcapd.port, datagrams)
    time.sleep(1.0)
    return nfcapd.stop()


def nfdump_cpu(path: Path) -> tuple[int, float]:
    """Records nfdump printed and the CPU seconds (user + system) it used doing so."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["nfdump", "-q", "-r", str(path), "-o", "csv"], capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out.stdout.count(b"\n"), (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu(fn: Callable[[], object]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def measure(datagrams: list[bytes], nf_path: Path, rounds: int) -> dict[str, float]:
    """Interleaved rounds (ours, nfdump, ours...) of CPU time, so load on the shared VM hits both alike."""
    dgs = [Datagram("127.0.0.1", 9995, d, 0.0) for d in datagrams]
    cache = TemplateCache()
    at = time.time()
    n = sum(len(decode(d.data, d.exporter, cache, at).records) for d in dgs)  # warm: learn templates
    peers = PeerDirectory()
    peers.publish(
        "wg0",
        [
            PeerInfo("wg0", f"key{i}", f"203.0.113.{i % 200}:51820", (f"10.222.{i}.0/24",), None, 0.0)
            for i in range(1, 201)
        ],
        at,
    )
    tel = TelemetryRegistry().register("nf", "source", "netflow")
    src = NetflowSource("nf", NetflowSourceConfig(), SourceContext("bench", Path("/tmp"), tel, peers))
    for d in dgs:
        src.process(d, at)
    dec, proc, nf, nf_n = [], [], [], 0
    for _ in range(rounds):
        dec.append(cpu(lambda: [decode(d.data, d.exporter, cache, at) for d in dgs]))
        proc.append(cpu(lambda: [src.process(d, at) for d in dgs]))
        nf_n, secs = nfdump_cpu(nf_path)
        nf.append(secs)
    return {
        "records": n,
        "nfdump_records": nf_n,
        "decode": n / statistics.median(dec),
        "process": n / statistics.median(proc),
        "nfdump": nf_n / statistics.median(nf),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=30_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        traffic = work / "traffic.pcap"
        write_traffic(traffic, args.flows)
        print(f"traffic: {args.flows} flows, {args.flows * 3} packets (synthetic tunnel capture)")
        for version, label in (("9", "NetFlow v9"), ("10", "IPFIX")):
            dgs = exports(traffic, version, work)
            m = measure(dgs, nfdump_file(dgs, work), args.rounds)
            print(
                f"{label}: softflowd sent {len(dgs)} datagrams, {m['records']:.0f} flow records "
                f"(nfdump read {m['nfdump_records']:.0f})\n"
                f"  decode only          {m['decode']:>10,.0f} records/s\n"
                f"  decode + ECS events  {m['process']:>10,.0f} records/s\n"
                f"  nfdump -r -o csv     {m['nfdump']:>10,.0f} records/s\n"
                f"  ratio to nfdump: decode {m['decode'] / m['nfdump']:.2f}x, "
                f"events {m['process'] / m['nfdump']:.2f}x"
            )
    print("(records per CPU-second on one core, median of interleaved rounds; shared 2-vCPU VM: noisy)")


if __name__ == "__main__":
    main()
