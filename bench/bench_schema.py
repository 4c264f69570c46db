"""Documents per second mapped to CIM and OCSF on one core, against encoding the ECS document with
orjson (the floor every NDJSON line pays anyway).

The documents are the real examples of ``tests/fixtures/schema/ecs/`` (every action of every source),
drawn with the weights of a busy gateway (``--mix busy``: mostly ``transfer``, ``handshake``,
``keepalive``, ``flow``) or uniformly over actions (``--mix uniform``). For each schema it reports:
map only, map + orjson encode (what ``schema: cim|ocsf`` costs the NDJSON sink per event), and the
ECS floor (orjson encode of the ECS document, what ``schema: ecs`` costs). CPU time of this process.

Usage: .venv/bin/python bench/bench_schema.py [--events 200000] [--mix busy|uniform]
The machine is a shared 2-vCPU VM: figures are noisy.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from wgsiem.schema import map_document

GOLDENS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "schema" / "ecs"
BUSY = {
    "transfer": 30,
    "handshake": 20,
    "keepalive": 20,
    "flow": 20,
    "session-started": 2,
    "session-ended": 2,
}
OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def documents(n: int, mix: str) -> list[dict[str, Any]]:
    docs = [orjson.loads(p.read_bytes()) for p in sorted(GOLDENS.glob("*/*.json"))]
    weights = [BUSY.get(d["event"]["action"], 0.05) if mix == "busy" else 1.0 for d in docs]
    rng = random.Random(7)
    return rng.choices(docs, weights=weights, k=n)


def rate(fn: Callable[[dict[str, Any]], object], docs: list[dict[str, Any]], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for d in docs:
            fn(d)
        best = min(best, time.process_time() - t0)
    return len(docs) / best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--mix", choices=("busy", "uniform"), default="busy")
    args = ap.parse_args()
    docs = documents(args.events, args.mix)
    dumps = orjson.dumps
    floor = rate(lambda d: dumps(d, option=OPTS), docs)
    print(f"{args.events} documents, mix {args.mix}; CPU time, best of 3")
    print(f"ECS floor (orjson encode)         {floor:>12,.0f} docs/s")
    for schema in ("cim", "ocsf"):
        mapped = rate(lambda d, s=schema: map_document(d, s), docs)  # type: ignore[misc]
        full = rate(lambda d, s=schema: dumps(map_document(d, s), option=OPTS), docs)  # type: ignore[misc]
        print(
            f"{schema.upper():<4} map only                     {mapped:>12,.0f} docs/s\n"
            f"{schema.upper():<4} map + encode                 {full:>12,.0f} docs/s"
            f"   ratio vs ECS floor: {full / floor:.2f}x ({floor / full:.1f}x the cost)"
        )


if __name__ == "__main__":
    main()
