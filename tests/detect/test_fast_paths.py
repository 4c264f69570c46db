"""The engine's fast paths agree with their plain specifications on arbitrary input.

The throughput work (issue 5) compiled field reads into unrolled nested-dict walks, added a cached
``@timestamp`` parser, compiled correlation windows and cached WKT points. Each is checked here against
the straightforward version it replaced — the general Sigma lookup, ``datetime.fromisoformat``, the
walk loop of ``first`` — on hypothesis-generated documents, including the awkward shapes (flat dotted
keys, arrays on the way, ``None`` and objects where a scalar is expected).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionNOT, ConditionOR
from sigma.rule import SigmaRule
from sigma.types import SigmaExists, SigmaNull

from wgsiem.detect.alert import event_time, parse_iso_time
from wgsiem.detect.correlation import CorrelationState
from wgsiem.detect.detector import first, hour_of_week, location
from wgsiem.detect.match import _value_matcher, compile_condition, field_values
from wgsiem.detect.rule import BUILTIN_RULES, load_rules

KEYS = ["a", "b", "c", "d"]
NAMES = ["a", "a.b", "a.b.c", "a.b.c.d", "b.c"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([1.5, 22.0]),
    st.sampled_from(["x", "X", "y", "x1", "10.0.0.1", "", "22", "1.5"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from([*KEYS, "a.b", "b.c", "a.b.c"]), inner, max_size=3),
    ),
    max_leaves=12,
)
DOCS = st.dictionaries(st.sampled_from([*KEYS, "a.b", "a.b.c", "b.c"]), VALUES, max_size=4)

DETECTIONS = [
    "s: {a.b: x}\ncondition: s",
    "s: {a.b.c: [x, y, 22]}\ncondition: s",
    "s: {a: x1}\ncondition: s",
    "s: {a.b.c.d: X}\ncondition: s",
    "s: {a.b|cased: x}\ncondition: s",
    "s: {a.b: x*}\ncondition: s",
    "s: {a.b.c|re: '^1'}\ncondition: s",
    "s: {a.b|gt: 1}\ncondition: s",
    "s: {a.b: 22}\ncondition: s",
    "s: {a.b: true}\ncondition: s",
    "s: {a.b|cidr: 10.0.0.0/8}\ncondition: s",
    "s: {a.b|exists: true}\ncondition: s",
    "s: {a.b.c: null}\ncondition: s",
    "s: {a.b: x}\nt: {b.c: [y, x1]}\ncondition: s and not t",
    "s: {a.b: x}\nt: {a: 1.5}\nu: {a.b.c: ''}\ncondition: s or t or u",
]


def _parsed(detection: str) -> Any:
    rule = SigmaRule.from_dict(
        {"title": "t", "logsource": {"product": "wireguard"}, "detection": yaml.safe_load(detection)}
    )
    return rule.detection.parsed_condition[0].parsed


CONDITIONS = [_parsed(d) for d in DETECTIONS]
PREDICATES = [compile_condition(c) for c in CONDITIONS]


def _reference(node: Any, doc: dict[str, Any]) -> bool:
    """The plain semantics: every value at the field (general lookup), any of them matching."""
    if isinstance(node, ConditionAND):
        return all(_reference(a, doc) for a in node.args)
    if isinstance(node, ConditionOR):
        return any(_reference(a, doc) for a in node.args)
    if isinstance(node, ConditionNOT):
        return not _reference(node.args[0], doc)
    assert isinstance(node, ConditionFieldEqualsValueExpression)
    values = field_values(doc, node.field)
    if isinstance(node.value, SigmaExists):
        return any(v is not None for v in values) is node.value.exists
    if isinstance(node.value, SigmaNull):
        return all(v is None for v in values)
    test = _value_matcher(node.value)
    return any(test(v) for v in values)


@settings(max_examples=200, deadline=None)
@given(DOCS)
def test_compiled_conditions_agree_with_the_general_lookup(doc: dict[str, Any]) -> None:
    for detection, cond, pred in zip(DETECTIONS, CONDITIONS, PREDICATES, strict=True):
        assert pred(doc) is _reference(cond, doc), detection


def _first_reference(doc: Any, *names: str) -> Any | None:
    for name in names:
        node: Any = doc
        for part in name.split("."):
            if type(node) is dict and part in node:
                node = node[part]
            else:
                node = None
                break
        if type(node) is list:
            node = next(
                (v for v in node if v is not None and type(v) is not dict and type(v) is not list), None
            )
        if node is not None and type(node) is not dict:
            return node
    return None


@settings(max_examples=200, deadline=None)
@given(DOCS, st.lists(st.sampled_from(NAMES), min_size=1, max_size=3))
def test_first_agrees_with_the_walk(doc: dict[str, Any], names: list[str]) -> None:
    got, want = first(doc, *names), _first_reference(doc, *names)
    assert got == want
    assert type(got) is type(want)


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


TIMES = st.floats(-2e9, 4e9, allow_nan=False).map(_iso)


@st.composite
def near_timestamps(draw: st.DrawFn) -> str:
    """A real timestamp with one character replaced: the parser's shape checks must not let it pass."""
    ts = draw(TIMES)
    i = draw(st.integers(0, len(ts) - 1))
    return ts[:i] + draw(st.sampled_from(list("0123456789:-T.Z +９a"))) + ts[i + 1 :]


@settings(max_examples=500, deadline=None)
@given(st.one_of(TIMES, near_timestamps(), st.text(max_size=30)))
def test_event_time_agrees_with_fromisoformat(ts: str) -> None:
    assert event_time({"@timestamp": ts}) == parse_iso_time(ts)  # the plain, uncached parse


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(-(10**9), 4 * 10**9), st.floats(-1e9, 4e9, allow_nan=False)))
def test_hour_of_week_agrees_with_datetime(at: float) -> None:
    for tz in (dt.UTC, ZoneInfo("UTC"), ZoneInfo("Etc/UTC"), ZoneInfo("Europe/Berlin")):
        t = dt.datetime.fromtimestamp(at, tz)
        assert hour_of_week(at, tz) == t.weekday() * 24 + t.hour, tz


def test_location_hands_out_a_fresh_list_each_time() -> None:
    doc = {"source": {"geo": {"location": "POINT (13.4 52.52)"}}}
    one = location(doc)
    assert one == [52.52, 13.4]
    assert one is not None
    one.append(0.0)  # a detector keeps it in its state; the cache must not see that
    assert location(doc) == [52.52, 13.4]


RULES = load_rules([BUILTIN_RULES])


def _correlation(name: str) -> CorrelationState:
    rule = next(r for r in RULES if r.name == name)
    assert rule.correlation is not None
    return CorrelationState(rule.correlation, max_groups=3, max_evidence=2)


def _flood_event(ip: str, n: int) -> dict[str, Any]:
    return {
        "event": {"action": "invalid-mac", "dataset": "wireguard.wggo_log", "id": f"e{n}"},
        "source": {"ip": ip},
    }


def test_correlation_windows_stay_bounded_and_survive_a_restore() -> None:
    state = _correlation("wireguard_handshake_flood")
    # four addresses in turn (each evicted before it counts ten), then two (which fire)
    ips = [f"192.0.2.{n % 4}" if n < 20 else f"198.51.100.{n % 2}" for n in range(60)]
    fired = [state.observe(_flood_event(ip, n), 1000.0 + n, f"e{n}") for n, ip in enumerate(ips)]
    assert len(state) == 3  # max_groups
    assert all(len(win) <= state.corr.keep and len(ev) <= 2 for _, win, ev in state.snapshot())
    again = _correlation("wireguard_handshake_flood")
    again.restore(state.snapshot())
    assert again.snapshot() == state.snapshot()
    # the restored windows decide the next event exactly as the originals do
    for n in range(60, 80):
        doc = _flood_event(f"198.51.100.{n % 3}", n)
        assert again.observe(doc, 1000.0 + n, f"e{n}") == state.observe(doc, 1000.0 + n, f"e{n}")
    assert any(fired)
