"""The in-process Sigma matcher: each modifier and condition form, exact results."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.rule import SigmaRule

from wgsiem.detect.match import Predicate, RuleCompileError, compile_condition, field_values


def compile_detection(detection: str) -> Predicate:
    """A predicate from a Sigma ``detection:`` block (YAML, indented by two spaces)."""
    rule = SigmaRule.from_yaml("title: t\nlogsource: {product: wireguard}\ndetection:\n" + detection)
    (condition,) = rule.detection.parsed_condition
    return compile_condition(condition.parsed)


def matches(detection: str, doc: dict[str, Any]) -> bool:
    return compile_detection(detection)(doc)


EVENT: dict[str, Any] = {
    "@timestamp": "2026-11-25T17:52:59.000Z",
    "event": {"action": "invalid-handshake", "category": ["network", "authentication"], "severity": 21},
    "source": {"ip": "203.0.113.12", "port": 41694},
    "message": "Received invalid initiation message from 203.0.113.12:41694",
    "wireguard": {"interface": {"name": "wg0"}, "peer": {"allowed_ips": ["10.0.0.2/32"]}},
    "observer.hostname": "gw-test",
}


def test_field_values_reads_nested_flat_and_lists() -> None:
    assert field_values(EVENT, "event.action") == ["invalid-handshake"]
    assert field_values(EVENT, "observer.hostname") == ["gw-test"]
    assert field_values(EVENT, "event.category") == ["network", "authentication"]
    assert field_values({"a": [{"b": 1}, {"b": 2}]}, "a.b") == [1, 2]
    assert field_values(EVENT, "user.name") == []


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("  s: {event.action: invalid-handshake}\n  condition: s", True),
        ("  s: {event.action: INVALID-HANDSHAKE}\n  condition: s", True),  # case-insensitive
        ("  s: {event.action|cased: INVALID-HANDSHAKE}\n  condition: s", False),
        ("  s: {event.action: invalid}\n  condition: s", False),  # equality, not substring
        ("  s: {event.action: [peer-added, invalid-handshake]}\n  condition: s", True),  # list = OR
        ("  s: {event.category: authentication}\n  condition: s", True),  # any element of an array
        ("  s: {event.action: 'invalid-*'}\n  condition: s", True),
        ("  s: {event.action: 'invalid-handshak?'}\n  condition: s", True),
        ("  s: {event.action: 'invalid-handshak\\?'}\n  condition: s", False),  # escaped wildcard
        ("  s: {message|contains: 'initiation MESSAGE'}\n  condition: s", True),
        ("  s: {message|contains: 'response'}\n  condition: s", False),
        ("  s: {message|startswith: 'Received invalid'}\n  condition: s", True),
        ("  s: {message|startswith: 'invalid'}\n  condition: s", False),
        ("  s: {message|endswith: ':41694'}\n  condition: s", True),
        ("  s: {message|endswith: ':4169'}\n  condition: s", False),
        ("  s: {message|contains|all: [invalid, initiation]}\n  condition: s", True),
        ("  s: {message|contains|all: [invalid, response]}\n  condition: s", False),
        ("  s: {message|re: 'from 203\\.0\\.113\\.\\d+:'}\n  condition: s", True),  # unanchored search
        ("  s: {message|re: '^from'}\n  condition: s", False),
        ("  s: {message|re|i: 'RECEIVED'}\n  condition: s", True),
        ("  s: {message|re: 'RECEIVED'}\n  condition: s", False),
        ("  s: {source.ip|cidr: 203.0.113.0/24}\n  condition: s", True),
        ("  s: {source.ip|cidr: 198.51.100.0/24}\n  condition: s", False),
        ("  s: {source.ip|cidr: '2001:db8::/32'}\n  condition: s", False),
        ("  s: {message|cidr: 203.0.113.0/24}\n  condition: s", False),  # not an IP: no match, no error
        ("  s: {source.port|gt: 41693}\n  condition: s", True),
        ("  s: {source.port|gt: 41694}\n  condition: s", False),
        ("  s: {source.port|gte: 41694}\n  condition: s", True),
        ("  s: {source.port|lt: 41694}\n  condition: s", False),
        ("  s: {source.port|lte: 41694}\n  condition: s", True),
        ("  s: {message|gt: 1}\n  condition: s", False),  # non-numeric value
        ("  s: {source.port: 41694}\n  condition: s", True),  # number equality
        ("  s: {source.port: '41694'}\n  condition: s", True),  # a quoted number compares as text
        ("  s: {source.port: ['1', '41694']}\n  condition: s", True),  # set lookup path, numbers as text
        ("  s: {event.category: [AUTHENTICATION, x]}\n  condition: s", True),  # set lookup over an array
        ("  s: {event.category: [x, y]}\n  condition: s", False),
        ("  s: {user.name|exists: true}\n  condition: s", False),
        ("  s: {user.name|exists: false}\n  condition: s", True),
        ("  s: {source.ip|exists: true}\n  condition: s", True),
        ("  s: {user.name: null}\n  condition: s", True),
        ("  s: {source.ip: null}\n  condition: s", False),
    ],
)
def test_modifiers(detection: str, expected: bool) -> None:
    assert matches(detection, EVENT) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("a", True),
        ("b", False),
        ("a and b", False),
        ("a or b", True),
        ("not b", True),
        ("a and not b", True),
        ("not a or b", False),
        ("not (a or b)", False),
        ("a and (b or c)", True),
        ("1 of sel_*", True),
        ("all of sel_*", False),
        ("all of them", False),
        ("1 of them", True),
        ("sel_x and not 1 of f*", False),
    ],
)
def test_conditions(condition: str, expected: bool) -> None:
    detection = (
        "  a: {event.action: invalid-handshake}\n"
        "  b: {source.ip: 192.0.2.1}\n"
        "  c: {source.port: 41694}\n"
        "  sel_x: {wireguard.interface.name: wg0}\n"
        "  sel_y: {event.action: peer-added}\n"
        "  filter_ok: {source.ip|cidr: 203.0.113.0/24}\n"
        f"  condition: {condition}\n"
    )
    assert matches(detection, EVENT) is expected


def test_fields_of_one_selection_are_and_and_a_list_of_maps_is_or() -> None:
    both = "  s:\n    event.action: invalid-handshake\n    source.ip: 192.0.2.1\n  condition: s"
    either = "  s:\n    - event.action: invalid-handshake\n    - source.ip: 192.0.2.1\n  condition: s"
    assert matches(both, EVENT) is False
    assert matches(either, EVENT) is True


def test_keyword_searches_every_string() -> None:
    assert matches("  k: ['*initiation message*']\n  condition: k", EVENT) is True
    assert matches("  k: ['*no such text*']\n  condition: k", EVENT) is False


def test_booleans_match_only_booleans() -> None:
    pred = compile_detection("  s: {wireguard.config.file.exposed: true}\n  condition: s")
    assert pred({"wireguard": {"config": {"file": {"exposed": True}}}}) is True
    assert pred({"wireguard": {"config": {"file": {"exposed": "true"}}}}) is False
    assert pred({"wireguard": {"config": {"file": {"exposed": 1}}}}) is False


def test_unsupported_value_types_fail_at_compile_time() -> None:
    with pytest.raises(RuleCompileError):
        compile_detection("  s: {source.ip|fieldref: destination.ip}\n  condition: s")


_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
_json = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["event", "action", "source", "ip", "message", "event.action", "source.ip", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)
_ALL_MODIFIERS = compile_detection(
    "  a: {event.action|contains: invalid}\n"
    "  b: {source.ip|cidr: 203.0.113.0/24}\n"
    "  c: {source.port|gte: 10}\n"
    "  d: {message|re: 'from \\d+'}\n"
    "  e: {event.action|startswith: inv}\n"
    "  f: {source.ip|exists: true}\n"
    "  g: {message: null}\n"
    "  h: {x: 5}\n"
    "  i: {x: true}\n"
    "  k: ['*x*']\n"
    "  condition: (a or b or c or d) and not (e and f) or 1 of g or all of h* or i or k\n"
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=12) | st.sampled_from(["event", "source", "message", "x"]), _json, max_size=6
    )
)
def test_arbitrary_documents_never_crash_the_matcher(doc: dict[str, Any]) -> None:
    assert _ALL_MODIFIERS(doc) in (True, False)
