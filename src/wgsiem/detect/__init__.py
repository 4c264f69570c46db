"""Detection engine: Sigma rules evaluated in-process over the ECS events of the pipeline.

Rules are Sigma files (parsed by pySigma, so the same content exports to any SIEM through pySigma's
backends) with wgsiem's metadata and samples under a ``wgsiem:`` key; see ``docs/detections.md``.

Why evaluate in-process instead of converting each rule to a backend query: the gateway has no query
engine to send a query to — events exist as Python dicts for microseconds between the sources and the
sinks, and the point is to alert in real time there, before any SIEM ingests them. Walking pySigma's
parsed condition tree into closures costs one pass at load time, keeps exactly Sigma's semantics
(pySigma resolves modifiers, ``1 of`` / ``all of`` and the precedence of ``and``/``or``/``not``), and
needs no query language round trip or second parser. Conversion to SPL / ES|QL remains available for
the SIEM side from the very same files.

Modules: :mod:`.rule` (load and lint a rule file), :mod:`.match` (the matcher), :mod:`.correlation`
(Sigma correlation rules over event-time windows), :mod:`.detector` (the stateful-detector plugin
contract) and :mod:`.detectors` (the built-in ones), :mod:`.alert` (alert documents, dedup and
throttling), :mod:`.lifecycle` (``alerts.db``: open / acknowledged / closed, suppressions),
:mod:`.engine` (the pipeline stage, state persistence), :mod:`.config`.
"""

from __future__ import annotations

from .alert import ALERT_DATASET, AlertGate, Entity, build_alert
from .config import DetectConfig
from .detector import BoundedTable, Detector, Finding
from .engine import DetectionEngine, build_detector
from .lifecycle import AlertStore
from .rule import BUILTIN_RULES, DetectionRule, load_rule, load_rules

__all__ = [
    "ALERT_DATASET",
    "BUILTIN_RULES",
    "AlertGate",
    "AlertStore",
    "BoundedTable",
    "DetectConfig",
    "DetectionEngine",
    "DetectionRule",
    "Detector",
    "Entity",
    "Finding",
    "build_alert",
    "build_detector",
    "load_rule",
    "load_rules",
]
