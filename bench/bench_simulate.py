"""Simulation + evaluation cost at a given scale, against the replay of the same directory without
detection.

Reports:

* `wgsiem simulate` time and what it wrote (captures, MB, labels),
* `wgsiem rules evaluate`: replay through enrich_geo + enrich_identity + enrich_assets + detect (every
  rule), events/s,
* the reference: the same replay and enrichment without the detect stage — ratio = evaluate / replay,
  i.e. what detection and the label matching add on top of reading the telemetry.

The machine is shared: figures are noisy (run twice, compare the ratio rather than the seconds).

Usage: .venv/bin/python bench/bench_simulate.py [--peers 200] [--days 2] [--attacks all:5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from wgsiem.detect.evaluate import default_sources, default_transforms, evaluate, read_manifest, replay_alerts
from wgsiem.detect.simulate import SimulationSpec, parse_attacks, simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", type=int, default=200)
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--attacks", default="all:5")
    ap.add_argument("--poll-interval", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="write the simulation here and keep it")
    args = ap.parse_args()

    tmp = None
    if args.keep:
        out = args.keep
    else:
        tmp = tempfile.mkdtemp(prefix="bench-simulate-")
        out = Path(tmp) / "sim"
    try:
        spec = SimulationSpec(
            peers=args.peers,
            days=args.days,
            attacks=parse_attacks(args.attacks),
            seed=args.seed,
            poll_interval_secs=args.poll_interval,
        )
        t0 = time.perf_counter()
        res = simulate(spec, out)
        t_sim = time.perf_counter() - t0
        print(
            f"simulate: {args.peers:,} peers × {args.days:g} days: {t_sim:.1f}s — "
            f"{res.capture_files:,} captures ({res.capture_bytes / 1e6:.0f} MB), "
            f"{res.kernel_lines:,} kernel lines, {res.flows:,} flows, {res.labels:,} labels"
        )

        t0 = time.perf_counter()
        ev = evaluate(out)
        t_eval = time.perf_counter() - t0
        print(
            f"evaluate: {t_eval:.1f}s — {ev.events:,} events ({ev.events / t_eval:,.0f} events/s), "
            f"{ev.alerts:,} alerts, {ev.false_per_1000:.1f} false per 1,000 peer-days"
        )

        manifest = read_manifest(out)
        chain = default_transforms(out, manifest)
        chain.pop("detect")
        t0 = time.perf_counter()
        _alerts, stats = replay_alerts(
            out / "telemetry",
            sources=default_sources(manifest),
            transforms=chain,
            hostname=manifest["hostname"],
        )
        t_replay = time.perf_counter() - t0
        print(
            f"reference (replay + enrichment, no detection): {t_replay:.1f}s — "
            f"{stats['events'] / t_replay:,.0f} events/s"
        )
        print(f"ratio evaluate / replay: {t_eval / t_replay:.2f}×  (noisy shared VM)")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
