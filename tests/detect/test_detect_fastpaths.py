"""The session-5 fast paths (issue 5's 50,000 events/s) agree with the plain algorithms they replaced.

* the traffic-spike detector keeps each key's window as a slotted object and works out the threshold
  once per window — checked against the plain per-event algorithm (a baseline lookup on every event)
  on generated streams that cross window and hour boundaries, run out of order (replays), expire keys
  and restore a snapshot half-way;
* :meth:`BoundedTable.hit` is ``get`` then ``put`` of the same value, and the inlined table updates of
  the detectors keep that order and those counts;
* rules compiled per ``event.action`` (:func:`compile_for_action`) decide as the general predicates on
  every document carrying that action, and a correlation's per-action ``observer`` moves its windows
  exactly as ``observe`` does;
* the detectors' inline field reads fall back to the compiled getters on the unusual shapes (arrays,
  numbers where strings are usual), so those events decide as before.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.rule import SigmaRule

from wgsiem.detect import BUILTIN_RULES, load_rules
from wgsiem.detect.correlation import CorrelationState
from wgsiem.detect.detector import BoundedTable, Finding, first, hour_of_week
from wgsiem.detect.detectors.dormant_peer import DormantPeer
from wgsiem.detect.detectors.lateral_movement import LateralMovement
from wgsiem.detect.detectors.traffic_spike import TrafficSpike
from wgsiem.detect.match import ALWAYS, NEVER, compile_for_action, predicate_for

RULES = load_rules([BUILTIN_RULES])
T0 = 1_793_660_400.0 - 150.0  # 2026-11-02 23:57:30 UTC: the streams cross an hour (and day) boundary


# -- the plain traffic-spike algorithm (as it was before the fast path) ---------------------------


class _SpikeReference:
    """Per event: find the window, roll it over, add, then look the baseline up and compare."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.real = TrafficSpike(options)  # options, slots and the median update of the real one
        self.o = self.real.o
        self.keys = BoundedTable(self.o.max_keys, self.o.ttl_days * 86400)

    def observe(self, doc: dict[str, Any], at: float) -> list[tuple[Any, ...]]:
        nbytes = first(doc, "network.bytes")
        if not isinstance(nbytes, int | float) or isinstance(nbytes, bool) or nbytes <= 0:
            return []
        out = []
        peer = first(doc, "wireguard.peer.public_key")
        if peer is not None:
            out.append(self._add("peer:" + str(peer), float(nbytes), at, self.o.factor, self.o.min_bytes))
        iface = first(doc, "wireguard.interface.name", "observer.ingress.interface.name")
        if self.o.per_interface and iface is not None:
            host = first(doc, "observer.hostname") or ""
            key = f"if:{host}/{iface}"
            out.append(self._add(key, float(nbytes), at, self.o.interface_factor, self.o.interface_min_bytes))
        return [f for f in out if f is not None]

    def _slot(self, w: int) -> str:
        return str(hour_of_week(w * self.o.window_secs))

    def _add(
        self, key: str, nbytes: float, at: float, factor: float, min_bytes: int
    ) -> tuple[Any, ...] | None:
        w = math.floor(at / self.o.window_secs)
        st_ = self.keys.get(key, at)
        if st_ is None:
            st_ = {"w": w, "sum": 0.0, "fired": False, "base": {}, "slot": self._slot(w), "f": at}
        elif w > st_["w"]:
            total, slot = st_["sum"], self._slot(st_["w"])
            if total > 0:
                for k in (slot, f"d{int(slot) % 24}", "all"):
                    st_["base"][k] = _median_step(st_["base"].get(k), total, self.o.step)
            st_.update(w=w, sum=0.0, fired=False, slot=self._slot(w))
        st_["sum"] += nbytes
        self.keys.put(key, st_, at)
        if st_["fired"]:
            return None
        for k in (st_["slot"], f"d{int(st_['slot']) % 24}", "all"):
            est = st_["base"].get(k)
            if est is not None and est[1] >= self.o.min_samples:
                break
        else:
            return None
        if k == "all" and at - st_.get("f", 0.0) < self.o.learning_days * 86400:
            return None
        baseline = max(est[0], 1.0)
        if st_["sum"] >= factor * baseline and st_["sum"] >= min_bytes:
            st_["fired"] = True
            return (
                key,
                int(st_["sum"]),
                round(baseline),
                "all" if k == "all" else "d" if k[0] == "d" else "w",
            )
        return None


def _median_step(est: list[float] | None, value: float, step: float) -> list[float]:
    from wgsiem.detect.detectors.traffic_spike import _update

    return _update(est, value, step)


def _summary(f: Finding) -> tuple[Any, ...]:
    prefix = "peer:" if f.entity_field == "wireguard.peer.public_key" else "if:vpn-gw-1/"
    d = f.details
    basis = {"this hour of the week": "w", "this hour of the day": "d", "all hours": "all"}[d["baseline"]]
    return (prefix + f.entity_value, d["window_bytes"], d["baseline_bytes"], basis)


def _transfer(peer: int, nbytes: Any, n: int) -> dict[str, Any]:
    return {
        "event": {"id": f"t{n}", "action": "transfer", "dataset": "wireguard.state"},
        "observer": {"hostname": "vpn-gw-1"},
        "network": {"bytes": nbytes},
        "wireguard": {"peer": {"public_key": f"key{peer}"}, "interface": {"name": "wg0"}},
    }


STEPS = st.lists(
    st.tuples(
        st.floats(-90.0, 400.0, allow_nan=False),  # seconds to the next event: backwards = a late event
        st.integers(0, 2),  # which peer
        st.one_of(st.integers(1, 5_000), st.sampled_from([40_000, 90_000])),  # bytes (some bursts)
    ),
    min_size=1,
    max_size=160,
)
OPTIONS = st.fixed_dictionaries(
    {
        "window_secs": st.sampled_from([60.0, 300.0, 3600.0]),
        "factor": st.sampled_from([2.0, 5.0]),
        "min_bytes": st.sampled_from([0, 10_000]),
        "interface_factor": st.sampled_from([2.0, 3.0]),
        "interface_min_bytes": st.sampled_from([0, 50_000]),
        "min_samples": st.integers(1, 3),
        "learning_days": st.sampled_from([0.0, 0.01, 1.0]),
        "ttl_days": st.sampled_from([0.0, 0.005, 35.0]),
        "max_keys": st.sampled_from([2, 100]),
    }
)


@settings(max_examples=150, deadline=None)
@given(OPTIONS, STEPS, st.integers(0, 160))
def test_traffic_fast_path_agrees_with_the_plain_algorithm(
    options: dict[str, Any], steps: list[tuple[float, int, int]], restore_at: int
) -> None:
    fast, plain = TrafficSpike(options), _SpikeReference(options)
    at = T0
    for n, (step, peer, nbytes) in enumerate(steps):
        at += step
        if n == restore_at:  # a restart: the fast detector continues from its own state file
            again = TrafficSpike(options)
            again.restore(copy.deepcopy(fast.snapshot()))
            fast = again
        doc = _transfer(peer, nbytes, n)
        got = sorted(_summary(f) for f in fast.observe(doc, at))
        assert got == sorted(plain.observe(doc, at)), n
    # the state file holds the same windows as the plain algorithm's
    assert fast.snapshot()["keys"] == plain.keys.snapshot()
    assert fast.entries() == len(plain.keys)


def test_a_window_opening_in_a_new_hour_is_judged_by_that_hour() -> None:
    """A burst right after the hour turns is judged by the new hour's baseline (quiet), not by the
    hour before (busy), although the threshold is cached per window."""
    det = TrafficSpike({"window_secs": 600, "min_samples": 1, "min_bytes": 0, "per_interface": False})
    hour = 3600.0
    base = math.floor(T0 / (7 * 24 * hour)) * 7 * 24 * hour  # a Monday 00:00 UTC
    day = 24 * hour
    # day 1: 10:00–11:00 busy (1,000,000 per window), 11:00–12:00 quiet (1,000)
    for k in range(12):
        t = base + 10 * hour + k * 600
        det.observe(_transfer(0, 1_000_000 if k < 6 else 1_000, k), t)
    # day 2, same hours: 10:50 is ordinary for 10:00; 11:00 the same volume is a spike for 11:00
    assert det.observe(_transfer(0, 1_500_000, 100), base + day + 10 * hour + 3000) == []
    (f,) = det.observe(_transfer(0, 1_500_000, 101), base + day + 11 * hour + 1)
    assert f.details["baseline"] == "this hour of the day"
    assert f.details["baseline_bytes"] == 1_000


def test_a_late_event_counts_in_the_current_window() -> None:
    # (window 1 opens in a new hour: judged by all hours, so no learning period here)
    det = TrafficSpike(
        {"window_secs": 300, "min_samples": 1, "min_bytes": 0, "per_interface": False, "learning_days": 0}
    )
    det.observe(_transfer(0, 1_000, 0), T0)  # window 0: 1,000
    det.observe(_transfer(0, 1_000, 1), T0 + 300)  # window 1 opens: the baseline learns 1,000
    # an event of window 0 arriving late is added to window 1 (1,000 + 8,999 < 10 × 1,000) …
    assert det.observe(_transfer(0, 8_999, 2), T0 + 10) == []
    # … so one more byte in window 1 reaches the threshold
    (f,) = det.observe(_transfer(0, 1, 3), T0 + 301)
    assert f.details["window_bytes"] == 10_000


def test_odd_byte_values_never_fire() -> None:
    det = TrafficSpike({"window_secs": 60, "min_samples": 1, "min_bytes": 0, "interface_min_bytes": 0})
    det.observe(_transfer(0, 100, 0), T0)
    det.observe(_transfer(0, 100, 1), T0 + 60)
    for n, value in enumerate([float("nan"), True, "9" * 12, -5, 0, None]):
        assert det.observe(_transfer(0, value, n + 2), T0 + 61) == []
    # an array of numbers counts its first, as `first` reads it
    (f, g) = det.observe(_transfer(0, [10_000, 1], 9), T0 + 62)
    assert f.details["window_bytes"] == 100 + 10_000 and g.details["scope"] == "interface"


def test_a_restored_window_is_judged_again() -> None:
    det = TrafficSpike({"window_secs": 60, "min_samples": 1, "min_bytes": 0, "per_interface": False})
    det.observe(_transfer(0, 100, 0), T0)
    det.observe(_transfer(0, 100, 1), T0 + 60)  # baseline 100, threshold 1,000 cached
    again = TrafficSpike({"window_secs": 60, "min_samples": 1, "min_bytes": 0, "per_interface": False})
    again.restore(det.snapshot())
    assert again.observe(_transfer(0, 799, 2), T0 + 61) == []
    (f,) = again.observe(_transfer(0, 101, 3), T0 + 62)
    assert f.details["window_bytes"] == 1_000
    # a damaged entry is skipped, the others kept
    snap = det.snapshot()
    snap["keys"].append(["peer:bad", T0, {"w": "x"}])
    damaged = TrafficSpike({"per_interface": False})
    damaged.restore(snap)
    assert damaged.entries() == 1


# -- BoundedTable.hit ---------------------------------------------------------------------------

OPS = st.lists(
    st.tuples(st.sampled_from(["hit", "put", "get"]), st.integers(0, 4), st.floats(0, 50, allow_nan=False)),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(OPS, st.sampled_from([0.0, 5.0]))
def test_hit_is_get_then_put_of_the_same_value(ops: list[tuple[str, int, float]], ttl: float) -> None:
    fast, plain = BoundedTable(3, ttl), BoundedTable(3, ttl)
    at = 0.0
    for op, k, step in ops:
        at += step
        key = f"k{k}"
        if op == "hit":
            value = plain.get(key, at)
            if value is not None:
                plain.put(key, value, at)
            assert fast.hit(key, at) == value
        elif op == "put":
            fast.put(key, [at], at)
            plain.put(key, [at], at)
        else:
            assert fast.get(key, at) == plain.get(key, at)
        assert fast.snapshot() == plain.snapshot()
        assert fast.evicted == plain.evicted


def test_snapshot_encodes_and_restore_decodes() -> None:
    table = BoundedTable(2)
    table.put("a", {1, 2}, 1.0)
    rows = table.snapshot(sorted)
    assert rows == [["a", 1.0, [1, 2]]]
    again = BoundedTable(2)
    again.restore([*rows, ["b", 2.0, "bad"]], lambda v: set(v) if isinstance(v, list) else None)
    assert list(again.items()) == [("a", {1, 2})]


# -- rules compiled per action ------------------------------------------------------------------

ACTION_DETECTIONS = [
    "s: {event.action: handshake}\ncondition: s",
    "s: {event.action: [handshake, Peer-Added]}\nt: {event.dataset: wireguard.state}\ncondition: s and t",
    "s: {event.action|cased: handshake}\ncondition: s",
    "s: {event.action: 'hand*'}\ncondition: s",
    "s: {event.action|exists: true}\ncondition: s",
    "s: {event.action|exists: false}\nt: {a.b: x}\ncondition: s or t",
    "s: {event.action: null}\ncondition: not s",
    "s: {event.action: handshake}\nt: {a.b: x}\ncondition: not s or t",
    "s: {event.action: [handshake, flow]}\nt: {a.b: x}\nu: {event.action: flow}\n"
    "condition: (s and not u) or t",
    "s: {event.action|re: '^hand'}\ncondition: s",
]


def _trees(detection: str) -> tuple[Any, ...]:
    rule = SigmaRule.from_dict(
        {"title": "t", "logsource": {"product": "wireguard"}, "detection": yaml.safe_load(detection)}
    )
    return tuple(c.parsed for c in rule.detection.parsed_condition)


TREES = [_trees(d) for d in ACTION_DETECTIONS]
for _r in RULES:
    if _r.conditions:
        TREES.append(_r.conditions)
    if _r.correlation is not None:
        TREES.extend(_r.correlation.base_conditions)
SAMPLES = [
    d for r in RULES for d in (*r.samples_match, *r.samples_no_match) if isinstance(d.get("event"), dict)
]
ACTIONS = sorted({str(d["event"].get("action")) for d in SAMPLES} | {"Handshake", "HANDSHAKE", "flow", ""})
ODD = st.one_of(st.none(), st.integers(-1, 1), st.sampled_from(["x", "wireguard.state", "source"]))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.sampled_from(ACTIONS),
    st.dictionaries(st.sampled_from(["a", "event.action", "a.b", "event"]), ODD, max_size=2),
    st.dictionaries(st.sampled_from(["dataset", "kind", "outcome"]), ODD, max_size=2),
)
def test_per_action_predicates_agree_with_the_general_ones(
    sample: dict[str, Any], act: str, extra: dict[str, Any], event_extra: dict[str, Any]
) -> None:
    doc = copy.deepcopy(sample)
    doc.update({k: v for k, v in extra.items() if k != "event"})
    doc["event"] = {**doc["event"], **event_extra, "action": act}
    for trees in TREES:
        specialized = predicate_for(trees, act)
        assert specialized(doc) is predicate_for(trees)(doc), (act, trees)


def test_the_action_alone_decides_where_it_can() -> None:
    (only_action,) = _trees(ACTION_DETECTIONS[0])
    assert compile_for_action(only_action, "HandShake") is ALWAYS
    assert compile_for_action(only_action, "flow") is NEVER
    (cased,) = _trees(ACTION_DETECTIONS[2])
    assert compile_for_action(cased, "Handshake") is NEVER
    (with_dataset,) = _trees(ACTION_DETECTIONS[1])
    pred = compile_for_action(with_dataset, "peer-added")
    assert pred not in (ALWAYS, NEVER)
    assert pred({"event": {"dataset": "wireguard.state"}}) is True
    assert compile_for_action(with_dataset, "flow") is NEVER


def _correlation_docs() -> list[tuple[float, dict[str, Any]]]:
    out = []
    t = 1_764_000_000.0
    for n, d in enumerate(
        d for r in RULES if r.kind == "correlation" for d in (*r.samples_match, *r.samples_no_match)
    ):
        out.append((t + n * 7.0, d))
    return out


@pytest.mark.parametrize("rule", [r for r in RULES if r.correlation is not None], ids=lambda r: r.name)
def test_a_correlation_observer_moves_the_windows_as_observe_does(rule: Any) -> None:
    plain = CorrelationState(rule.correlation, max_groups=4, max_evidence=3)
    routed = CorrelationState(rule.correlation, max_groups=4, max_evidence=3)
    for n, (at, doc) in enumerate(_correlation_docs() * 3):
        act = doc["event"]["action"]
        ev = f"e{n}"
        want = plain.observe(doc, at, ev)
        observe = routed.observer(act)
        got = observe(doc, at, ev) if observe is not None else None
        assert got == want, (n, act)
        assert routed.snapshot() == plain.snapshot()


# -- the detectors' inline reads on unusual shapes -------------------------------------------------


def _flow(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event": {"id": "f1", "action": "flow", "dataset": "wireguard.flow"},
        "destination": {"ip": "10.10.0.5", "port": 3389},
        "wireguard": {
            "peer": {"public_key": "K", "side": "source"},
            "asset": {"destination": {"name": "db1", "criticality": 5}},
        },
    }
    for path, value in over.items():
        node = doc
        *head, last = path.split("__")
        for part in head:
            node = node[part]
        node[last] = value
    return doc


@pytest.mark.parametrize(
    "over",
    [
        {},
        {"destination__port": 3389.0},
        {"wireguard__peer__public_key": ["K", "L"]},
        {"wireguard__peer__side": ["source"]},
        {"destination__ip": ["10.10.0.5"]},
    ],
    ids=["plain", "float-port", "key-array", "side-array", "ip-array"],
)
def test_lateral_movement_reads_unusual_shapes_as_first_does(over: dict[str, Any]) -> None:
    (f,) = LateralMovement({}).observe(_flow(**over), 1000.0)
    assert (f.entity_value, f.details["kind"], f.details["port"], f.details["destination"]) == (
        "K",
        "admin-port",
        3389,
        "10.10.0.5",
    )


def test_lateral_movement_ignores_what_first_ignores() -> None:
    det = LateralMovement({})
    assert det.observe(_flow(wireguard__peer__side="destination"), 1000.0) == []
    assert det.observe(_flow(wireguard__peer__public_key={"x": 1}), 1000.0) == []
    assert det.observe(_flow(destination__port=True), 1000.0) == []  # a bool is no port: no admin finding
    assert det.entries() == 1


def _handshake(key: Any, at_id: int) -> dict[str, Any]:
    return {
        "event": {"id": f"h{at_id}", "action": "handshake", "dataset": "wireguard.state"},
        "wireguard": {"peer": {"public_key": key}},
    }


def test_dormant_peer_reads_unusual_shapes_and_keeps_the_order_of_events() -> None:
    det = DormantPeer({"dormant_days": 1})
    day = 86400.0
    assert det.observe(_handshake(["K"], 1), 0.0) == []
    assert det.observe(_handshake("K", 2), 2 * day) != []  # the array's key is the same peer
    assert det.observe(_handshake("K", 3), 0.5 * day) == []  # a late event moves nothing back
    assert det.snapshot()["last"] == [["K", 2 * day, 2 * day]]
    assert det.observe(_handshake(7, 4), 0.0) == [] and "7" in {k for k, _ in det._last.items()}
    odd = {"event": {"action": ["handshake"]}, "wireguard": {"peer": {"public_key": "Z"}}}
    assert det.observe(odd, 10 * day) == [] and det.entries() == 2


def test_a_copy_with_other_predicates_is_not_compiled_per_action() -> None:
    """The per-action forms derive from the condition trees; a rule or correlation copied with other
    predicates (tests, plugins) keeps those predicates."""
    import dataclasses

    calls: list[str] = []

    def spy(doc: dict[str, Any]) -> bool:
        calls.append(doc["event"]["action"])
        return False

    sigma_rule = next(r for r in RULES if r.kind == "sigma")
    copied = dataclasses.replace(sigma_rule, predicate=spy)
    assert copied.predicate_for("anything") is spy
    assert sigma_rule.predicate_for("anything") is NEVER
    rule = next(r for r in RULES if r.name == "wireguard_key_many_endpoints")
    assert rule.correlation is not None
    corr = dataclasses.replace(rule.correlation, base=tuple((name, spy) for name, _ in rule.correlation.base))
    observe = CorrelationState(corr).observer("handshake")
    assert observe is not None
    assert observe({"event": {"action": "handshake"}}, 1.0, "e1") is None
    assert calls == ["handshake"]
