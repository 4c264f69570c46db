"""Throughput of the detect stage with every built-in rule and detector, against a pass-through transform.

The event mix is what a gateway with ``--peers`` active peers produces, in the shapes of the real
fixtures (``tests/fixtures/schema/ecs``) with the fields the enrichers add: 45% ``transfer``, 20%
``handshake`` (with geo), 20% ``flow`` (netflow, with asset fields), 5% invalid handshakes from a few
internet addresses, 5% ``session-started``, 3% ``endpoint-changed``, 2% context events (MFA, tickets).
Event time advances 20 ms per event, so the windows, baselines and learning periods all move.

Reports, for ``DetectionEngine.__call__`` on one core (single thread), each run on a fresh engine
(the state builds up during the run, as after a start):

* events/s of **CPU time** of this process (``time.process_time``: what load on a shared machine
  distorts least) and of wall time, best and median of ``--repeat`` runs; the ratio to the target
  (50,000 events/s, i.e. 20 µs per event) and to a pass-through transform (the cost of the stage call
  itself);
* with ``--breakdown``: µs per event of the engine alone (no rule), and with only the Sigma rules, only
  the correlations, only the detectors — and per correlation and per detector rule;
* the time to load and compile the built-in rules, the first time in the process and again (an
  unchanged file is not parsed twice: ``wgsiem.detect.rule.load_rule``);
* alerts raised, and the state per peer: bytes of the serialized state file, and Python heap growth
  (tracemalloc) while the state built up, both divided by the number of peers.

The pre-built input events are moved out of the garbage collector's view (``gc.freeze``) before the
runs: in the pipeline events stream through and are not resident, while 100,000 documents held in a
list would make every full collection traverse them — a cost of the harness, not of the engine.
``--no-freeze`` measures without that. The machine's load average is printed with the figures.

Usage: .venv/bin/python bench/bench_detect.py [--peers 2000] [--events 100000] [--repeat 3] [--breakdown]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gc
import os
import random
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from wgsiem.detect import DetectConfig, DetectionEngine
from wgsiem.enrich.base import TransformContext
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory

COUNTRIES = [
    ("DE", "POINT (13.4 52.52)", 3320),
    ("NL", "POINT (4.89 52.37)", 1136),
    ("FR", "POINT (2.35 48.85)", 3215),
]


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_events(peers: int, n: int, seed: int = 1) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    keys = [base64.b64encode(rnd.randbytes(32)).decode() for _ in range(peers)]
    home = [rnd.randrange(len(COUNTRIES)) for _ in range(peers)]
    t0 = dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC).timestamp()
    out: list[dict[str, Any]] = []
    for i in range(n):
        t = t0 + i * 0.02
        p = rnd.randrange(peers)
        key = keys[p]
        user = f"user{p}"
        cc, loc, asn = COUNTRIES[home[p]]
        obs = {"hostname": "vpn-gw-1", "type": "vpn", "ingress": {"interface": {"name": "wg0"}}}
        asset_obs = {"observer": {"name": "vpn-gw-1", "environment": "production", "criticality": 5}}
        r = rnd.random()
        base = {"@timestamp": iso(t), "observer": obs}
        eid = f"{i:032x}"
        if r < 0.45:
            doc = {
                **base,
                "event": {"id": eid, "kind": "event", "action": "transfer", "dataset": "wireguard.state"},
                "network": {"bytes": rnd.randint(1_000, 200_000)},
                "user": {"name": user},
                "source": {
                    "ip": f"203.0.{p % 250}.{p % 200 + 1}",
                    "nat": {"ip": f"10.1.{p // 250}.{p % 250}"},
                },
                "wireguard": {"peer": {"public_key": key}, "interface": {"name": "wg0"}, "asset": asset_obs},
            }
        elif r < 0.65:
            doc = {
                **base,
                "event": {"id": eid, "kind": "event", "action": "handshake", "dataset": "wireguard.state"},
                "user": {"name": user},
                "source": {
                    "ip": f"203.0.{p % 250}.{p % 200 + 1}",
                    "geo": {"country_iso_code": cc, "location": loc},
                    "as": {"number": asn},
                },
                "wireguard": {"peer": {"public_key": key}, "interface": {"name": "wg0"}, "asset": asset_obs},
            }
        elif r < 0.85:
            doc = {
                **base,
                "event": {"id": eid, "kind": "event", "action": "flow", "dataset": "wireguard.flow"},
                "source": {"ip": f"10.1.{p // 250}.{p % 250}", "port": 40000},
                "destination": {
                    "ip": f"10.10.0.{rnd.randrange(30)}",
                    "port": rnd.choice([443, 443, 443, 80, 22]),
                },
                "wireguard": {
                    "peer": {"public_key": key, "side": "source"},
                    "asset": {"destination": {"name": "app", "criticality": 3}},
                },
            }
        elif r < 0.90:
            doc = {
                **base,
                "event": {
                    "id": eid,
                    "kind": "event",
                    "action": "invalid-handshake",
                    "dataset": "wireguard.kernel_log",
                },
                "source": {"ip": f"198.51.100.{rnd.randrange(40)}", "port": 40000},
                "wireguard": {"interface": {"name": "wg0"}},
            }
        elif r < 0.95:
            doc = {
                **base,
                "event": {
                    "id": eid,
                    "kind": "event",
                    "action": "session-started",
                    "dataset": "wireguard.state",
                },
                "user": {"name": user},
                "wireguard": {"peer": {"public_key": key}, "interface": {"name": "wg0"}},
            }
        elif r < 0.98:
            doc = {
                **base,
                "event": {
                    "id": eid,
                    "kind": "event",
                    "action": "endpoint-changed",
                    "dataset": "wireguard.state",
                },
                "user": {"name": user},
                "source": {
                    "ip": f"203.1.{p % 250}.{rnd.randrange(4)}",
                    "geo": {"country_iso_code": cc, "location": loc},
                },
                "wireguard": {"peer": {"public_key": key}, "interface": {"name": "wg0"}},
            }
        else:
            doc = {
                **base,
                "event": {
                    "id": eid,
                    "kind": "event",
                    "action": "identity-mfa",
                    "dataset": "wireguard.context",
                    "outcome": "success",
                },
                "user": {"name": user},
            }
        out.append(doc)
    return out


def context(state: Path) -> TransformContext:
    tel = TelemetryRegistry().register("detect", "transform", "detect")
    return TransformContext("bench", state, tel, PeerDirectory())


class PassThrough:
    def __call__(self, env: Envelope) -> Envelope:
        return env


def run(stage: Any, envs: list[Envelope]) -> tuple[float, float]:
    """CPU and wall seconds of feeding ``envs`` through ``stage`` (alerts drained every 500 events)."""
    drain = getattr(stage, "drain_alerts", None)
    cpu, wall = time.process_time(), time.perf_counter()
    for i, env in enumerate(envs):
        stage(env)
        if drain is not None and i % 500 == 0:
            drain()
    if drain is not None:
        drain()
    return time.process_time() - cpu, time.perf_counter() - wall


def engine(state_dir: Path, rules: list[Any] | None = None, **config: Any) -> DetectionEngine:
    return DetectionEngine("detect", DetectConfig(**config), context(state_dir), rules=rules)


def breakdown(envs: list[Envelope], state: Path, repeat: int) -> None:
    from wgsiem.detect import BUILTIN_RULES, load_rules

    rules = load_rules([BUILTIN_RULES])
    n = len(envs)

    def us(selected: list[Any]) -> float:
        best = min(run(engine(state, selected, lifecycle=False, state=False), envs)[0] for _ in range(repeat))
        return best / n * 1e6

    base = us([])
    print(f"  engine alone (no rule)  : {base:6.2f} us/event CPU")
    for kind in ("sigma", "correlation", "detector"):
        part = [r for r in rules if r.kind == kind]
        print(f"  + {kind + ' rules':21s} : {us(part) - base:6.2f} us/event ({len(part)} rules)")
    for r in rules:
        if r.kind in ("correlation", "detector"):
            print(f"    {r.kind[:4]} {r.name:34s}: {us([r]) - base:6.2f} us/event")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", type=int, default=2000)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (fresh engine each)")
    ap.add_argument("--breakdown", action="store_true", help="also µs/event per rule kind and detector")
    ap.add_argument("--no-freeze", action="store_true", help="leave the input events to the GC")
    args = ap.parse_args()
    from wgsiem.detect import BUILTIN_RULES, load_rules

    t = time.process_time()
    load_rules([BUILTIN_RULES])
    load_first = time.process_time() - t
    t = time.process_time()
    load_rules([BUILTIN_RULES])
    load_again = time.process_time() - t
    docs = make_events(args.peers, args.events)
    envs = [Envelope(d, EventMeta("bench", 0)) for d in docs]
    if not args.no_freeze:
        gc.collect()
        gc.freeze()
    n = args.events
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        ref_cpu, ref_wall = min(run(PassThrough(), envs) for _ in range(args.repeat))
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        first = engine(state)
        loaded = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        runs = [run(first, envs)]  # the full configuration: alerts.db lifecycle and the state file
        status = first.status()
        first.close()
        file_bytes = (state / "detect" / "detect.json").stat().st_size
        for k in range(1, args.repeat):
            again = engine(state / str(k))
            runs.append(run(again, envs))
            again.close()
        tracemalloc.start()
        heap_engine = engine(state / "heap", lifecycle=False, state=False)
        base2 = tracemalloc.get_traced_memory()[0]
        for env in envs:
            heap_engine(env)
            heap_engine.drain_alerts()
        heap = tracemalloc.get_traced_memory()[0] - base2
        tracemalloc.stop()
        if args.breakdown:
            print("breakdown (best CPU of the runs):")
            breakdown(envs, state, args.repeat)
    cpu_rates = sorted(n / c for c, _ in runs)
    wall_rates = sorted(n / w for _, w in runs)
    best, median = cpu_rates[-1], statistics.median(cpu_rates)
    ref_rate = n / ref_cpu
    kinds = {r.kind for r in first.rules}
    print(f"rules: {len(first.rules)} ({', '.join(sorted(kinds))}); peers {args.peers}; events {n}")
    print(f"pass-through transform : {ref_rate:12,.0f} ev/s CPU  {n / ref_wall:12,.0f} ev/s wall")
    print(
        f"detect, every rule     : {best:12,.0f} ev/s CPU (best of {len(runs)}; median {median:,.0f})"
        f"  = {1e6 / best:.1f} us/event"
    )
    wall_median = statistics.median(wall_rates)
    print(f"{'':25s}{wall_rates[-1]:12,.0f} ev/s wall (best; median {wall_median:,.0f})")
    print(f"ratio to the target (50,000 ev/s, CPU): {best / 50_000:.2f}  (median {median / 50_000:.2f})")
    print(f"ratio detect / pass-through (CPU): {best / ref_rate:.4f}")
    print(f"alerts raised: {sum(status['alerts'].values())} {dict(status['alerts'])}")
    print(f"engine load (rules compiled): {(loaded - before) / 1e6:.1f} MB")
    print(f"loading the built-in rules: {load_first * 1e3:.0f} ms CPU, again {load_again * 1e3:.1f} ms")
    print(f"state file: {file_bytes:,} bytes = {file_bytes / args.peers:,.0f} bytes/peer")
    print(f"state in memory (tracemalloc growth while building it): {heap / args.peers:,.0f} bytes/peer")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average (1/5/15 min): {load} on {os.cpu_count()} CPUs; input frozen: {not args.no_freeze}")


if __name__ == "__main__":
    main()
