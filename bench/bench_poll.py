"""Poll cost of the ``wg_state`` source against the time `wg show all dump` takes on the same interfaces.

Builds a real lab (wireguard-go in a network namespace), loads N synthetic peers, and between polls
changes 1% of them (new endpoint + counters move as a real roam would look in the dump). Reports, per size:

* ``wg show <ifs> dump`` wall time (the reference, median of the runs),
* our whole poll: read (UAPI socket) + split + diff + normalize to ECS, and its ratio to the reference,
* parse + diff + emit alone, and its ratio (target ≤ 0.25×),
* steady-state per-peer memory of the differ (target ≤ 1 KB per peer).

wireguard-go refuses more than 65,536 peers per interface (MaxPeers = 1 << 16), so 100k peers are
measured as two interfaces of 50k — `wg show all dump` then dumps both, as our poll reads both.

Usage: sudo .venv/bin/python bench/bench_poll.py [--sizes 10000,50000,100000] [--polls 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from wgsiem.lab.runtime import Lab
from wgsiem.lab.topology import LabSpec
from wgsiem.lab.uapi import uapi_set
from wgsiem.sources.wg_state.differ import Differ
from wgsiem.sources.wg_state.normalize import to_ecs
from wgsiem.sources.wg_state.reader import discover_uapi, kernel_wireguard_links, read_uapi_blocking
from wgsiem.sources.wg_state.records import Fingerprinter, Snapshot, SnapshotInterface
from wgsiem.sources.wg_state.uapi_parser import parse_uapi

PER_IFACE_MAX = 50_000


def wg_dump_secs(interfaces: list[str]) -> float:
    t = time.perf_counter()
    for name in interfaces:
        subprocess.run(["wg", "show", name, "dump"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def mutate(interface: str, keys: list[str], fraction: float, rnd: random.Random, round_no: int) -> None:
    """Roam 1% of the peers: a new endpoint each (what the dump shows for a roaming peer)."""
    import base64

    chosen = rnd.sample(keys, max(1, int(len(keys) * fraction)))
    lines = ["set=1"]
    for n, k in enumerate(chosen):
        lines.append(f"public_key={base64.b64decode(k).hex()}")
        lines.append("update_only=true")
        lines.append(f"endpoint=198.51.100.{1 + n % 250}:{20000 + (round_no * 997 + n) % 40000}")
    uapi_set(interface, ("\n".join(lines) + "\n\n").encode())


def poll(fp: Fingerprinter, differ: Differ, socks: dict[str, str]) -> tuple[float, float, int]:
    """One poll as the source does it; returns (read secs, parse+diff+emit secs, changes)."""
    t0 = time.perf_counter()
    # what StateReader.read() does: list sockets, check for kernel links, read each interface
    found = discover_uapi(["/var/run/wireguard", "/run/wireguard"])
    kernel_wireguard_links()
    raw = {name: read_uapi_blocking(found[name]) for name in socks}
    t1 = time.perf_counter()
    ifaces = {}
    for name, data in raw.items():
        res = parse_uapi(name, data, fp)
        assert res.info is not None
        ifaces[name] = SnapshotInterface(res.info, "userspace", "uapi", res.records)
    now = time.time()
    changes = differ.update(Snapshot(now, ifaces, []))
    docs = [to_ecs(c, hostname="bench", observed_at=now) for c in changes]
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(docs)


def bench_size(total: int, polls: int, rnd: random.Random) -> dict[str, float]:
    state = Path(tempfile.mkdtemp(prefix="wgsiem-bench-"))
    lab = Lab(LabSpec(name=f"bp{total // 1000}"[:6], clients=0), state)
    lab.up()
    try:
        ifaces = [lab.gateway_interface]
        while len(ifaces) * PER_IFACE_MAX < total:
            ifaces.append(lab.add_gateway_interface())
        kernel_wireguard_links()  # warm the rtnetlink import, so it is not counted as per-peer state
        keys: dict[str, list[str]] = {}
        left = total
        for name in ifaces:
            n = min(PER_IFACE_MAX, left)
            keys[name] = lab.add_bulk_peers(n, interface=name)
            left -= n
        socks = {n: p for n, p in discover_uapi(["/var/run/wireguard"]).items() if n in ifaces}
        fp = Fingerprinter(os.urandom(32))
        differ = Differ(fp)
        # first poll: the initial sync (every peer parsed, one peer-added event each)
        first_read, first_work, first_changes = poll(fp, differ, socks)
        # the state one differ keeps per peer: a second differ fed the same snapshot, traced alone
        snap_ifaces = {}
        for name in socks:
            res = parse_uapi(name, read_uapi_blocking(socks[name]), fp)
            assert res.info is not None
            snap_ifaces[name] = SnapshotInterface(res.info, "userspace", "uapi", res.records)
        snap = Snapshot(time.time(), snap_ifaces, [])
        probe = Differ(fp)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        changes_ = probe.update(snap)
        del changes_
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del probe, snap, snap_ifaces
        ref, ours, reads, works = [], [], [], []
        for r in range(polls):
            for name in ifaces:
                mutate(name, keys[name], 0.01, rnd, r)
            ref.append(wg_dump_secs(ifaces))
            read_s, work_s, changes = poll(fp, differ, socks)
            assert changes >= total // 100, f"expected ≥{total // 100} changes, got {changes}"
            reads.append(read_s)
            works.append(work_s)
            ours.append(read_s + work_s)
        ref_m = statistics.median(ref)
        return {
            "peers": total,
            "interfaces": len(ifaces),
            "wg_dump_secs": ref_m,
            "poll_secs": statistics.median(ours),
            "read_secs": statistics.median(reads),
            "work_secs": statistics.median(works),
            "poll_ratio": statistics.median(ours) / ref_m,
            "work_ratio": statistics.median(works) / ref_m,
            "bytes_per_peer": (after - before) / total,
            "initial_sync_secs": first_read + first_work,
            "initial_changes": first_changes,
        }
    finally:
        lab.down()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,50000,100000")
    ap.add_argument("--polls", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("error: the benchmark builds a lab in network namespaces — run it as root")
    rnd = random.Random(42)
    print(
        f"{'peers':>7} {'ifs':>3} {'wg dump':>9} {'poll':>8} {'ratio':>6} {'read':>8} {'work':>8} "
        f"{'ratio':>6} {'B/peer':>7} {'sync':>7}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        r = bench_size(size, args.polls, rnd)
        print(
            f"{r['peers']:>7} {r['interfaces']:>3} {r['wg_dump_secs']:>8.3f}s {r['poll_secs']:>7.3f}s "
            f"{r['poll_ratio']:>5.2f}× {r['read_secs']:>7.3f}s {r['work_secs']:>7.3f}s "
            f"{r['work_ratio']:>5.2f}× "
            f"{r['bytes_per_peer']:>7.0f} {r['initial_sync_secs']:>6.2f}s",
            flush=True,
        )
    print("targets: poll ≤ 1.00× of `wg show dump`; parse+diff+emit (work) ≤ 0.25×; state ≤ 1024 B/peer")


if __name__ == "__main__":
    main()
