"""Replayed scenario: the events of a real lab run (tests/fixtures/detect/lab_attacks.ndjson) through a
fresh engine raise exactly the alerts — same rules, same ids — that the live run raised.

Covers replay safety with real data: decisions use event time only, so replaying a capture gives the
live verdicts, whatever the wall clock says.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from wgsiem.detect import BUILTIN_RULES, DetectionEngine, load_rules
from wgsiem.detect.alert import event_time

from .conftest import envelope
from .seed import seed_baseline

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "detect"


def test_lab_capture_replays_to_the_live_alerts(
    tmp_path: Path, make_engine: Callable[..., DetectionEngine]
) -> None:
    docs = [json.loads(line) for line in (FIXTURES / "lab_attacks.ndjson").read_text().splitlines()]
    expected = json.loads((FIXTURES / "lab_attacks.expected.json").read_text())
    rules = load_rules([BUILTIN_RULES])
    spike = next(r for r in rules if r.name == "wireguard_traffic_spike")
    seed_baseline(tmp_path, spike.id, expected["peer"], 20_000.0, seen=event_time(docs[0]))
    engine = make_engine(
        rules=rules,
        detector_options={
            "wireguard_unexpected_geography": {"learning_days": 0},
            "wireguard_traffic_spike": {"min_bytes": 200_000},
        },
    )
    alerts = []
    for doc in docs:
        engine(envelope(doc))
        alerts += [a.data for a in engine.drain_alerts()]
    engine.close()
    got = sorted([a["event"]["action"], a["event"]["id"]] for a in alerts)
    assert got == expected["alerts"]
