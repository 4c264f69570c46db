"""What ``/metrics`` says: a custom collector that reads the current state at scrape time.

Why a collector and not ``Gauge``/``Counter`` objects updated per event:

* **No per-event series churn.** Series exist because a peer or an interface exists, never because
  an event happened: the label sets are rebuilt from the state on every scrape, so a removed peer's
  series simply stop (Prometheus marks them stale) and nothing accumulates in memory.
* **Roaming never creates a series.** No metric has an endpoint label, and the event-derived
  counters are created at zero for every known interface (and every session end reason) before the
  first event, so the first roam increments an existing series instead of adding one.
* **Low cardinality by default.** Interface labels only; per-peer series (``interface``,
  ``public_key``, optional ``name``) are opt-in.

The collector builds plain :class:`Family` values (name, type, help, label names, rows). They become
prometheus_client families in :meth:`WgsiemCollector.collect` (any registry, OpenMetrics), and are
written straight to the text format by ``encoder.encode_text`` on the hot path: 4 samples per peer
are cheap as tuples, expensive as prometheus_client ``Sample`` objects.

Interface byte counters are sums over peers, which would go *down* when a peer is removed or its
counter resets — and Prometheus' ``rate()`` would read that as a counter reset and invent an increase
the size of the whole interface. :class:`_ByteTotals` keeps them monotonic by remembering each peer's
last record and carrying the bytes of peers that disappeared or restarted from zero.

Thread safety: scrapes run in HTTP server threads while the event loop mutates the differ. Every
container is copied with one C-level call (``list(d.items())``), which does not release the GIL,
and the peer record is an immutable object swapped by reference; a scrape may therefore mix two
adjacent polls for *different* peers but never sees a torn record.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wgsiem import __version__
from wgsiem.event import Envelope
from wgsiem.pipeline.telemetry import TelemetryRegistry

__all__ = ["COMPONENT_GAUGES", "END_REASONS", "STATE_DATASET", "EventCounters", "Family", "WgsiemCollector"]

STATE_DATASET = "wireguard.state"
"""Only events of the wg_state source feed the event-derived counters (another source reporting the
same handshake must not count it twice)."""

END_REASONS = ("expired", "peer-removed", "interface-removed", "counter-reset")
"""Every ``wireguard.session.end_reason`` the differ emits: their series exist from the start."""

_COUNTED = {
    "handshake": "handshakes",
    "session-started": "sessions_started",
    "endpoint-changed": "endpoint_changes",
    "counter-reset": "transfer_resets",
}
_W = "wgsiem_wireguard_"
_C = "wgsiem_component_"
_COMPONENT_LABELS = ("component_id", "component_kind", "component_type")

COMPONENT_GAUGES = {
    "outbox_queued_events": "Events in the sink's outbox not yet delivered (queue depth).",
    "outbox_queued_bytes": "Bytes of the sink's outbox records not yet delivered.",
    "outbox_disk_bytes": "Bytes the sink's outbox occupies on disk (bounded by its max_bytes).",
    "outbox_oldest_age_seconds": "Age of the oldest undelivered event in the sink's outbox (delivery lag).",
    "outbox_retries": "Delivery attempts of the sink's outbox that failed and were retried (since start).",
    "outbox_parked_events": "Events the destination rejected for good, parked (since start).",
    "outbox_delivery_failing": "1 while the sink's destination is failing (retrying with backoff), else 0.",
}
"""Gauges a component may report (``ComponentTelemetry.gauges``), a row per component that sets it.
The families exist as soon as one component (an outbox sink) reports any of them — a configuration
without network sinks exposes exactly what it did before. Delivery errors are the ``errors`` counter
(stage ``deliver``)."""
_IFACE = ("interface",)


@dataclass(slots=True)
class Family:
    """One metric family. ``name`` is without ``_total`` (prometheus_client's convention: a counter's
    samples are ``<name>_total``); ``rows`` hold label values in ``labels`` order and the value.
    Rows may share one label-value tuple across families (the encoder renders it once)."""

    name: str
    type: str  # "counter" | "gauge"
    help: str
    labels: tuple[str, ...] = ()
    rows: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def add(self, values: tuple[str, ...], value: float) -> None:
        self.rows.append((values, value))

    def to_metric(self) -> Metric:
        cls = CounterMetricFamily if self.type == "counter" else GaugeMetricFamily
        fam = cls(self.name, self.help, labels=list(self.labels))
        for values, value in self.rows:
            fam.add_metric(list(values), value)
        return fam


def _copy_values(d: Mapping[Any, Any]) -> list[Any]:
    """``list(d.values())`` from another thread (one allocation: no tuple per entry, which at 100k
    peers would trigger collections of the whole heap); retried if ``d`` was resized mid-copy."""
    for _ in range(5):
        try:
            return list(d.values())
        except RuntimeError:
            continue
    return list(d.values())


def _copy_items(d: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """``list(d.items())`` from another thread; retried if the owner resized ``d`` mid-copy."""
    for _ in range(5):
        try:
            return list(d.items())
        except RuntimeError:  # "dictionary changed size during iteration" (only if GC ran Python code)
            continue
    return list(d.items())


class EventCounters:
    """Counts of state events by interface, fed by :meth:`PrometheusExporterSink.write`."""

    def __init__(self) -> None:
        self.by_interface: dict[str, Counter[str]] = {}

    def add(self, batch: Iterable[Envelope]) -> None:
        for env in batch:
            data = env.data
            event = data.get("event")
            if not isinstance(event, dict) or event.get("dataset") != STATE_DATASET:
                continue
            action = event.get("action")
            if action not in _COUNTED and action != "session-ended":
                continue
            try:
                iface = data["observer"]["ingress"]["interface"]["name"]
            except (KeyError, TypeError):
                continue
            if not isinstance(iface, str):
                continue
            c = self.by_interface.get(iface)
            if c is None:
                c = self.by_interface[iface] = Counter()
            if action == "session-ended":
                session = data.get("wireguard", {}).get("session", {})
                reason = session.get("end_reason") if isinstance(session, dict) else None
                c[f"ended:{reason if reason in END_REASONS else 'other'}"] += 1
            else:
                c[_COUNTED[action]] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {k: dict(_copy_items(v)) for k, v in _copy_items(self.by_interface)}


class _ByteTotals:
    """Monotonic per-interface rx/tx totals over a changing peer set (see the module docstring)."""

    __slots__ = ("carried_rx", "carried_tx", "last")

    def __init__(self) -> None:
        self.carried_rx = 0
        self.carried_tx = 0
        self.last: dict[str, Any] = {}  # public key → the PeerRecord seen by the previous scrape

    def update(self, recs: dict[str, Any]) -> None:
        """Account for ``recs`` (public key → current PeerRecord); their own sum is added by the caller."""
        last = self.last
        for key, prev in last.items():
            rec = recs.get(key)
            if rec is prev:
                continue  # unchanged record (the common case): nothing to compare
            if rec is None:  # removed since the previous scrape: keep what it had moved
                self.carried_rx += prev.rx_bytes
                self.carried_tx += prev.tx_bytes
                continue
            if rec.rx_bytes < prev.rx_bytes:
                self.carried_rx += prev.rx_bytes
            if rec.tx_bytes < prev.tx_bytes:
                self.carried_tx += prev.tx_bytes
        self.last = recs


class WgsiemCollector(Collector):
    """Builds every ``wgsiem_*`` family from the wg_state sources, the event counters and telemetry."""

    def __init__(
        self,
        registry: TelemetryRegistry,
        sources: Mapping[str, Any],
        events: EventCounters,
        *,
        per_peer_labels: bool = False,
        peer_names: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.sources = sources
        self.events = events
        self.per_peer_labels = per_peer_labels
        self.peer_names = dict(peer_names or {})
        self.clock = clock
        self._totals: dict[str, _ByteTotals] = {}
        self._lock = threading.Lock()  # concurrent scrapes must not interleave _ByteTotals updates

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's interface (any registry, OpenMetrics negotiation)."""
        for fam in self.families():
            yield fam.to_metric()

    def describe(self) -> Iterator[Metric]:
        """The family names, for prometheus_client's ``name[]`` filter. Every family is always
        present (possibly without samples), so the names do not depend on the state."""
        return self.collect()

    def families(self) -> list[Family]:
        """Every family, read from the current state."""
        with self._lock:
            info = Family("wgsiem_build_info", "gauge", "wgsiem version (always 1).", ("version",))
            info.add((__version__,), 1)
            state = [(sid, s) for sid, s in _copy_items(self.sources) if hasattr(s, "differ")]
            return [info, *self._wireguard(state), *self._polls(state), *self._telemetry()]

    # ---- WireGuard state -----------------------------------------------------------------------------

    def _wireguard(self, state: list[tuple[str, Any]]) -> list[Family]:
        now = self.clock()
        up = Family(f"{_W}interface_up", "gauge", "1 while the interface exists, 0 once it is gone.", _IFACE)
        peers_n = Family(f"{_W}peers", "gauge", "Peers configured on the interface.", _IFACE)
        connected = Family(
            f"{_W}connected_peers",
            "gauge",
            "Peers whose latest handshake is younger than the session timeout (180 s, "
            "REJECT_AFTER_TIME) at scrape time.",
            _IFACE,
        )
        sessions = Family(
            f"{_W}open_sessions",
            "gauge",
            "Sessions open in wgsiem's session tracking (started, not yet ended).",
            _IFACE,
        )
        rx = Family(
            f"{_W}received_bytes",
            "counter",
            "Bytes received from the interface's peers (kept monotonic across peer removal and "
            "counter resets).",
            _IFACE,
        )
        tx = Family(
            f"{_W}sent_bytes",
            "counter",
            "Bytes sent to the interface's peers (kept monotonic across peer removal and counter resets).",
            _IFACE,
        )
        latest = Family(
            f"{_W}latest_handshake_timestamp_seconds",
            "gauge",
            "Unix time of the newest handshake of any peer of the interface (0: none yet).",
            _IFACE,
        )
        names = self.peer_names
        plabels = ("interface", "name", "public_key") if names else ("interface", "public_key")
        p_rx = Family(f"{_W}peer_received_bytes", "counter", "Bytes received from the peer.", plabels)
        p_tx = Family(f"{_W}peer_sent_bytes", "counter", "Bytes sent to the peer.", plabels)
        p_hs = Family(
            f"{_W}peer_latest_handshake_timestamp_seconds",
            "gauge",
            "Unix time of the peer's latest handshake (0: never).",
            plabels,
        )
        p_open = Family(f"{_W}peer_session_open", "gauge", "1 while the peer has an open session.", plabels)
        rx_rows, tx_rows, hs_rows, open_rows = p_rx.rows, p_tx.rows, p_hs.rows, p_open.rows

        # sources watching the same interface name are merged: one series per interface label
        by_iface: dict[str, list[Any]] = {}
        timeouts: dict[str, float] = {}
        for _sid, src in state:
            differ = src.differ
            timeout = float(getattr(getattr(differ, "settings", None), "session_timeout_secs", 180.0))
            for name, iface in _copy_items(differ.ifaces):
                by_iface.setdefault(name, []).append(iface)
                timeouts[name] = timeout
        per_peer = self.per_peer_labels
        for name in sorted(by_iface):
            present = 0
            n_conn = n_open = 0
            newest = 0
            rx_sum = tx_sum = 0
            recs: dict[str, Any] = {}
            cutoff = now - timeouts[name]
            for iface in by_iface[name]:
                if iface.gone_since is None:
                    present = 1
                for st in _copy_values(iface.peers):
                    r = st.rec
                    pk = r.public_key
                    recs[pk] = r
                    hs = r.latest_handshake
                    if hs > newest:
                        newest = hs
                    if hs and hs >= cutoff:
                        n_conn += 1
                    is_open = 1 if st.session_id is not None else 0
                    n_open += is_open
                    rx_sum += r.rx_bytes
                    tx_sum += r.tx_bytes
                    if per_peer:
                        lv = (name, names.get(pk, ""), pk) if names else (name, pk)
                        rx_rows.append((lv, r.rx_bytes))
                        tx_rows.append((lv, r.tx_bytes))
                        hs_rows.append((lv, hs))
                        open_rows.append((lv, is_open))
            totals = self._totals.get(name)
            if totals is None:
                totals = self._totals[name] = _ByteTotals()
            totals.update(recs)
            lv1 = (name,)
            up.add(lv1, present)
            peers_n.add(lv1, len(recs))
            connected.add(lv1, n_conn)
            sessions.add(lv1, n_open)
            rx.add(lv1, totals.carried_rx + rx_sum)
            tx.add(lv1, totals.carried_tx + tx_sum)
            latest.add(lv1, newest)
        for gone in set(self._totals) - set(by_iface):  # forgotten interfaces: their series end
            del self._totals[gone]
        out = [up, peers_n, connected, sessions, rx, tx, latest]
        if per_peer:
            out += [p_rx, p_tx, p_hs, p_open]
        return out + self._event_counters(sorted(by_iface))

    def _event_counters(self, known: list[str]) -> list[Family]:
        counts = self.events.snapshot()
        fams = {
            "handshakes": Family(
                f"{_W}handshakes",
                "counter",
                "Handshakes observed (at most one per peer and poll: the state shows the latest only).",
                _IFACE,
            ),
            "sessions_started": Family(
                f"{_W}sessions_started", "counter", "Sessions started (session-started events).", _IFACE
            ),
            "endpoint_changes": Family(
                f"{_W}endpoint_changes",
                "counter",
                "Peers seen at a new outer endpoint (roaming; endpoint-changed events).",
                _IFACE,
            ),
            "transfer_resets": Family(
                f"{_W}transfer_resets",
                "counter",
                "Peer byte counters that went backwards (peer or interface recreated).",
                _IFACE,
            ),
        }
        ended = Family(
            f"{_W}sessions_ended",
            "counter",
            "Sessions ended (session-ended events), by end reason.",
            ("interface", "reason"),
        )
        for iface in sorted(set(known) | set(counts)):
            c = counts.get(iface, {})
            for key, fam in fams.items():
                fam.add((iface,), c.get(key, 0))
            reasons = list(END_REASONS) + (["other"] if c.get("ended:other") else [])
            for reason in reasons:
                ended.add((iface, reason), c.get(f"ended:{reason}", 0))
        return [
            fams["handshakes"],
            fams["sessions_started"],
            ended,
            fams["endpoint_changes"],
            fams["transfer_resets"],
        ]

    def _polls(self, state: list[tuple[str, Any]]) -> list[Family]:
        label = ("component_id",)
        polls = Family(f"{_W}polls", "counter", "Reads of the WireGuard state by the source.", label)
        last_at = Family(
            f"{_W}last_poll_timestamp_seconds",
            "gauge",
            "Unix time of the source's latest read (0: none yet).",
            label,
        )
        last_dur = Family(
            f"{_W}last_poll_duration_seconds",
            "gauge",
            "How long the source's latest poll took (read + diff + normalize).",
            label,
        )
        for sid, src in sorted(state, key=lambda t: t[0]):
            polls.add((sid,), int(getattr(src, "polls", 0)))
            last_at.add((sid,), float(getattr(src, "last_poll_at", None) or 0.0))
            t = getattr(src, "last_poll", None)
            took = 0.0
            if t is not None:
                took = float(t.read_secs) + float(t.diff_secs) + float(t.emit_secs)
            last_dur.add((sid,), took)
        return [polls, last_at, last_dur]

    # ---- pipeline telemetry --------------------------------------------------------------------------

    def _telemetry(self) -> list[Family]:
        received = Family(
            f"{_C}received_events", "counter", "Events the component took in.", _COMPONENT_LABELS
        )
        sent = Family(
            f"{_C}sent_events", "counter", "Events the component passed on or delivered.", _COMPONENT_LABELS
        )
        dropped = Family(
            f"{_C}dropped_events",
            "counter",
            "Events the component dropped, by reason (never silently).",
            (*_COMPONENT_LABELS, "reason"),
        )
        errors = Family(
            f"{_C}errors",
            "counter",
            "Errors, by error type and stage.",
            (*_COMPONENT_LABELS, "error_type", "stage"),
        )
        gauges = {
            name: Family(f"{_C}{name}", "gauge", help_, _COMPONENT_LABELS)
            for name, help_ in COMPONENT_GAUGES.items()
        }
        for comp in self._components():
            base = (str(comp["id"]), str(comp["kind"]), str(comp["type"]))
            for name, value in sorted(comp.get("gauges", {}).items()):
                fam = gauges.get(name)
                if fam is not None:
                    fam.add(base, float(value))
            received.add(base, comp["received"])
            sent.add(base, comp["sent"])
            for reason, n in sorted(comp["dropped"].items()):
                dropped.add((*base, str(reason)), n)
            for key, n in sorted(comp["errors"].items()):
                etype, _, stage = str(key).rpartition("@")
                errors.add((*base, etype or str(key), stage if etype else ""), n)
        extra = list(gauges.values()) if any(f.rows for f in gauges.values()) else []
        return [received, sent, dropped, errors, *extra]

    def _components(self) -> list[dict[str, Any]]:
        for _ in range(5):
            try:
                return self.registry.snapshot()
            except RuntimeError:  # a Counter resized while copied (see the module docstring)
                continue
        return self.registry.snapshot()
