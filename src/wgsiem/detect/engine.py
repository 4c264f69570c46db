"""The detection engine as a pipeline stage: events pass through unchanged, alerts are collected.

``DetectionEngine(transform_id, config, ctx)`` has the transform shape (see
:mod:`wgsiem.enrich.base`): ``__call__(envelope)`` returns the envelope untouched — detection never
edits or drops telemetry — and evaluates every enabled rule against ``envelope.data``. A match that
passes the :class:`~wgsiem.detect.alert.AlertGate` (dedup by evidence id, throttle per rule and entity
on event time) becomes an alert envelope queued inside the engine; :meth:`drain_alerts` hands the
queue over. Alerts are emitted by the engine's own id (``EventMeta.source_id = transform_id``).

Wiring (in ``Pipeline._transform``): after a transform has processed the batch, append what it drains,
so alerts flow through the transforms after it (``apply_privacy``) and into every sink::

    drain = getattr(proc, "drain_alerts", None)
    if drain is not None:
        out.extend(drain())
    tel.sent += len(out)

Place the stage after the enrichers (rules then see geo, identity, asset and risk fields) and before
``apply_privacy``. Documents of dataset ``wireguard.detect`` (our own alerts) are passed through and not
evaluated, so an alert never triggers another alert and the position in the chain cannot loop.

A rule that raises on a document is a counted error (``rule_error@detect``) and the other rules still
run; a document without a parsable ``@timestamp`` is counted (``missing_timestamp@detect``) and is
throttled at the latest event time the engine has seen.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from wgsiem.enrich.base import TransformContext
from wgsiem.event import Envelope, EventMeta

from .alert import ALERT_DATASET, AlertGate, build_alert, entity_of, event_time
from .config import DetectConfig
from .rule import BUILTIN_RULES, DetectionRule, load_rules

__all__ = ["DetectionEngine"]


class DetectionEngine:
    component_type = "detect"

    def __init__(
        self,
        transform_id: str,
        config: DetectConfig,
        ctx: TransformContext,
        *,
        rules: list[DetectionRule] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.transform_id = transform_id
        self.config = config
        self.ctx = ctx
        self._clock = clock
        if rules is None:
            dirs = ([BUILTIN_RULES] if config.builtin_rules else []) + list(config.rule_dirs)
            rules = load_rules(dirs, disabled=frozenset(config.disabled_rules))
        self.rules = rules
        self._gate = AlertGate(
            config.throttle_window_secs, max_entities=config.max_entities, max_event_ids=config.max_event_ids
        )
        self._pending: list[Envelope] = []
        self._latest = 0.0
        self.matches: Counter[str] = Counter()
        self.alerts: Counter[str] = Counter()

    def __call__(self, envelope: Envelope) -> Envelope:
        doc = envelope.data
        event = doc.get("event")
        if isinstance(event, dict) and event.get("dataset") == ALERT_DATASET:
            return envelope
        at = event_time(doc)
        if at is None:
            self.ctx.telemetry.error("missing_timestamp", "detect", "event without a parsable @timestamp")
            at = self._latest
        elif at > self._latest:
            self._latest = at
        evidence_id = event.get("id") if isinstance(event, dict) else None
        for rule in self.rules:
            try:
                hit = rule.predicate(doc)
            except Exception as exc:  # a rule bug must not stop the other rules or the pipeline
                self.ctx.telemetry.error("rule_error", "detect", f"{rule.name}: {type(exc).__name__}: {exc}")
                continue
            if not hit:
                continue
            self.matches[rule.name] += 1
            entity = entity_of(rule, doc)
            suppressed = self._gate.admit(
                rule.id, entity, str(evidence_id) if evidence_id is not None else None, at
            )
            if suppressed is None:
                continue
            alert = build_alert(
                rule,
                doc,
                entity,
                at=at,
                created=self._clock(),
                suppressed_before=suppressed,
                window_secs=self.config.throttle_window_secs,
            )
            self.alerts[rule.name] += 1
            self._pending.append(Envelope(alert, EventMeta(self.transform_id, time.time_ns())))
        return envelope

    def drain_alerts(self) -> list[Envelope]:
        """The alerts raised since the last call, in the order their evidence arrived."""
        out, self._pending = self._pending, []
        return out

    def status(self) -> dict[str, Any]:
        return {
            "rules": len(self.rules),
            "matches": dict(self.matches),
            "alerts": dict(self.alerts),
            "suppressed": self._gate.suppressed,
            "duplicates": self._gate.duplicates,
            "throttle_entries": len(self._gate),
            "pending_alerts": len(self._pending),
        }
