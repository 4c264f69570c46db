"""Parse + diff cost of the ``config_watch`` source on a 10,000-peer config, against `wg-quick strip`.

`wg-quick strip` is wireguard-tools' own reader of the same file (bash, line by line, the wg-quick keys
removed): the closest thing to "what it takes to read this config" that WireGuard ships. Reports:

* `wg-quick strip <file>` wall time (reference, median of the runs),
* our parse alone (text → typed records: X25519 derivation, keyed fingerprints, AllowedIPs normalised),
* parse + diff of an edited version (1% of the peers changed: AllowedIPs, endpoint, keepalive, PSK) +
  ECS normalisation of every resulting event — what one file change costs the source,
* the full live path: read + sha256 + parse + diff + ECS through ``ConfigWatchSource.scan``.

Usage: .venv/bin/python bench/bench_config_watch.py [--peers 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.config_watch.config import ConfigWatchSourceConfig
from wgsiem.sources.config_watch.differ import diff_versions
from wgsiem.sources.config_watch.normalize import change_to_ecs
from wgsiem.sources.config_watch.parser import parse_config
from wgsiem.sources.config_watch.records import FileVersion
from wgsiem.sources.config_watch.source import ConfigWatchSource
from wgsiem.sources.peer_directory import PeerDirectory
from wgsiem.sources.wg_state.records import Fingerprinter


def key(rnd: random.Random) -> str:
    return base64.b64encode(rnd.randbytes(32)).decode()


def render(n: int, rnd: random.Random, changed: set[int] | None = None) -> str:
    """A wg-quick server config as wireguard-ui writes it: comments with names, PSK on half the peers."""
    changed = changed or set()
    r = random.Random(7)  # keys are the same in every version
    lines = [
        "[Interface]",
        "Address = 10.0.0.1/16",
        "ListenPort = 51820",
        f"PrivateKey = {key(r)}",
        "PostUp = iptables -A FORWARD -i %i -j ACCEPT",
        "PostDown = iptables -D FORWARD -i %i -j ACCEPT",
        "",
    ]
    for i in range(n):
        pub, psk = key(r), key(r)
        c = i in changed
        lines += [
            f"# ID:           peer{i:06d}",
            f"# Name:         user{i}",
            f"# Email:        user{i}@example.com",
            "[Peer]",
            f"PublicKey = {pub}",
        ]
        if i % 2 == 0 or (c and i % 3 == 0):
            lines.append(f"PresharedKey = {key(rnd) if c else psk}")
        extra = ", 10.200.0.0/24" if c else ""
        lines.append(f"AllowedIPs = 10.{1 + i // 250 % 250}.{i % 250}.{1 + i // 62500}/32{extra}")
        if i % 4 == 0:
            lines.append(f"Endpoint = 198.51.100.{1 + i % 250}:{20000 + i % 40000 + (1 if c else 0)}")
        lines += [f"PersistentKeepalive = {30 if c else 25}", ""]
    return "\n".join(lines) + "\n"


def row(label: str, secs: float, ref: float | None = None, extra: str = "") -> None:
    ratio = f"   ratio {secs / ref:.2f}x" if ref else ""
    print(f"{label:<52}{secs * 1000:9.1f} ms{ratio}{extra}")


def median_secs(fn, runs: int) -> float:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    n = a.peers
    rnd = random.Random(1)
    base = render(n, rnd)
    changed = set(rnd.sample(range(n), max(1, n // 100)))
    edited = render(n, rnd, changed)
    work = Path(tempfile.mkdtemp(prefix="bench-cw-"))
    try:
        etc = work / "etc"
        etc.mkdir()
        conf = etc / "wgbench0.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base)
        print(f"config: {n} peers, {len(base.splitlines())} lines, {len(base) / 1e6:.2f} MB")

        def strip() -> None:
            subprocess.run(["wg-quick", "strip", str(conf)], check=True, stdout=subprocess.DEVNULL)

        ref = median_secs(strip, a.runs)
        row("wg-quick strip (reference)", ref)

        fp = Fingerprinter(b"b" * 32)
        t_parse = median_secs(lambda: parse_config(base, str(conf), fp), a.runs)
        row("parse", t_parse, ref)

        before = FileVersion(
            str(conf),
            str(conf),
            "wgbench0",
            hashlib.sha256(base.encode()).hexdigest(),
            None,
            parse_config(base, "x", fp),
        )
        n_events = 0

        def parse_diff() -> None:
            nonlocal n_events
            cfg = parse_config(edited, str(conf), fp)
            after = FileVersion(
                str(conf), str(conf), "wgbench0", hashlib.sha256(edited.encode()).hexdigest(), None, cfg
            )
            now = time.time()
            docs = [
                change_to_ecs(c, hostname="bench", at=now, observed_at=now)
                for c in diff_versions(before, after)
            ]
            n_events = len(docs)

        t_pd = median_secs(parse_diff, a.runs)
        row("parse + diff + ECS of an edit (1% of peers)", t_pd, ref, f"   ({n_events} events)")

        reg = TelemetryRegistry()
        times = []
        for r in range(a.runs):
            state = work / f"state{r}"
            ctx = SourceContext(
                "bench", state, reg.register(f"cw{r}", "source", "config_watch"), PeerDirectory()
            )
            src = ConfigWatchSource(f"cw{r}", ConfigWatchSourceConfig(paths=[str(etc)]), ctx)
            with open(conf, "w") as f:
                f.write(base)
            asyncio.run(src.scan())
            with open(conf, "w") as f:
                f.write(edited)
            t = time.perf_counter()
            envs = asyncio.run(src.scan())
            times.append(time.perf_counter() - t)
        t_live = statistics.median(times)
        row("live scan of the edit (read+hash+parse+diff+ECS)", t_live, ref, f"   ({len(envs)} events)")
        print("(shared 2-vCPU VM: figures are noisy)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
