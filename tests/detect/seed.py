"""Pre-seeded detector state for tests that cannot wait weeks for a baseline to be learned."""

from __future__ import annotations

import json
import time
from pathlib import Path


def seed_baseline(
    state_dir: Path, rule_id: str, peer: str, median_bytes: float, seen: float | None = None
) -> None:
    """A traffic baseline as if learned: every hour of the week, 20 windows of ``median_bytes``."""
    base: dict[str, list[float]] = {str(h): [median_bytes, 20.0] for h in range(168)}
    base["all"] = [median_bytes, 20.0 * 168]
    entry = {"w": 0, "sum": 0.0, "fired": False, "base": base}
    state = {
        "version": 1,
        "latest": 0.0,
        "gate": {},
        "correlations": {},
        "detectors": {rule_id: {"keys": [[f"peer:{peer}", time.time() if seen is None else seen, entry]]}},
    }
    (state_dir / "detect").mkdir(parents=True, exist_ok=True)
    (state_dir / "detect" / "detect.json").write_text(json.dumps(state))
