"""Throughput of the detect stage with every built-in rule and detector, against a pass-through transform.

The event mix is what a gateway with ``--peers`` active peers produces, in the shapes of the real
fixtures (``tests/fixtures/schema/ecs``) with the fields the enrichers add: 45% ``transfer``, 20%
``handshake`` (with geo), 20% ``flow`` (netflow, with asset fields), 5% invalid handshakes from a few
internet addresses, 5% ``session-started``, 3% ``endpoint-changed``, 2% context events (MFA, tickets).
Event time advances 20 ms per event, so the windows, baselines and learning periods all move.

Reports: events/s of ``DetectionEngine.__call__`` (one core, single thread), the same loop through a
pass-through transform (the reference: the cost of the stage call itself), their ratio, alerts raised,
and the state per peer: bytes of the serialized state file, and Python heap growth (tracemalloc) while
the state built up, both divided by the number of peers.

Usage: .venv/bin/python bench/bench_detect.py [--peers 2000] [--events 100000]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import random
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


def run(stage: Any, envs: list[Envelope]) -> float:
    drain = getattr(stage, "drain_alerts", None)
    t = time.perf_counter()
    for i, env in enumerate(envs):
        stage(env)
        if drain is not None and i % 500 == 0:
            drain()
    if drain is not None:
        drain()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", type=int, default=2000)
    ap.add_argument("--events", type=int, default=100_000)
    args = ap.parse_args()
    docs = make_events(args.peers, args.events)
    envs = [Envelope(d, EventMeta("bench", 0)) for d in docs]
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        ref = run(PassThrough(), envs)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        engine = DetectionEngine("detect", DetectConfig(), context(state))
        loaded = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        # warm-up run on a separate engine is not needed: the first pass builds the state we measure
        took = run(engine, envs)
        tracemalloc.start()
        engine2 = DetectionEngine("detect2", DetectConfig(lifecycle=False, state=False), context(state))
        base2 = tracemalloc.get_traced_memory()[0]
        for env in envs:
            engine2(env)
            engine2.drain_alerts()
        heap = tracemalloc.get_traced_memory()[0] - base2
        tracemalloc.stop()
        status = engine.status()
        engine.close()
        file_bytes = (state / "detect" / "detect.json").stat().st_size
    kinds = {r.kind for r in engine.rules}
    rate = args.events / took
    print(
        f"rules: {len(engine.rules)} ({', '.join(sorted(kinds))}); peers {args.peers}; events {args.events}"
    )
    print(f"pass-through transform : {args.events / ref:12,.0f} ev/s")
    print(f"detect, every rule     : {rate:12,.0f} ev/s   (target >= 50,000)")
    print(
        f"ratio detect / pass-through: {rate / (args.events / ref):.4f}"
        f"  ({ref / took * 100:.2f}% of reference speed)"
    )
    print(f"alerts raised: {sum(status['alerts'].values())} {dict(status['alerts'])}")
    print(f"engine load (rules compiled): {(loaded - before) / 1e6:.1f} MB")
    print(f"state file: {file_bytes:,} bytes = {file_bytes / args.peers:,.0f} bytes/peer")
    print(f"state in memory (tracemalloc growth while building it): {heap / args.peers:,.0f} bytes/peer")
    print("(shared 2-vCPU VM: figures are noisy)")


if __name__ == "__main__":
    main()
