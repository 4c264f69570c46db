"""Peers split over several differs, their events merged: the single differ's lines, byte for byte.

Randomized captures (the golden generator with other seeds: roams, counter resets, handshake gaps,
peers added and removed, AllowedIPs and PSK changes, an interface changed, re-keyed, removed and
re-added, bad lines) replayed by one :class:`WgStateSource` and by 2 and 3 shards merged with
:func:`merge_shards`, poll by poll and for the final drain.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.replay.test_replay_golden import generate
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.wg_state.capture import capture_time
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.records import Snapshot, SnapshotInterface
from wgsiem.sources.wg_state.shard import Shard, is_interface_group, merge_shards
from wgsiem.sources.wg_state.source import WgStateSource

SECRET = b"golden-fingerprint-secret-32byte"


def _source(state: Path, n: int) -> WgStateSource:
    tel = TelemetryRegistry().register(f"s{n}", "source", "wg_state")
    return WgStateSource(
        "replay.wg_state", WgStateSourceConfig(), hostname="gw", state_dir=state, telemetry=tel
    )


def replay_both(capture: Path, state: Path, shards: int) -> tuple[list[Any], list[Any], list[int]]:
    state.mkdir(exist_ok=True)
    (state / "fingerprint.key").write_bytes(SECRET)
    files = sorted(capture.iterdir(), key=lambda p: capture_time(p) or 0.0)
    one = _source(state, 0)
    parts = [(_source(state, i + 1), Shard(i, shards)) for i in range(shards)]
    single: list[Any] = []
    merged: list[Any] = []
    for path in files:
        at = capture_time(path)
        assert at is not None
        single += one.process_lines(path, at)
        outs, counts = [], Counter[tuple[Any, ...]]()
        for src, shard in parts:
            lines, keys, c = src.process_shard_lines(path, at, shard)
            outs.append((lines, keys))
            counts.update(c)  # Counter.update adds
        merged += merge_shards(outs, counts)
    single += one.drain_lines()
    drains = [src.drain_shard_lines(shard) for src, shard in parts]
    merged += merge_shards(drains, {})
    return single, merged, [src.telemetry.sent for src, _ in parts]


@pytest.mark.parametrize("shards", [2, 3])
def test_the_golden_capture_split_over_shards_gives_the_single_differs_lines(
    tmp_path: Path, shards: int
) -> None:
    generate(tmp_path / "capture", keyframe_secs=300.0)
    single, merged, _ = replay_both(tmp_path / "capture", tmp_path / "state", shards)
    assert len(single) > 1000
    assert merged == single


@given(
    seed=st.integers(0, 2**32 - 1), shards=st.sampled_from([2, 3]), keyframe=st.sampled_from([60.0, 300.0])
)
@settings(max_examples=6, deadline=None)
def test_random_captures_split_over_shards_give_the_single_differs_lines(
    seed: int, shards: int, keyframe: float
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "capture", keyframe_secs=keyframe, seed=seed)
        single, merged, sent = replay_both(Path(tmp) / "capture", Path(tmp) / "state", shards)
    assert merged == single
    # interface events appear once: shard 0 emits them; the drain's lines are counted by the caller
    assert sum(sent) <= len(single)


def test_a_shard_keeps_its_peers_and_their_places(tmp_path: Path) -> None:
    from wgsiem.sources.wg_state.records import InterfaceRecord

    info = InterfaceRecord("wg0", "pub", False, None, 51820, 0)
    records = [f"wg0\tkey{i}\t(none)\t(none)\t10.0.0.{i}/32\t0\t0\t0\toff".encode() for i in range(40)]
    si = SnapshotInterface(info, "kernel", "dump", records)
    snap = Snapshot(10.0, {"wg0": si}, [])
    parts = [Shard(i, 2).filter(snap).interfaces["wg0"] for i in range(2)]
    assert sorted(p for part in parts for p in part.positions or []) == list(range(40))
    for part in parts:
        assert part.total == 40 and part.peer_count == 40
        assert part.records == [records[p] for p in part.positions or []]
    assert all(len(part.records) > 5 for part in parts)


def test_interface_groups_are_the_interfaces_own_events() -> None:
    assert is_interface_group((0, 0, 0, 0)) and is_interface_group((1, 2, 1, 0))
    assert not is_interface_group((0, 0, 1, 5)) and not is_interface_group((1, 2, 0, 7))
    assert not is_interface_group((3, 10.0, 4)) and not is_interface_group((2, 10.0, "wg0", b"k"))


def test_an_update_without_events_or_marks_splits_into_nothing() -> None:
    from wgsiem.sources.wg_state.shard import split_groups

    assert split_groups([], [], 1) == ([], [], {})


def test_a_peer_removed_while_an_unparseable_line_stays_is_removed_at_once() -> None:
    """A bad line of an unknown key, unchanged from poll to poll, used to hide a removal (the records
    still numbered the peers) until the line went away; found by the random shard test."""
    from tests.sources.wg_state.scenario import key
    from wgsiem.sources.wg_state.differ import Differ
    from wgsiem.sources.wg_state.records import Fingerprinter, InterfaceRecord

    info = InterfaceRecord("wg0", "pub", False, None, 51820, 0)

    def line(i: int) -> bytes:
        return f"wg0\t{key(i)}\t(none)\t(none)\t10.0.0.{i}/32\t0\t{i}\t{i}\toff".encode()

    bad = f"wg0\t{key(9)}\t(none)\t(none)\t(none)\tx\t1\t2\toff".encode()
    differ = Differ(Fingerprinter(SECRET), host="h")
    actions = []
    for t, records in enumerate(
        ([line(1), line(2)], [line(1), line(2), bad], [line(1), bad], [line(1), bad])
    ):
        snap = Snapshot(float(t), {"wg0": SnapshotInterface(info, "kernel", "dump", records)}, [])
        actions.append([c.action for c in differ.update(snap)])
    assert actions[:2] == [["interface-added", "peer-added", "peer-added"], []]
    assert actions[2] == ["peer-removed"] and actions[3] == []
    assert differ.stats.parse_errors == 1
