"""Labelled WireGuard telemetry for measuring detections: a benign population plus injected attacks,
written in the formats ``wgsiem replay`` reads (see ``docs/detections-evaluation.md``)."""

from __future__ import annotations

from .generator import SimulationResult, simulate
from .spec import ATTACK_CLASSES, BENIGN_CLASSES, AttackClass, SimulationSpec, parse_attacks

__all__ = [
    "ATTACK_CLASSES",
    "BENIGN_CLASSES",
    "AttackClass",
    "SimulationResult",
    "SimulationSpec",
    "parse_attacks",
    "simulate",
]
