"""Time to apply *and verify* a ``block_endpoint`` in the lab, against a bare ``nft add element``.

A lab (wireguard-go gateway in a network namespace, 1 client) is built; then, for ``--runs`` distinct
addresses from 198.51.100.0/24:

* reference: ``ip netns exec <gw> nft add element inet wgsiem blocked4 { <ip> timeout 900s }`` — one
  process, no layout, no read-back (what a hand-written ban script does);
* ours: ``BlockEndpoint.apply`` through ``LocalExecutor(<gw>)`` — one ``nft -f -`` transaction
  (layout + rules + refreshed element) and one ``nft -j list table`` read-back parsed with orjson;
* ours incl. plan: ``plan`` (which asks ``wg show <if> listen-port`` and the live peers) + ``apply``.

Prints medians and the ratio ours / reference. The issue's target is alert → contained ≤ 1 s (median).
Usage: .venv/bin/python bench/bench_respond_actions.py [--runs 25]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from wgsiem.lab.runtime import Lab
from wgsiem.lab.topology import LabSpec
from wgsiem.respond.actions.base import ActionContext, Target
from wgsiem.respond.actions.block import BlockEndpoint
from wgsiem.respond.executors import LocalExecutor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=25)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-respond-"))
    with Lab(LabSpec(name="bnrsp", clients=1), tmp / "lab") as lab:
        ns, iface = lab.gateway_namespace, lab.gateway_interface
        ctx = ActionContext(LocalExecutor(ns), False, tmp / "state", tmp / "case", "bench")
        action = BlockEndpoint()

        async def ours() -> tuple[list[float], list[float]]:
            apply_t, full_t = [], []
            for n in range(args.runs):
                target = Target(interface=iface, endpoint_ip=f"198.51.100.{100 + n}")
                t0 = time.perf_counter()
                plan = await action.plan(target, {"ttl_secs": 900}, ctx)
                t1 = time.perf_counter()
                res = await action.apply(plan, ctx)
                t2 = time.perf_counter()
                assert res.ok and res.verified, res.error
                apply_t.append(t2 - t1)
                full_t.append(t2 - t0)
            return apply_t, full_t

        apply_t, full_t = asyncio.run(ours())  # also creates the table the reference adds to
        ref = []
        for n in range(args.runs):
            ip = f"198.51.100.{200 + n % 50}"
            t0 = time.perf_counter()
            subprocess.run(
                ["ip", "netns", "exec", ns, "nft", "add", "element", "inet", "wgsiem", "blocked4",
                 f"{{ {ip} timeout 900s }}"],
                check=True,
            )  # fmt: skip
            ref.append(time.perf_counter() - t0)
    r, a, f = (statistics.median(x) * 1000 for x in (ref, apply_t, full_t))
    print(f"runs: {args.runs} (shared 2-vCPU VM: figures are noisy)")
    print(f"reference  bare `nft add element` (ip netns exec)  median {r:7.2f} ms")
    print(f"ours       BlockEndpoint.apply (+verify)           median {a:7.2f} ms   ratio {a / r:5.2f}x")
    print(f"ours       plan + apply (+verify)                  median {f:7.2f} ms   ratio {f / r:5.2f}x")


if __name__ == "__main__":
    main()
