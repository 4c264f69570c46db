"""The fast text encoder writes exactly what prometheus_client's ``generate_latest`` writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from wgsiem.sinks.prometheus_exporter.collector import Family
from wgsiem.sinks.prometheus_exporter.encoder import encode_text

from .test_collector import DUMP, K1, K2, T0, State


class Static(Collector):
    def __init__(self, families: list[Family]) -> None:
        self.fams = families

    def collect(self) -> Iterator[Metric]:
        for f in self.fams:
            yield f.to_metric()


def reference(families: list[Family]) -> bytes:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(Static(families))
    return generate_latest(reg)


def test_same_bytes_as_generate_latest_for_a_real_state_with_awkward_names(tmp_path: Path) -> None:
    st = State(tmp_path, per_peer_labels=True, peer_names={K1: 'al"ice\\x\nlaptop', K2: "bränch ✓"})
    st.feed(DUMP, T0)
    st.registry.register('weird "id"\n', "sink", "x\\y").error("Err\nor", "st@ge", "m")
    fams = st.collector.families()
    assert encode_text(fams) == reference(fams)
    assert b'name="al\\"ice\\\\x\\nlaptop"' in encode_text(fams)


names = st.sampled_from(["wgsiem_a", "wgsiem_b_bytes", "x", "wgsiem_c_seconds"])
label_names = st.lists(st.sampled_from(["interface", "public_key", "name", "a", "zz", "reason"]), unique=True)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=999_990, max_value=2**53 + 10),  # around the encoder's int fast paths
    st.floats(allow_nan=True, allow_infinity=True),
)


@st.composite
def families(draw: st.DrawFn) -> list[Family]:
    """Families whose rows may share label-value tuples, also across families with other label names
    (the encoder renders a shared tuple once per label-name set)."""
    out = []
    shared: dict[int, tuple[str, ...]] = {}
    for name in draw(st.lists(names, unique=True, max_size=4)):
        labels = tuple(draw(label_names))
        fam = Family(name, draw(st.sampled_from(["counter", "gauge"])), draw(st.text(max_size=20)), labels)
        for _ in range(draw(st.integers(0, 4))):
            if draw(st.booleans()):
                values = shared.setdefault(len(labels), tuple(draw(st.text(max_size=12)) for _ in labels))
            else:
                values = tuple(draw(st.text(max_size=12)) for _ in labels)
            fam.add(values, draw(numbers))
        out.append(fam)
    return out


@settings(max_examples=300, deadline=None)
@given(families())
def test_same_bytes_as_generate_latest_for_arbitrary_families(fams: list[Family]) -> None:
    assert encode_text(fams) == reference(fams)


@pytest.mark.parametrize(
    "value",
    [0, 1, 999_999, 1_000_000, 1_000_001, 1_795_622_682, 12_345_678_900, 2**53 - 1, 2**53, 2**53 + 1, 10**16],
)
def test_numbers_are_written_as_go_writes_them(value: int) -> None:
    fam = Family("x", "gauge", "h")
    fam.add((), value)
    assert encode_text([fam]) == reference([fam])
