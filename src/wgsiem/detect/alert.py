"""Alert documents, and the gate that deduplicates and throttles them per rule and entity.

An alert is an ECS ``event.kind: alert`` document of dataset ``wireguard.detect``: ``rule.*`` and
``threat.*`` from the rule, ``event.severity`` / ``event.risk_score``, the entity the rule keys on
(``wireguard.alert.entity`` plus that field itself), the evidence event ids
(``wireguard.alert.evidence_ids``) and context copied from the evidence (observer, interface, peer,
user, source). ``event.id`` derives from the rule, the entity and the first evidence id, so a replay
yields the same alert id and a store or SIEM drops the duplicate.

:class:`AlertGate` decides whether a match becomes an alert, on **event time** (``@timestamp``), never
the wall clock, so replaying a day of captures throttles exactly as it did live:

* *deduplication*: an evidence event id already seen by this rule (a retried or replayed batch) is
  ignored;
* *throttling*: after an alert for (rule, entity), further matches until ``window`` seconds of event
  time later are suppressed and counted (``wireguard.alert.suppressed_count`` on the next alert says
  how many were folded away since the previous one).

Both tables are bounded (least recently used entries go first), so an attacker rotating source
addresses costs memory up to the bound and no further.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from wgsiem.event import event_id

from .attack import TACTICS, TECHNIQUES
from .match import field_values
from .rule import LEVEL_SEVERITY, DetectionRule

__all__ = ["ALERT_DATASET", "AlertGate", "Entity", "build_alert", "entity_of", "event_time"]

ALERT_DATASET = "wireguard.detect"
_CONTEXT_FIELDS = (
    "observer",
    "host",
    "source",
    "destination",
    "user",
    "network",
    "related",
)
_WIREGUARD_CONTEXT = ("interface", "peer", "endpoint")


@dataclass(frozen=True, slots=True)
class Entity:
    """What an alert is about: the first of the rule's entity fields present in the evidence."""

    field: str
    value: str


def entity_of(rule: DetectionRule, doc: dict[str, Any]) -> Entity:
    for name in rule.entity_fields:
        for value in field_values(doc, name):
            if value is not None and not isinstance(value, dict | list):
                return Entity(name, str(value))
    return Entity("", "")


def event_time(doc: dict[str, Any]) -> float | None:
    """``@timestamp`` as POSIX seconds, or ``None`` when absent or unparsable."""
    ts = doc.get("@timestamp")
    if not isinstance(ts, str):
        return None
    # What every source writes (``2026-11-02T08:00:00.123Z``), without a datetime per event: the whole
    # second through a small cache, then the milliseconds — the same float datetime.timestamp() gives
    # (it also divides whole microseconds by 10**6).
    if len(ts) == 24 and ts[23] == "Z":
        micros = _MILLIS.get(ts[19:23])
        if micros is not None:
            second = _SECONDS.get(ts[:19])
            if second is None:
                second = _whole_second(ts[:19])
            if second is not None:
                return (second * 1_000_000 + micros) / 1_000_000
    return parse_iso_time(ts)


_MILLIS = {f".{n:03d}": n * 1000 for n in range(1000)}
_SECONDS: dict[str, int] = {}


def _whole_second(head: str) -> int | None:
    """POSIX seconds of ``YYYY-MM-DDTHH:MM:SS`` (UTC), cached; ``None`` for anything else."""
    if not (head[4] == head[7] == "-" and head[10] == "T" and head[13] == head[16] == ":"):
        return None
    parsed = parse_iso_time(head + "Z")
    if parsed is None or parsed != int(parsed):
        return None
    if len(_SECONDS) >= 4096:  # a stream moves forward: old seconds are not asked for again
        _SECONDS.clear()
    _SECONDS[head] = int(parsed)
    return int(parsed)


def parse_iso_time(ts: str) -> float | None:
    """An ISO 8601 time as POSIX seconds (no zone: UTC); ``None`` if it is not one."""
    try:
        parsed = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _iso(seconds: float) -> str:
    return (
        dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass(slots=True)
class _Open:
    until: float
    suppressed: int = 0


class AlertGate:
    """Dedup + throttle state, bounded to ``max_entities`` (rule, entity) keys and ``max_event_ids`` ids."""

    def __init__(
        self, window_secs: float, *, max_entities: int = 100_000, max_event_ids: int = 100_000
    ) -> None:
        self.window_secs = window_secs
        self.max_entities = max_entities
        self.max_event_ids = max_event_ids
        self._open: OrderedDict[tuple[str, Entity], _Open] = OrderedDict()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.duplicates = 0
        self.suppressed = 0

    def admit(self, rule_id: str, entity: Entity, evidence_id: str | None, at: float) -> int | None:
        """``None`` to drop this match; otherwise how many matches were suppressed before it."""
        if evidence_id is not None:
            key = (rule_id, evidence_id)
            if key in self._seen:
                self._seen.move_to_end(key)
                self.duplicates += 1
                return None
            self._seen[key] = None
            if len(self._seen) > self.max_event_ids:
                self._seen.popitem(last=False)
        okey = (rule_id, entity)
        state = self._open.get(okey)
        if state is not None and at < state.until:
            state.suppressed += 1
            self.suppressed += 1
            return None
        previous = state.suppressed if state is not None else 0
        self._open[okey] = _Open(until=at + self.window_secs)
        self._open.move_to_end(okey)
        if len(self._open) > self.max_entities:
            self._open.popitem(last=False)
        return previous

    def __len__(self) -> int:
        return len(self._open)

    def snapshot(self) -> dict[str, Any]:
        """The throttle windows still open (evidence ids are not kept: a replay after a restart is
        deduplicated by the alert id instead)."""
        return {
            "open": [[r, e.field, e.value, o.until, o.suppressed] for (r, e), o in self._open.items()],
        }

    def restore(self, data: Any) -> None:
        rows = data.get("open") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            return
        for row in rows[-self.max_entities :]:
            if isinstance(row, list) and len(row) == 5 and isinstance(row[3], int | float):
                self._open[(str(row[0]), Entity(str(row[1]), str(row[2])))] = _Open(
                    float(row[3]), int(row[4]) if isinstance(row[4], int) else 0
                )


def build_alert(
    rule: DetectionRule,
    doc: dict[str, Any],
    entity: Entity,
    *,
    at: float,
    created: float,
    suppressed_before: int = 0,
    window_secs: float = 0.0,
    level: str | None = None,
    reason: str | None = None,
    evidence_ids: tuple[str, ...] = (),
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ECS alert document for ``rule`` matching ``doc`` (the evidence, or the last of it).

    Correlations and detectors pass what only they know: ``level`` (overrides the rule's severity and
    risk for this alert), ``reason``, all ``evidence_ids`` and ``details``.
    """
    event = doc.get("event") if isinstance(doc.get("event"), dict) else {}
    evidence_id = str(event.get("id", "")) if isinstance(event, dict) else ""
    ids = list(dict.fromkeys([*evidence_ids, evidence_id] if evidence_id else evidence_ids))
    severity, risk = rule.severity, rule.risk_score
    if level is not None and level != rule.level and level in LEVEL_SEVERITY:
        severity = LEVEL_SEVERITY[level]
        risk = float(severity)
    headline = f"{rule.title}: {entity.field}={entity.value}" if entity.field else rule.title
    alert: dict[str, Any] = {
        "@timestamp": _iso(at),
        "event": {
            "id": event_id("wgsiem.detect", rule.id, entity.field, entity.value, evidence_id),
            "kind": "alert",
            "category": ["intrusion_detection"],
            "type": ["info"],
            "action": rule.name,
            "dataset": ALERT_DATASET,
            "module": "wireguard",
            "created": _iso(created),
            "severity": severity,
            "risk_score": risk,
            "reason": f"{headline} — {reason}" if reason else headline,
        },
        "rule": {
            "id": rule.id,
            "uuid": rule.id,
            "name": rule.title,
            "description": rule.description,
            "reference": rule.references[0],
            "author": [rule.author],
            "ruleset": "wgsiem",
            "category": ", ".join(TACTICS[t][1] for t in rule.tactics),
        },
        "threat": {
            "framework": "MITRE ATT&CK",
            "tactic": {
                "id": [TACTICS[t][0] for t in rule.tactics],
                "name": [TACTICS[t][1] for t in rule.tactics],
            },
            "technique": {
                "id": list(rule.techniques),
                "name": [TECHNIQUES[t] for t in rule.techniques],
            },
        },
        "message": f"{rule.title} ({entity.field}={entity.value})" if entity.field else rule.title,
    }
    for key in _CONTEXT_FIELDS:
        if isinstance(doc.get(key), dict):
            alert[key] = _copy(doc[key])
    wg = doc.get("wireguard") if isinstance(doc.get("wireguard"), dict) else {}
    wireguard: dict[str, Any] = {
        k: _copy(wg[k]) for k in _WIREGUARD_CONTEXT if isinstance(wg, dict) and k in wg
    }
    wireguard["alert"] = {
        "rule_name": rule.name,
        "entity": {"field": entity.field, "value": entity.value},
        "evidence_ids": ids,
        "evidence_action": str(event.get("action", "")) if isinstance(event, dict) else "",
        "evidence_dataset": str(event.get("dataset", "")) if isinstance(event, dict) else "",
        "suppressed_count": suppressed_before,
        "throttle_window_secs": window_secs,
        "playbook": rule.playbook,
        "maturity": rule.maturity,
        "triage": rule.triage,
        "kind": rule.kind,
        "level": level or rule.level,
    }
    if details:
        wireguard["alert"]["details"] = _copy(details)
    alert["wireguard"] = wireguard
    return alert


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
