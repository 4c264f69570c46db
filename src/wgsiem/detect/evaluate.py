"""Measure detections on a labelled simulation: replay it through enrichment and detection, then match
alerts to labels.

``evaluate(directory)`` replays ``<directory>/telemetry`` with the replay driver
(:class:`~wgsiem.replay.driver.ReplaySource`: every file claimed by its source, records merged by event
time) through the configured transforms — by default ``enrich_geo`` (the simulation's GeoIP databases),
``enrich_identity``, ``enrich_assets`` and ``detect`` with every rule — exactly as ``wgsiem replay``
would, in-process, and keeps the alerts (``event.dataset: wireguard.detect``).

**Matching is by entity and time, whichever rule alerted.** A label names its entity (peer key, user,
endpoint or tunnel address, host) and its span; an alert matches a label when the alert's time lies in
``[start - slack, end + grace]`` and the alert names the label's entity: the same peer key when both
carry one (an address alone would confuse peers sharing a CGNAT address), otherwise the same user, or
an address among the alert's entity value, ``source.ip`` and ``related.ip``. So a rule written after the
simulator (a stateful detector, a correlation) is measured without the simulator knowing it.

* an alert matching an attack label is a true alert; any other is false (and if it matches a labelled
  benign situation — a trip, a provisioning, a backup, a scanner — that cause is reported);
* an alert outside every label's span that is the *aftermath* of an attack is true, not false:
  impossible travel back from the country an attacker used the victim's key from
  (``details.previous_country`` = the label's country), raised at the owner's next handshake up to
  three days after the attack; it does not count towards the attack's detection (``aftermath_of``);
* a label is detected when at least one alert matches it; its delay is the first such alert's event
  time minus the label's start (event time: the same numbers as a live run);
* per class: recall, median / p95 delay; per rule: alerts, true, false, precision, false alerts per
  1,000 peer-days, and which classes it caught.

Targets (issue 5): recall ≥ 0.95 per class, ≤ 1 false alert per 1,000 peer-days, median delay ≤ one
poll interval (state and config classes) or ≤ the window (volumetric, log and correlation classes,
300 s).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wgsiem.errors import WgsiemError

__all__ = [
    "AlertRecord",
    "ClassResult",
    "Evaluation",
    "RuleResult",
    "default_transforms",
    "evaluate",
    "match_alerts",
    "replay_alerts",
]

WINDOW_SECS = 300.0
GRACE_SECS = 900.0
SLACK_SECS = 60.0
TARGET_RECALL = 0.95
TARGET_FALSE_PER_1000_PEER_DAYS = 1.0


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """What evaluation keeps of an alert."""

    rule: str
    time: float
    entity_field: str | None
    entity_value: str | None
    peer_key: str | None
    user: str | None
    ips: frozenset[str]
    severity: int | None
    alert_id: str | None
    previous_country: str | None = None


@dataclass(slots=True)
class ClassResult:
    name: str
    kind: str
    labels: int = 0
    detected: int = 0
    delays: list[float] = field(default_factory=list)
    rules: Counter[str] = field(default_factory=Counter)
    target_delay_secs: float = WINDOW_SECS

    @property
    def recall(self) -> float | None:
        return self.detected / self.labels if self.labels else None

    @property
    def median_delay(self) -> float | None:
        return statistics.median(self.delays) if self.delays else None

    @property
    def p95_delay(self) -> float | None:
        return _percentile(self.delays, 0.95) if self.delays else None

    def met(self) -> dict[str, bool]:
        med = self.median_delay
        return {
            "recall": self.recall is not None and self.recall >= TARGET_RECALL,
            "delay": med is not None and med <= self.target_delay_secs,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "class": self.name,
            "kind": self.kind,
            "labels": self.labels,
            "detected": self.detected,
            "recall": self.recall,
            "delay_median_secs": self.median_delay,
            "delay_p95_secs": self.p95_delay,
            "delay_target_secs": self.target_delay_secs,
            "rules": dict(self.rules),
            "targets_met": self.met(),
        }


@dataclass(slots=True)
class RuleResult:
    name: str
    alerts: int = 0
    true_alerts: int = 0
    false_alerts: int = 0
    false_on_benign: Counter[str] = field(default_factory=Counter)
    classes: Counter[str] = field(default_factory=Counter)  # labels of each class it detected
    aftermath: int = 0  # true alerts raised after an attack's span about that attack (see aftermath_of)

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    def false_per_1000(self, peer_days: float) -> float:
        return 1000.0 * self.false_alerts / peer_days if peer_days else 0.0

    def to_json(self, peer_days: float) -> dict[str, Any]:
        return {
            "rule": self.name,
            "alerts": self.alerts,
            "true_alerts": self.true_alerts,
            "false_alerts": self.false_alerts,
            "precision": self.precision,
            "false_per_1000_peer_days": self.false_per_1000(peer_days),
            "false_on_benign": dict(self.false_on_benign),
            "aftermath_alerts": self.aftermath,
            "detected": dict(self.classes),
        }


@dataclass(slots=True)
class Evaluation:
    directory: str
    peers: int
    days: float
    poll_interval_secs: float
    classes: dict[str, ClassResult]
    rules: dict[str, RuleResult]
    alerts: int
    false_alerts: int
    events: int
    records: int
    replay_secs: float
    undetected: list[str] = field(default_factory=list)

    @property
    def peer_days(self) -> float:
        return self.peers * self.days

    @property
    def false_per_1000(self) -> float:
        return 1000.0 * self.false_alerts / self.peer_days if self.peer_days else 0.0

    def targets_met(self) -> bool:
        return self.false_per_1000 <= TARGET_FALSE_PER_1000_PEER_DAYS and all(
            all(c.met().values()) for c in self.classes.values() if c.labels
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "peers": self.peers,
            "days": self.days,
            "peer_days": self.peer_days,
            "poll_interval_secs": self.poll_interval_secs,
            "events": self.events,
            "records": self.records,
            "replay_secs": round(self.replay_secs, 2),
            "events_per_sec": round(self.events / self.replay_secs) if self.replay_secs else None,
            "alerts": self.alerts,
            "false_alerts": self.false_alerts,
            "false_per_1000_peer_days": self.false_per_1000,
            "targets": {
                "recall_per_class": TARGET_RECALL,
                "false_per_1000_peer_days": TARGET_FALSE_PER_1000_PEER_DAYS,
                "met": self.targets_met(),
            },
            "classes": [c.to_json() for c in self.classes.values()],
            "rules": [r.to_json(self.peer_days) for r in self.rules.values()],
            "undetected_labels": self.undetected[:200],
        }


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _get(doc: dict[str, Any], dotted: str) -> Any:
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def alert_record(doc: dict[str, Any]) -> AlertRecord:
    from .alert import event_time

    ips: set[str] = set()
    for dotted in ("source.ip", "wireguard.alert.entity.value"):
        v = _get(doc, dotted)
        if isinstance(v, str):
            ips.add(v)
    rel = _get(doc, "related.ip")
    if isinstance(rel, list):
        ips.update(str(x) for x in rel)
    ent_value = _get(doc, "wireguard.alert.entity.value")
    return AlertRecord(
        rule=str(_get(doc, "wireguard.alert.rule_name") or _get(doc, "event.action") or "?"),
        time=event_time(doc) or 0.0,
        entity_field=_get(doc, "wireguard.alert.entity.field"),
        entity_value=str(ent_value) if ent_value is not None else None,
        peer_key=_get(doc, "wireguard.peer.public_key"),
        user=_get(doc, "user.name"),
        ips=frozenset(ips),
        severity=_get(doc, "event.severity"),
        alert_id=_get(doc, "event.id"),
        previous_country=_get(doc, "wireguard.alert.details.previous_country"),
    )


# ---------------------------------------------------------------------------- replay
def learning_overrides(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``learning_days`` of every detector that has one, set to the simulation's benign history.

    A detector that learns for 7 or 14 days never leaves its learning period in a 7-day simulation;
    the simulator starts attacks after ``learning_days`` of benign history (manifest), so evaluation
    shortens the detectors' learning to that. Other options stay as the rule files set them.
    """
    from .rule import BUILTIN_RULES, load_rules

    days = float(manifest.get("spec", {}).get("learning_days", 1.0))
    out: dict[str, dict[str, Any]] = {}
    for rule in load_rules([BUILTIN_RULES]):
        options = getattr(rule, "options", None) or {}
        if getattr(rule, "kind", "sigma") == "detector" and "learning_days" in options:
            out[rule.name] = {"learning_days": days}
    return out


def default_transforms(
    directory: Path, manifest: dict[str, Any], detector_options: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The transform chain of an evaluation: the simulation's enrichment inputs, then detection (with
    the detectors' learning shortened to the simulation's, plus ``detector_options``)."""
    from wgsiem.enrich.enrich_assets.config import EnrichAssetsConfig
    from wgsiem.enrich.enrich_geo.config import EnrichGeoConfig
    from wgsiem.enrich.enrich_identity.config import EnrichIdentityConfig

    inputs = manifest.get("inputs", {})
    return {
        "geo": EnrichGeoConfig(
            city_db_path=str(directory / inputs["city_db"]),
            asn_db_path=str(directory / inputs["asn_db"]),
            fallback="none",
            reload_check_interval_secs=0,
        ),
        "identity": EnrichIdentityConfig(
            inventory_path=str(directory / inputs["identity"]), reload_check_interval_secs=0
        ),
        "assets": EnrichAssetsConfig(
            inventory_path=str(directory / inputs["assets"]), reload_check_interval_secs=0
        ),
        "detect": _detect_config(manifest, detector_options),
    }


def _detect_config(manifest: dict[str, Any], detector_options: dict[str, dict[str, Any]] | None) -> Any:
    from wgsiem.detect.config import DetectConfig

    options = learning_overrides(manifest)
    for name, opts in (detector_options or {}).items():
        options.setdefault(name, {}).update(opts)
    if "detector_options" in DetectConfig.model_fields:
        return DetectConfig(detector_options=options)
    return DetectConfig()


def default_sources(manifest: dict[str, Any]) -> dict[str, Any]:
    from wgsiem.sources.wg_state.config import WgStateSourceConfig

    return {
        "wg_state": WgStateSourceConfig(poll_interval_secs=float(manifest.get("poll_interval_secs", 60.0)))
    }


def replay_alerts(
    telemetry: Path,
    *,
    sources: dict[str, Any],
    transforms: dict[str, Any] | None,
    hostname: str,
    progress: Callable[[str], None] | None = None,
    observe: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[list[AlertRecord], dict[str, Any]]:
    """Replay ``telemetry`` through ``transforms`` (one of them ``detect``); the alerts and run stats.

    The transform chain runs as :class:`~wgsiem.pipeline.runtime.Pipeline` runs it (each stage over
    the batch, then what a stage's ``drain_alerts`` hands over joins the batch for the next stages);
    no sink: the documents are dropped once seen (after ``observe``, when given), only alerts are kept.
    """
    from wgsiem.pipeline.telemetry import TelemetryRegistry
    from wgsiem.replay.driver import ReplaySource, ReplayStats, plan_replay
    from wgsiem.service import build_transforms

    from .alert import ALERT_DATASET

    plan = plan_replay([telemetry])
    if not plan.files:
        raise WgsiemError(f"nothing to replay under {telemetry}", fix="pass a `wgsiem simulate` directory")
    alerts: list[AlertRecord] = []
    started = time.monotonic()

    def on_progress(st: ReplayStats, _files: int, done: int) -> None:
        if progress is not None:
            rate = st.records / max(1e-9, time.monotonic() - started)
            progress(
                f"{'replayed' if done else 'replay'}: {st.records:,} records ({rate:,.0f}/s), "
                f"{st.events:,} events, {len(alerts):,} alerts"
            )

    with tempfile.TemporaryDirectory(prefix="wgsiem-evaluate-") as tmp:
        registry = TelemetryRegistry()
        source = ReplaySource(
            plan, sources, hostname=hostname, state_dir=Path(tmp), registry=registry, progress=on_progress
        )
        chain = build_transforms(
            transforms or {}, registry, hostname=hostname, state_dir=Path(tmp), peers=source.peers
        )
        stages = [proc for _tid, proc in chain]

        async def emit(batch: list[Any]) -> None:
            for proc in stages:
                out = []
                for env in batch:
                    res = proc(env)
                    if res is not None:
                        out.append(res)
                drain = getattr(proc, "drain_alerts", None)
                if drain is not None:
                    out.extend(drain())
                batch = out
            for env in batch:
                if observe is not None:
                    observe(env.data)
                ev = env.data.get("event")
                if isinstance(ev, dict) and ev.get("dataset") == ALERT_DATASET:
                    alerts.append(alert_record(env.data))

        async def main() -> None:
            await source.run(emit, asyncio.Event())

        try:
            asyncio.run(main())
        finally:
            rule_names: list[str] = []
            for proc in stages:
                close = getattr(proc, "close", None)
                if close is not None:
                    close()
                for r in getattr(proc, "rules", None) or []:
                    name = getattr(r, "name", None)
                    if isinstance(name, str):
                        rule_names.append(name)
                for d in getattr(proc, "detectors", None) or []:
                    name = getattr(d, "name", None)
                    if isinstance(name, str):
                        rule_names.append(name)
    st = source.stats
    stats = {
        "records": st.records,
        "events": st.events,
        "bad_records": st.bad_records,
        "seconds": time.monotonic() - started,
        "rules": rule_names,
        "errors": list(st.errors),
    }
    return alerts, stats


# ---------------------------------------------------------------------------- matching
def _label_values(label: dict[str, Any]) -> tuple[str | None, str | None, set[str]]:
    ent = label.get("entity", {})
    ips = {ent[k] for k in ("source_ip", "tunnel_ip") if ent.get(k)}
    return ent.get("peer_key"), ent.get("user"), ips


def _matches(alert: AlertRecord, label: dict[str, Any], grace: float) -> bool:
    if not label["start"] - SLACK_SECS <= alert.time <= label["end"] + grace:
        return False
    key, user, ips = _label_values(label)
    if alert.peer_key and key:
        return alert.peer_key == key
    if key and alert.entity_value == key:
        return True
    if user and (alert.user == user or alert.entity_value == user):
        return True
    return bool(ips & alert.ips)


def match_alerts(
    alerts: list[AlertRecord],
    labels: list[dict[str, Any]],
    *,
    grace_secs: float = GRACE_SECS,
) -> tuple[dict[str, list[AlertRecord]], list[tuple[AlertRecord, list[dict[str, Any]]]]]:
    """label id → matching alerts (time order); and every alert with the labels it matches."""
    index: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lb in labels:
        key, user, ips = _label_values(lb)
        for v in {key, user, *ips} - {None}:
            index[str(v)].append(lb)
    by_label: dict[str, list[AlertRecord]] = defaultdict(list)
    per_alert: list[tuple[AlertRecord, list[dict[str, Any]]]] = []
    for a in sorted(alerts, key=lambda x: x.time):
        cands: dict[str, dict[str, Any]] = {}
        for v in {a.peer_key, a.user, a.entity_value, *a.ips} - {None}:
            for lb in index.get(str(v), ()):
                cands[lb["id"]] = lb
        hits = [lb for lb in cands.values() if _matches(a, lb, grace_secs)]
        for lb in hits:
            by_label[lb["id"]].append(a)
        per_alert.append((a, hits))
    return by_label, per_alert


AFTERMATH_SECS = 3 * 86400.0
_KEY_ABUSE = frozenset({"geo", "travel", "key_sharing", "escalation"})


def aftermath_of(alert: AlertRecord, labels_by_key: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """The attack an unmatched alert is the aftermath of: impossible travel *back* from the place an
    attacker used the victim's key (``details.previous_country`` = the attack's country), raised at
    the owner's next handshake — hours after the attack's label ended, but about that attack and
    nothing else. Such an alert is not false; it does not count as detecting the attack either."""
    if alert.previous_country is None or alert.peer_key is None:
        return None
    for lb in labels_by_key.get(alert.peer_key, ()):
        if (
            lb["class"] in _KEY_ABUSE
            and lb.get("detail", {}).get("country") == alert.previous_country
            and lb["start"] <= alert.time <= lb["end"] + AFTERMATH_SECS
        ):
            return lb
    return None


def score(
    alerts: list[AlertRecord],
    labels: list[dict[str, Any]],
    *,
    manifest: dict[str, Any],
    rule_names: list[str],
    grace_secs: float = GRACE_SECS,
) -> tuple[dict[str, ClassResult], dict[str, RuleResult], int, list[str]]:
    from .simulate.spec import ATTACK_CLASSES

    poll = float(manifest.get("poll_interval_secs", 60.0))
    classes: dict[str, ClassResult] = {}
    for name, ac in ATTACK_CLASSES.items():
        target = poll if ac.kind in ("state", "config") else WINDOW_SECS
        classes[name] = ClassResult(name, ac.kind, target_delay_secs=target)
    rules: dict[str, RuleResult] = {n: RuleResult(n) for n in rule_names}
    by_label, per_alert = match_alerts(alerts, labels, grace_secs=grace_secs)
    undetected: list[str] = []
    for lb in labels:
        if lb.get("benign"):
            continue
        cr = classes.setdefault(lb["class"], ClassResult(lb["class"], "unknown"))
        cr.labels += 1
        found = by_label.get(lb["id"], [])
        if found:
            cr.detected += 1
            cr.delays.append(max(0.0, found[0].time - lb["start"]))
            for rn in {a.rule for a in found}:
                cr.rules[rn] += 1
                rules.setdefault(rn, RuleResult(rn)).classes[lb["class"]] += 1
        else:
            undetected.append(lb["id"])
    false_total = 0
    attacks_by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lb in labels:
        key = lb.get("entity", {}).get("peer_key")
        if key and not lb.get("benign"):
            attacks_by_key[key].append(lb)
    for a, matched in per_alert:
        rr = rules.setdefault(a.rule, RuleResult(a.rule))
        rr.alerts += 1
        if any(not m.get("benign") for m in matched):
            rr.true_alerts += 1
        elif aftermath_of(a, attacks_by_key) is not None:
            rr.true_alerts += 1
            rr.aftermath += 1
        else:
            rr.false_alerts += 1
            false_total += 1
            for m in matched:
                rr.false_on_benign[m["class"]] += 1
    return classes, rules, false_total, undetected


def read_labels(directory: Path) -> list[dict[str, Any]]:
    path = directory / "labels.ndjson"
    if not path.exists():
        raise WgsiemError("no labels.ndjson here", fix="evaluate a directory written by `wgsiem simulate`")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / "manifest.json"
    if not path.exists():
        raise WgsiemError("no manifest.json here", fix="evaluate a directory written by `wgsiem simulate`")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def evaluate(
    directory: Path,
    *,
    config_path: Path | None = None,
    grace_secs: float = GRACE_SECS,
    detector_options: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Replay a simulation directory through enrichment + detection and score the alerts."""
    manifest = read_manifest(directory)
    labels = read_labels(directory)
    sources = default_sources(manifest)
    transforms: dict[str, Any] | None = default_transforms(directory, manifest, detector_options)
    hostname = str(manifest.get("hostname", "gw-sim-1"))
    if config_path is not None:
        from wgsiem.config.loader import load_config

        cfg = load_config(str(config_path))
        for sc in cfg.sources.values():
            sources.setdefault(sc.type, sc)
        transforms = dict(cfg.transforms)
        if not any(getattr(t, "type", None) == "detect" for t in transforms.values()):
            transforms["detect"] = _detect_config(manifest, detector_options)
    alerts, stats = replay_alerts(
        directory / str(manifest.get("telemetry", "telemetry")),
        sources=sources,
        transforms=transforms,
        hostname=hostname,
        progress=progress,
    )
    classes, rules, false_total, undetected = score(
        alerts, labels, manifest=manifest, rule_names=stats["rules"], grace_secs=grace_secs
    )
    spec = manifest.get("spec", {})
    return Evaluation(
        directory=str(directory),
        peers=int(spec.get("peers", 0)),
        days=float(spec.get("days", 0)),
        poll_interval_secs=float(manifest.get("poll_interval_secs", 60.0)),
        classes=classes,
        rules=rules,
        alerts=len(alerts),
        false_alerts=false_total,
        events=int(stats["events"]),
        records=int(stats["records"]),
        replay_secs=float(stats["seconds"]),
        undetected=undetected,
    )


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "—"
    return f"{v:.2f}" if pct else f"{v:,.0f}"


def render_table(ev: Evaluation) -> str:
    """The evaluation as two plain-text tables (classes, rules) and a summary line."""
    lines = [
        f"{ev.directory}: {ev.peers:,} peers × {ev.days:g} days ({ev.peer_days:,.0f} peer-days), "
        f"{ev.events:,} events replayed in {ev.replay_secs:.1f}s, {ev.alerts:,} alerts, "
        f"{ev.false_alerts:,} false ({ev.false_per_1000:.2f} per 1,000 peer-days, target ≤ "
        f"{TARGET_FALSE_PER_1000_PEER_DAYS:g})",
        "",
        f"{'class':<16} {'kind':<11} {'labels':>6} {'found':>6} {'recall':>6} {'med s':>7} {'p95 s':>7} "
        f"{'target s':>8}  ok  rules",
    ]
    for c in ev.classes.values():
        if not c.labels:
            continue
        ok = "yes" if all(c.met().values()) else "NO"
        rules = ", ".join(f"{k}:{v}" for k, v in c.rules.most_common())
        lines.append(
            f"{c.name:<16} {c.kind:<11} {c.labels:>6} {c.detected:>6} {_fmt(c.recall, True):>6} "
            f"{_fmt(c.median_delay):>7} {_fmt(c.p95_delay):>7} {c.target_delay_secs:>8.0f}  {ok:<3} {rules}"
        )
    lines += ["", f"{'rule':<36} {'alerts':>7} {'true':>6} {'false':>6} {'prec':>5} {'f/1kpd':>7}  detected"]
    for r in sorted(ev.rules.values(), key=lambda x: x.name):
        det = ", ".join(f"{k}:{v}" for k, v in r.classes.most_common())
        if r.false_on_benign:
            det += "  (false on " + ", ".join(f"{k}:{v}" for k, v in r.false_on_benign.most_common()) + ")"
        lines.append(
            f"{r.name:<36} {r.alerts:>7} {r.true_alerts:>6} {r.false_alerts:>6} {_fmt(r.precision, True):>5} "
            f"{r.false_per_1000(ev.peer_days):>7.2f}  {det}"
        )
    lines.append("")
    lines.append("targets met" if ev.targets_met() else "targets NOT met")
    return "\n".join(lines)
