"""What to simulate: the population, the period and the attacks (``--attacks all:50``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from wgsiem.errors import ConfigError

__all__ = ["ATTACK_CLASSES", "BENIGN_CLASSES", "AttackClass", "SimulationSpec", "parse_attacks"]


@dataclass(frozen=True, slots=True)
class AttackClass:
    name: str
    kind: str  # "state" | "config" | "volumetric" | "log" | "correlation": which delay target applies
    description: str
    telemetry: str  # the replay format that carries it


ATTACK_CLASSES: dict[str, AttackClass] = {
    a.name: a
    for a in (
        AttackClass(
            "rogue_peer",
            "config",
            "a peer added, or a peer's AllowedIPs widened, on the production "
            "gateway outside any change window and without a ticket; the config file is not updated",
            "wg_state captures (+ config snapshots)",
        ),
        AttackClass(
            "geo",
            "state",
            "a user's key handshakes from a country and AS never seen for that user",
            "wg_state captures",
        ),
        AttackClass(
            "travel",
            "state",
            "impossible travel: two consecutive endpoints of one key whose distance "
            "needs a speed far above an airliner's",
            "wg_state captures",
        ),
        AttackClass(
            "spike",
            "volumetric",
            "exfiltration: a peer moves ≥ 20× its usual 5-minute volume (at least 1 GB) within 10 minutes",
            "wg_state captures",
        ),
        AttackClass(
            "lateral",
            "volumetric",
            "a remote peer scans sensitive servers on admin ports it never used",
            "NetFlow v5 pcap",
        ),
        AttackClass(
            "handshake_flood",
            "log",
            "hundreds of invalid handshakes / MACs from one endpoint in minutes",
            "kernel log",
        ),
        AttackClass(
            "spoofing", "log", "packets whose inner source is outside the peer's AllowedIPs", "kernel log"
        ),
        AttackClass(
            "key_sharing",
            "state",
            "one peer key alternating between two distant endpoints every few minutes",
            "wg_state captures",
        ),
        AttackClass(
            "dormant", "state", "a peer idle for more than 30 days handshakes again", "wg_state captures"
        ),
        AttackClass(
            "off_hours", "state", "a office-hours user's key starts a session at night", "wg_state captures"
        ),
        AttackClass(
            "escalation",
            "correlation",
            "a geo anomaly of a user followed within minutes by a "
            "high-severity EDR alert on that user's laptop",
            "wg_state captures + context EDR",
        ),
    )
}
"""Every attack class the simulator injects (issue 5's built-in detections)."""

BENIGN_CLASSES = ("benign_travel", "provisioning", "backup", "scanner")
"""Labelled benign situations: near misses a rule must not alert on (alerts on them count as false)."""


def parse_attacks(text: str) -> dict[str, int]:
    """``all:50`` or ``spike:50,travel:20`` (``all`` first, then overrides) → class → count."""
    out: dict[str, int] = {}
    if not text.strip():
        return out
    for part in text.split(","):
        name, sep, count = part.strip().partition(":")
        name = name.strip()
        if not sep or not count.strip().isdigit():
            raise ConfigError(
                f"attack spec {part!r} is not NAME:COUNT", fix="e.g. all:50 or spike:50,travel:20"
            )
        n = int(count)
        if name == "all":
            for c in ATTACK_CLASSES:
                out[c] = n
        elif name in ATTACK_CLASSES:
            out[name] = n
        else:
            raise ConfigError(
                f"unknown attack class {name!r}", fix="one of: all, " + ", ".join(ATTACK_CLASSES)
            )
    return {k: v for k, v in out.items() if v > 0}


@dataclass(frozen=True, slots=True)
class SimulationSpec:
    peers: int = 50
    days: float = 2.0
    attacks: dict[str, int] = field(default_factory=dict)
    seed: int = 1
    poll_interval_secs: float = 60.0
    keyframe_secs: float = 3600.0
    start: dt.datetime = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)  # a Monday
    learning_days: float = 1.0  # attacks start after this much benign history
    hostname: str = "gw-sim-1"
    interface: str = "wg0"
    flows: bool = True

    @property
    def start_epoch(self) -> float:
        return self.start.timestamp()

    @property
    def end_epoch(self) -> float:
        return self.start_epoch + self.days * 86400.0
