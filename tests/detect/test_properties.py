"""Property tests of the parsers of this package: rule files and state files.

Arbitrary text as a rule file is a ConfigError with the file's location or a loaded rule — never any
other exception; arbitrary JSON as a state file never stops the engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wgsiem.detect import BUILTIN_RULES, DetectionEngine, load_rule, load_rules
from wgsiem.detect.rule import rule_files
from wgsiem.errors import ConfigError

from .conftest import envelope

RULES = load_rules([BUILTIN_RULES])
TEXTS = [p.read_text() for p in rule_files(BUILTIN_RULES)]


@st.composite
def mangled_rule(draw: st.DrawFn) -> str:
    """A real rule file with a slice cut out or replaced: mostly-valid YAML, near misses."""
    text = draw(st.sampled_from(TEXTS))
    a = draw(st.integers(0, len(text)))
    b = draw(st.integers(a, min(len(text), a + 200)))
    return text[:a] + draw(st.text(max_size=30)) + text[b:]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(mangled_rule(), st.text(max_size=300)))
def test_any_rule_text_loads_or_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    try:
        load_rule(path)
    except ConfigError as e:
        assert str(path) in e.render()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(json_values)
def test_any_state_file_never_stops_the_engine(
    tmp_path: Path, make_engine: Callable[..., DetectionEngine], garbage: Any
) -> None:
    ids = {r.id for r in RULES}
    state = {"version": 1, "gate": garbage, "correlations": dict.fromkeys(ids, garbage)}
    state["detectors"] = dict.fromkeys(ids, garbage if isinstance(garbage, dict) else {"x": garbage})
    (tmp_path / "detect").mkdir(exist_ok=True)
    (tmp_path / "detect" / "detect.json").write_text(json.dumps(state))
    engine = make_engine(rules=RULES, lifecycle=False)
    for rule in RULES:
        for doc in rule.samples_match[:3]:
            engine(envelope(doc))
    engine.drain_alerts()
    engine.status()
