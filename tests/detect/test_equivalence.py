"""The optimized engine raises exactly the alerts of the golden file (see :mod:`.equivalence`): same
rules, times, entities, levels, alert ids, evidence ids and suppressed counts, and — through the
digest of the full alert documents — the same everything else."""

from __future__ import annotations

import json
from pathlib import Path

from wgsiem.detect import BUILTIN_RULES, load_rules

from . import equivalence


def test_the_engine_raises_the_golden_alerts(tmp_path: Path) -> None:
    expected = json.loads(equivalence.GOLDEN.read_text())
    rules = load_rules([BUILTIN_RULES])
    docs = equivalence.stream(rules)
    assert len(docs) == expected["events"]
    assert equivalence.digest(docs) == expected["events_sha256"], "the stream itself changed"
    got = equivalence.alerts(lambda: equivalence.engine(tmp_path, rules), docs)
    assert [equivalence.summary(a) for a in got] == expected["alerts"]
    assert equivalence.digest(got) == expected["alerts_sha256"]


def test_every_rule_raises_in_the_golden_stream() -> None:
    expected = json.loads(equivalence.GOLDEN.read_text())
    assert {a[0] for a in expected["alerts"]} == {r.name for r in load_rules([BUILTIN_RULES])}
