"""Identity + privacy cost on one core, per event, against the issue-4 target of 100,000 events/s.

Workload: 5,000 peers in a YAML inventory and in the peer directory (AllowedIPs 10.x.y.z/32). Per
iteration one event, alternating a wg_state-shaped ``session-started`` (peer key present, endpoint in
``source.ip``, tunnel address in ``source.nat.ip``) and a flow the netflow source could not attribute
(identity finds the peer by tunnel address). Peers are drawn Zipf-like, as real traffic is. The privacy
policy pseudonymizes user name/email/id, device and peer key, drops the full name and masks every
address field, with substring scrubbing on — the configuration of docs/enrich/privacy.md.

Reports the median of ``--runs`` for identity alone, privacy alone and identity → privacy (the figure
compared with the target), in CPU time of this process pinned to one core (``time.process_time``, what
load on a shared machine distorts least) and in wall time, and the cache hit rates. Events are decoded
before the clock starts (transforms edit in place) and freed after it stops. The garbage collector is
tuned as ``wgsiem run`` tunes it (:func:`wgsiem.service.tune_gc`) unless ``--no-gc-tuning``. The machine
is a shared 2-vCPU VM: figures are noisy (the load average is printed).

    .venv/bin/python bench/bench_identity_privacy.py [--events 100000] [--runs 5] [--peers 5000]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from wgsiem.enrich.apply_privacy.config import ApplyPrivacyConfig
from wgsiem.enrich.apply_privacy.keys import new_key_line
from wgsiem.enrich.apply_privacy.transform import ApplyPrivacy
from wgsiem.enrich.base import TransformContext
from wgsiem.enrich.enrich_identity.config import EnrichIdentityConfig
from wgsiem.enrich.enrich_identity.transform import EnrichIdentity
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.service import tune_gc
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

TARGET = 100_000
POLICY = {
    "user.name": "pseudonymize",
    "user.email": "pseudonymize",
    "user.id": "pseudonymize",
    "user.full_name": "drop",
    "wireguard.user.device": "pseudonymize",
    "wireguard.peer.public_key": "pseudonymize",
    "source.ip": "mask",
    "source.address": "mask",
    "source.nat.ip": "mask",
    "destination.ip": "mask",
    "destination.address": "mask",
    "wireguard.peer.endpoint": "mask",
    "wireguard.peer.tunnel_ip": "mask",
}


def key_of(i: int) -> str:
    return base64.b64encode(hashlib.sha256(f"peer-{i}".encode()).digest()).decode()


def tunnel(i: int) -> str:
    return f"10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}"


def setup(tmp: Path, peers_n: int) -> tuple[EnrichIdentity, ApplyPrivacy]:
    inv = tmp / "identity.yaml"
    rows = ["peers:"]
    for i in range(peers_n):
        rows.append(
            f"  - {{public_key: {key_of(i)}, name: user{i}, email: user{i}@corp.example, id: emp-{i:05d},"
            f" full_name: User Number{i}, department: Dept{i % 20}, device: laptop-{i}, risk: low}}"
        )
    inv.write_text("\n".join(rows) + "\n")
    keys = tmp / "privacy.keys"
    keys.write_text(new_key_line("bench"))
    os.chmod(keys, 0o600)
    directory = PeerDirectory()
    directory.publish(
        "wg0",
        [
            PeerInfo("wg0", key_of(i), f"198.51.100.{i % 250}:51820", (f"{tunnel(i)}/32",), None, 0.0)
            for i in range(peers_n)
        ],
        at=0.0,
    )
    reg = TelemetryRegistry()
    ident = EnrichIdentity(
        "identity",
        EnrichIdentityConfig(inventory_path=str(inv)),
        TransformContext("gw", tmp, reg.register("identity", "transform", "enrich_identity"), directory),
    )
    priv = ApplyPrivacy(
        "privacy",
        ApplyPrivacyConfig(key_file=str(keys), fields=POLICY),
        TransformContext("gw", tmp, reg.register("privacy", "transform", "apply_privacy"), directory),
    )
    return ident, priv


def workload(n: int, peers_n: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    weights = [1 / (r + 1) for r in range(peers_n)]
    picks = rng.choices(range(peers_n), weights=weights, k=n)
    out = []
    for j, i in enumerate(picks):
        if j % 2 == 0:
            doc: dict[str, Any] = {
                "@timestamp": "2026-11-25T18:00:00.000Z",
                "event": {"kind": "event", "category": ["network", "session"], "type": ["start"],
                          "action": "session-started", "dataset": "wireguard.state", "module": "wireguard",
                          "id": f"{j:032x}"},
                "observer": {"hostname": "gw", "type": "vpn", "vendor": "WireGuard"},
                "source": {"ip": f"198.51.100.{i % 250}", "port": 51820, "nat": {"ip": tunnel(i)}},
                "related": {"ip": [f"198.51.100.{i % 250}", tunnel(i)]},
                "wireguard": {"peer": {"public_key": key_of(i), "endpoint": f"198.51.100.{i % 250}:51820"},
                              "interface": {"name": "wg0"}},
            }  # fmt: skip
        else:
            doc = {
                "@timestamp": "2026-11-25T18:00:00.000Z",
                "event": {"kind": "event", "category": ["network"], "type": ["connection"], "action": "flow",
                          "dataset": "wireguard.flow", "module": "wireguard", "id": f"{j:032x}"},
                "source": {"ip": tunnel(i), "address": tunnel(i), "port": 40000 + j % 1000, "bytes": 1200,
                           "packets": 3},
                "destination": {"ip": "10.20.5.10", "address": "10.20.5.10", "port": 443},
                "network": {"transport": "tcp", "iana_number": "6", "bytes": 1200, "packets": 3},
                "related": {"ip": [tunnel(i), "10.20.5.10"]},
                "wireguard": {"peer": {"attribution": "unknown"}},
            }  # fmt: skip
        out.append(orjson.dumps(doc))
    return out


def timed(chain: list[Any], raw: list[bytes], batch: int = 1_000) -> tuple[float, float]:
    """(events/s in CPU time, events/s in wall time). Like the pipeline, events go through in batches
    that are dropped once done (a 100k-event list kept alive would make every full garbage collection
    scan it); building and freeing a batch is outside the clock."""
    cpu = wall = 0.0
    envs: list[Envelope] = []
    for i in range(0, len(raw), batch):
        envs = [Envelope(orjson.loads(b), EventMeta("bench", 0)) for b in raw[i : i + batch]]
        t0, c0 = time.perf_counter(), time.process_time()
        for t in chain:
            for env in envs:
                t(env)
        cpu += time.process_time() - c0
        wall += time.perf_counter() - t0
        envs = []
    return len(raw) / cpu, len(raw) / wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--peers", type=int, default=5_000)
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the first allowed)")
    ap.add_argument("--no-gc-tuning", action="store_true", help="leave the collector at its defaults")
    args = ap.parse_args()
    cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    with tempfile.TemporaryDirectory() as d:
        ident, priv = setup(Path(d), args.peers)
        raw = workload(args.events, args.peers)
        enriched = []
        for b in raw:  # privacy alone runs on identity's output, as in the pipeline
            env = Envelope(orjson.loads(b), EventMeta("bench", 0))
            ident(env)
            enriched.append(orjson.dumps(env.data))
        if not args.no_gc_tuning:
            tune_gc()
        results: dict[str, list[tuple[float, float]]] = {
            "identity": [],
            "privacy": [],
            "identity+privacy": [],
        }
        for _ in range(args.runs):
            results["identity"].append(timed([ident], raw))
            results["privacy"].append(timed([priv], enriched))
            results["identity+privacy"].append(timed([ident, priv], raw))
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        print(
            f"events per run: {args.events:,}  peers: {args.peers:,}  runs: {args.runs}  CPU {cpu}  "
            f"gc {'defaults' if args.no_gc_tuning else 'tuned as wgsiem run'}"
        )
        print(f"(a shared 2-vCPU VM, load average {load}: figures are noisy, CPU time less so)")
        for name, vals in results.items():
            med = statistics.median(v[0] for v in vals)
            wall = statistics.median(v[1] for v in vals)
            print(
                f"{name:>18}: {med:>10,.0f} events/s CPU time ({med / TARGET:.2f}x of {TARGET:,}), "
                f"{wall:,.0f} wall"
            )
        cache = priv.status()["cache"]
        total = cache["hits"] + cache["misses"]
        print(f"privacy pseudonym/mask cache hit rate: {cache['hits'] / total:.1%}")
        for name, c in ident.cache_stats().items():
            print(f"identity {name} cache hit rate: {c['hit_rate']:.1%} ({c['size']:,} entries)")
        print(f"identity: {ident.status()['known']:,} events with a known peer")
        ident.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
