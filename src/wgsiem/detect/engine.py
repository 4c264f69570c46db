"""The detection engine as a pipeline stage: events pass through unchanged, alerts are collected.

``DetectionEngine(transform_id, config, ctx)`` has the transform shape (see
:mod:`wgsiem.enrich.base`): ``__call__(envelope)`` returns the envelope untouched — detection never
edits or drops telemetry — and evaluates every enabled rule against ``envelope.data``:

* a Sigma rule (``kind: sigma``) matches the document alone;
* a correlation rule (``kind: correlation``) updates its windows and fires when its condition holds
  (:mod:`.correlation`);
* a detector rule (``kind: detector``) hands the document to its plugin (:mod:`.detector`), which
  returns findings.

A match or finding that passes the :class:`~wgsiem.detect.alert.AlertGate` (dedup by evidence id,
throttle per rule and entity on event time) and no suppression of ``alerts.db`` becomes an alert
envelope queued inside the engine; :meth:`drain_alerts` hands the queue over (and records the alerts
in ``alerts.db``). Alerts are emitted by the engine's own id (``EventMeta.source_id = transform_id``).
Detectors that set ``wants_alerts`` (escalation) also observe the engine's own alerts.

Wiring (in ``Pipeline._transform``): after a transform has processed the batch, append what it drains,
so alerts flow through the transforms after it (``apply_privacy``) and into every sink::

    drain = getattr(proc, "drain_alerts", None)
    if drain is not None:
        out.extend(drain())
    tel.sent += len(out)

Place the stage after the enrichers (rules then see geo, identity, asset and risk fields) and before
``apply_privacy``. Documents of dataset ``wireguard.detect`` (our own alerts) are passed through and not
evaluated, so an alert never triggers another alert and the position in the chain cannot loop.

State (correlation windows, detector baselines, the throttle table) is written to
``<state_dir>/detect/<transform_id>.json`` every ``state_save_interval_secs`` and at :meth:`close`, and
read back at start. Every decision uses event time (``@timestamp``); the wall clock only paces the
state file and the suppression check and stamps ``event.created``.

The per-event path is kept short because every event of the gateway crosses it (issue 5's target:
≥ 50,000 events/s with every rule): the route — the Sigma rules, correlations and bound detector
``observe`` methods that can act on an ``event.action`` — is computed once per action and cached,
with each Sigma rule and correlation base rule compiled *for that action* (a leaf on
``event.action`` is decided when the route is built: :func:`.match.compile_for_action`), so a rule
the action decides costs no call; ``@timestamp`` is parsed once per event (a per-second cache,
its common case inlined here); Sigma leaves read fields by unrolled nested-dict walks (:mod:`.match`),
correlations run a closure compiled for their type (:mod:`.correlation`), and detectors read the
common shapes inline, falling back to compiled getters (:func:`.detector.getter`). On this platform
a Python call costs about as much as a dozen dict operations, which is why the hot paths avoid them.
``tests/detect/test_equivalence.py`` holds the alerts of a fixed mixed stream, so none of this
changes a verdict; ``tests/detect/test_detect_fastpaths.py`` checks each fast path against the
plain algorithm; ``bench/bench_detect.py`` measures it.

A rule that raises on a document is a counted error (``rule_error@detect``) and the other rules still
run; a document without a parsable ``@timestamp`` is counted (``missing_timestamp@detect``) and is
evaluated at the latest event time the engine has seen.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wgsiem.enrich.base import TransformContext
from wgsiem.errors import ConfigError
from wgsiem.event import Envelope, EventMeta
from wgsiem.private_file import write_private

from .alert import _MILLIS, _SECONDS, ALERT_DATASET, AlertGate, Entity, build_alert, entity_of, event_time
from .config import DetectConfig
from .correlation import CorrelationState
from .detector import Detector, Finding
from .lifecycle import AlertStore, Suppression
from .match import ALWAYS, NEVER, Predicate
from .rule import BUILTIN_RULES, DetectionRule, load_rules

__all__ = ["DetectionEngine", "build_detector"]

log = logging.getLogger(__name__)
_STATE_VERSION = 1


def build_detector(rule: DetectionRule, overrides: dict[str, Any] | None = None) -> Detector:
    """Instantiate a detector rule's plugin with its options (the rule file's, then ``overrides``)."""
    module_name, _, cls_name = rule.detector.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"detector {rule.detector!r} of rule {rule.name} cannot be imported: {e}") from e
    options = {**(rule.options or {}), **(overrides or {})}
    try:
        det = cls(options)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"options of detector rule {rule.name}: {e}", fix="see docs/detections.md") from e
    if not isinstance(det, Detector):
        raise ConfigError(
            f"{rule.detector} does not implement the detector contract (wgsiem.detect.detector)"
        )
    return det


_Observe = Callable[[dict[str, Any], float, str | None], tuple[str, ...] | None]
_Route = tuple[
    tuple[tuple[DetectionRule, Predicate | None], ...],
    tuple[tuple[DetectionRule, CorrelationState, _Observe], ...],
    tuple[tuple[DetectionRule, Callable[[dict[str, Any], float], list[Finding]]], ...],
]
"""Per ``event.action``: the Sigma rules (with their predicate for that action; ``None``: it always
holds), the correlations (with their ``observe`` for that action) and the detectors (bound
``observe``) to run."""


def _wants(det: Detector, action: str) -> bool:
    actions = getattr(det, "actions", None)
    return actions is None or action in actions


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
        self._sigma = [r for r in rules if r.kind == "sigma"]
        self._correlations = [
            (r, CorrelationState(r.correlation, max_groups=config.max_groups))
            for r in rules
            if r.kind == "correlation" and r.correlation is not None
        ]
        known = {r.name for r in rules if r.kind == "detector"} | set(config.disabled_rules)
        unknown = set(config.detector_options) - known
        if unknown:
            raise ConfigError(
                f"detector_options for {', '.join(sorted(unknown))}: no such detector rule is loaded",
                fix="use the `name` of a detector rule (docs/detections.md, Built-in rules)",
            )
        self._detectors = [
            (r, build_detector(r, config.detector_options.get(r.name))) for r in rules if r.kind == "detector"
        ]
        self._routes: dict[str, _Route] = {}  # for documents whose `event` is an object
        self._general_routes: dict[Any, _Route] = {}  # for the rest (the general predicates)
        self._alert_observers = [(r, d) for r, d in self._detectors if getattr(d, "wants_alerts", False)]
        self._gate = AlertGate(
            config.throttle_window_secs, max_entities=config.max_entities, max_event_ids=config.max_event_ids
        )
        self._pending: list[Envelope] = []
        self._unrecorded: list[dict[str, Any]] = []
        self._latest = 0.0
        self._calls = 0
        self._sizes: dict[str, int] = {}
        self._last_ts: Any = None
        self._last_at: float | None = None
        self.matches: Counter[str] = Counter()
        self.alerts: Counter[str] = Counter()
        self.muted: Counter[str] = Counter()
        self.state_path = Path(ctx.state_dir) / "detect" / f"{transform_id}.json"
        self._next_save = time.monotonic() + config.state_save_interval_secs
        self._store: AlertStore | None = None
        self._suppressions: list[Suppression] = []
        self._data_version = -1
        self._next_suppression_check = 0.0
        if config.lifecycle:
            self._store = AlertStore(Path(ctx.state_dir) / "alerts.db")
            self._refresh_suppressions(force=True)
        if config.state:
            self._load_state()

    # -- the stage -------------------------------------------------------------------------------

    def __call__(self, envelope: Envelope) -> Envelope:
        doc = envelope.data
        event = doc.get("event")
        if isinstance(event, dict):
            if event.get("dataset") == ALERT_DATASET:
                return envelope
            raw_id = event.get("id")
            act = event.get("action")
            specialized = type(act) is str and type(event) is dict and type(doc) is dict
            route = self._routes.get(act) if specialized else None  # type: ignore[arg-type]
        else:
            raw_id = act = route = None
            specialized = False
        ts = doc.get("@timestamp")
        if ts is not None and ts == self._last_ts:  # a batch shares its poll's timestamp
            at: float | None = self._last_at
        else:
            # event_time's common case inlined (`2026-11-02T08:00:00.123Z`, a second seen before)
            at = None
            if type(ts) is str and len(ts) == 24 and ts[23] == "Z":
                micros, second = _MILLIS.get(ts[19:23]), _SECONDS.get(ts[:19])
                if micros is not None and second is not None:
                    at = (second * 1_000_000 + micros) / 1_000_000
            if at is None:
                at = event_time(doc)
            self._last_ts, self._last_at = ts, at
        if at is None:
            self.ctx.telemetry.error("missing_timestamp", "detect", "event without a parsable @timestamp")
            at = self._latest
        elif at > self._latest:
            self._latest = at
        evidence_id = raw_id if type(raw_id) is str else (str(raw_id) if raw_id is not None else None)
        if route is None:
            if not specialized and (type(act) is str or not isinstance(act, str)):
                route = self._general_routes.get(act if type(act) is str else None)
            if route is None:
                route = self._route(act, specialized=specialized)
        sigma, correlations, detectors = route
        for rule, predicate in sigma:
            try:
                hit = predicate is None or predicate(doc)
            except Exception as exc:  # a rule bug must not stop the other rules or the pipeline
                self._rule_error(rule, exc)
                continue
            if hit:
                self._raise(rule, doc, entity_of(rule, doc), at, evidence_id)
        for rule, state, observe_group in correlations:
            try:
                fired = observe_group(doc, at, evidence_id)
            except Exception as exc:
                self._rule_error(rule, exc)
                continue
            if fired is not None:
                self._raise(
                    rule,
                    doc,
                    entity_of(rule, doc),
                    at,
                    evidence_id,
                    evidence_ids=state.evidence(fired),
                    details={"group": dict(zip(state.corr.group_by, fired, strict=True))},
                )
        for rule, observe in detectors:
            try:
                findings = observe(doc, at)
            except Exception as exc:
                self._rule_error(rule, exc)
                continue
            if findings:
                for f in findings:
                    self._raise_finding(rule, doc, f, at, evidence_id)
        self._calls += 1
        if not self._calls & 0xFF and time.monotonic() >= self._next_save:
            self.save_state()
        return envelope

    def _route(self, act: Any, *, specialized: bool) -> _Route:
        """The rules and detectors that can act on events of ``event.action`` ``act`` (compared
        casefolded; the rest are skipped), cached per action as written. ``specialized``: for
        documents whose ``event`` is an object holding the string ``act``, so the Sigma rules and
        correlation base rules are compiled for that action (:func:`.match.compile_for_action`) —
        one that cannot match it is left out, one it decides needs no call."""
        action = act.casefold() if isinstance(act, str) else ""
        sigma: list[tuple[DetectionRule, Predicate | None]] = []
        correlations: list[tuple[DetectionRule, CorrelationState, _Observe]] = []
        for r in self._sigma:
            if r.actions is None or action in r.actions:
                pred = r.predicate_for(act) if specialized else r.predicate
                if pred is not NEVER:
                    sigma.append((r, None if pred is ALWAYS else pred))
        for r, s in self._correlations:
            if r.actions is None or action in r.actions:
                observe = s.observer(act) if specialized else s.observe
                if observe is not None:
                    correlations.append((r, s, observe))
        route = (
            tuple(sigma),
            tuple(correlations),
            tuple((r, d.observe) for r, d in self._detectors if _wants(d, action)),
        )
        cache: dict[Any, _Route] = self._routes if specialized else self._general_routes
        # no `event.action` (or not a string): one route; a subclass of str: not cached
        if len(cache) < 4096 and (type(act) is str or not isinstance(act, str)):
            cache[act if type(act) is str else None] = route  # (actions: a few dozen)
        return route

    def _rule_error(self, rule: DetectionRule, exc: Exception) -> None:
        self.ctx.telemetry.error("rule_error", "detect", f"{rule.name}: {type(exc).__name__}: {exc}")

    def _raise_finding(
        self, rule: DetectionRule, doc: dict[str, Any], f: Finding, at: float, evidence_id: str | None
    ) -> None:
        self._raise(
            rule,
            doc,
            Entity(f.entity_field, f.entity_value),
            at,
            evidence_id,
            level=f.level,
            reason=f.reason,
            evidence_ids=f.evidence_ids,
            details=f.details,
        )

    def _raise(
        self,
        rule: DetectionRule,
        doc: dict[str, Any],
        entity: Entity,
        at: float,
        evidence_id: str | None,
        **extra: Any,
    ) -> None:
        self.matches[rule.name] += 1
        if self._suppressed(rule, entity, at):
            self.muted[rule.name] += 1
            return
        suppressed = self._gate.admit(rule.id, entity, evidence_id, at)
        if suppressed is None:
            return
        alert = build_alert(
            rule,
            doc,
            entity,
            at=at,
            created=self._clock(),
            suppressed_before=suppressed,
            window_secs=self.config.throttle_window_secs,
            **extra,
        )
        self.alerts[rule.name] += 1
        self._pending.append(Envelope(alert, EventMeta(self.transform_id, time.time_ns())))
        self._unrecorded.append(alert)
        for obs_rule, det in self._alert_observers:
            if obs_rule is rule:
                continue  # an escalation never escalates itself
            try:
                findings = det.observe(alert, at)
            except Exception as exc:
                self._rule_error(obs_rule, exc)
                continue
            for f in findings:
                self._raise_finding(obs_rule, alert, f, at, str(alert["event"]["id"]))

    # -- suppressions and the lifecycle store ----------------------------------------------------

    def _refresh_suppressions(self, *, force: bool = False) -> None:
        if self._store is None:
            return
        now = time.monotonic()
        if not force and now < self._next_suppression_check:
            return
        self._next_suppression_check = now + self.config.suppression_check_interval_secs
        try:
            version = self._store.data_version()
            if force or version != self._data_version:
                self._data_version = version
                self._suppressions = self._store.suppressions()
        except Exception as exc:  # a locked or damaged file must not stop detection
            self.ctx.telemetry.error("alerts_db", "detect", f"{type(exc).__name__}: {exc}")

    def _suppressed(self, rule: DetectionRule, entity: Entity, at: float) -> bool:
        self._refresh_suppressions()
        return any(s.covers(rule.id, rule.name, entity.value, at) for s in self._suppressions)

    def drain_alerts(self) -> list[Envelope]:
        """The alerts raised since the last call, in the order their evidence arrived."""
        out, self._pending = self._pending, []
        self._record()
        return out

    def _record(self) -> None:
        if self._store is None or not self._unrecorded:
            self._unrecorded.clear()
            return
        try:
            self._store.add_alerts(self._unrecorded)
            self._unrecorded.clear()
        except Exception as exc:  # kept for the next drain; the alert events flowed anyway
            self.ctx.telemetry.error("alerts_db", "detect", f"{type(exc).__name__}: {exc}")
            del self._unrecorded[: -self.config.max_event_ids]

    # -- state -----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION,
            "latest": self._latest,
            "gate": self._gate.snapshot(),
            "correlations": {r.id: s.snapshot() for r, s in self._correlations},
            "detectors": {r.id: d.snapshot() for r, d in self._detectors},
        }

    def save_state(self) -> None:
        """Write the state file; also measures each part's size for :meth:`status` (so ``status()``
        never serializes the whole state itself)."""
        self._next_save = time.monotonic() + self.config.state_save_interval_secs
        if not self.config.state:
            return
        try:
            data = self._serialize()
            write_private(self.state_path, data, fsync=False)
        except (OSError, TypeError, ValueError) as exc:
            self.ctx.telemetry.error("state_write", "detect", f"{self.state_path}: {exc}")

    def _serialize(self) -> bytes:
        dump = json.JSONEncoder(separators=(",", ":")).encode
        sizes: dict[str, int] = {}
        corr_parts, det_parts = [], []
        for r, s in self._correlations:
            text = dump(s.snapshot())
            sizes[r.name] = len(text)
            corr_parts.append(f"{dump(r.id)}:{text}")
        for r, d in self._detectors:
            text = dump(d.snapshot())
            sizes[r.name] = len(text)
            det_parts.append(f"{dump(r.id)}:{text}")
        self._sizes = sizes
        head = dump({"version": _STATE_VERSION, "latest": self._latest, "gate": self._gate.snapshot()})
        return (
            head[:-1]
            + ',"correlations":{'
            + ",".join(corr_parts)
            + '},"detectors":{'
            + ",".join(det_parts)
            + "}}"
        ).encode()

    def _load_state(self) -> None:
        try:
            data = json.loads(self.state_path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self.ctx.telemetry.error("state_read", "detect", f"{self.state_path}: {exc}; starting empty")
            return
        if not isinstance(data, dict) or data.get("version") != _STATE_VERSION:
            self.ctx.telemetry.error(
                "state_read", "detect", f"{self.state_path}: unknown version; starting empty"
            )
            return
        if isinstance(data.get("latest"), int | float):
            self._latest = float(data["latest"])
        self._gate.restore(data.get("gate"))
        corr: dict[str, Any] = data["correlations"] if isinstance(data.get("correlations"), dict) else {}
        for r, s in self._correlations:
            s.restore(corr.get(r.id))
        dets: dict[str, Any] = data["detectors"] if isinstance(data.get("detectors"), dict) else {}
        for r, d in self._detectors:
            if isinstance(dets.get(r.id), dict):
                try:
                    d.restore(dets[r.id])
                except Exception as exc:  # a damaged part costs that detector its memory, not the start
                    self.ctx.telemetry.error("state_read", "detect", f"{r.name}: {type(exc).__name__}: {exc}")

    def state_usage(self, *, measure: bool = False) -> dict[str, Any]:
        """Entries (now) and serialized bytes (at the last state write, or now with ``measure``) of each
        detector and correlation — what the state file holds."""
        if measure or not self._sizes:
            self._serialize()
        out: dict[str, Any] = {}
        parts: list[tuple[str, int]] = [(r.name, d.entries()) for r, d in self._detectors]
        parts += [(r.name, len(s)) for r, s in self._correlations]
        for name, n in parts:
            size = self._sizes.get(name, 0)
            out[name] = {"entries": n, "bytes": size, "bytes_per_entry": round(size / n, 1) if n else 0.0}
        return out

    def close(self) -> None:
        self._record()
        self.save_state()
        if self._store is not None:
            self._store.close()
            self._store = None

    def status(self) -> dict[str, Any]:
        usage = self.state_usage()
        peers = max((u["entries"] for u in usage.values()), default=0)
        total = sum(u["bytes"] for u in usage.values())
        return {
            "rules": len(self.rules),
            "matches": dict(self.matches),
            "alerts": dict(self.alerts),
            "suppressed": self._gate.suppressed,
            "duplicates": self._gate.duplicates,
            "muted_by_suppression": dict(self.muted),
            "suppressions": len(self._suppressions),
            "throttle_entries": len(self._gate),
            "pending_alerts": len(self._pending),
            "state": usage,
            "state_bytes": total,
            "state_bytes_per_peer": round(total / peers, 1) if peers else 0.0,
        }
