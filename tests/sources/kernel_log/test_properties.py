"""Property tests: arbitrary input never raises; bad lines are reported with file:line, neighbours kept."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sources.kernel_log.helpers import make_source
from tests.support.ecs import validate
from wgsiem.errors import Location, ParseError
from wgsiem.sources.journal import entry_message, parse_json_entry, read_json_export
from wgsiem.sources.kernel_log.lines import TimeContext, parse_line
from wgsiem.sources.kernel_log.messages import parse_message
from wgsiem.sources.kernel_log.records import LogLine
from wgsiem.sources.kernel_log.source import KernelLogSource
from wgsiem.sources.kernel_log.wg_quick import parse_wg_quick

_SOURCE = make_source(Path(tempfile.mkdtemp(prefix="kl-prop-")), replay=True, journal=False)
GOOD = "Nov 25 17:00:01 gw kernel: wireguard: wg0: Peer 1 created"
MARKERS = st.sampled_from(
    [
        "wireguard: ",
        "wireguard: wg0: ",
        "amneziawg: x: ",
        "net_ratelimit: ",
        "wg-quick",
        "[#] ",
        "(einval)",
        "",
    ]
)
PREFIXES = st.sampled_from(
    ["", "[  1.5] ", "Nov 25 17:00:01 gw kernel: ", "<7>1 ", "2026-11-25T17:00:00Z ", "["]
)
noisy = st.builds(lambda a, m, b: a + m + b, PREFIXES | st.text(max_size=30), MARKERS, st.text(max_size=80))


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), noisy))
def test_parse_line_returns_record_none_or_parse_error(text: str) -> None:
    got = parse_line(text, TimeContext(tz=UTC, year=2026), Location("f", 3))
    assert got is None or isinstance(got, LogLine | ParseError)
    if isinstance(got, ParseError):
        assert got.location == Location("f", 3)


@settings(deadline=None, max_examples=300)
@given(st.one_of(st.text(max_size=200), noisy))
def test_parse_message_and_wg_quick_never_raise(text: str) -> None:
    parse_message(text)
    parse_wg_quick(text)


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=300))
def test_journal_json_line_never_raises(raw: bytes) -> None:
    got = parse_json_entry(raw, Location("x.json", 1))
    assert isinstance(got, dict | ParseError)


@settings(deadline=None)
@given(st.one_of(st.text(), st.lists(st.integers(0, 255)), st.none(), st.lists(st.text())))
def test_entry_message_any_json_value(value: object) -> None:
    assert isinstance(entry_message({"MESSAGE": value}), str)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=200))
def test_replay_keeps_neighbours_of_garbage(tmp_path: Path, garbage: bytes) -> None:
    garbage = garbage.replace(b"\n", b" ") + b" wireguard: wg0: x"  # a WireGuard line we cannot date
    path = tmp_path / "kern.log"
    path.write_bytes(
        (GOOD + "\n").encode() + garbage + b"\n" + GOOD.replace("Peer 1", "Peer 2").encode() + b"\n"
    )
    items = list(KernelLogSource.replay_read(path))
    by_line = {i.location: i for i in items}
    assert by_line[f"{path}:1"].payload.line.message.peer_id == 1
    assert by_line[f"{path}:3"].payload.line.message.peer_id == 2
    assert set(by_line) <= {f"{path}:1", f"{path}:2", f"{path}:3"} and len(items) == len(by_line)
    middle = by_line.get(f"{path}:2")
    if middle is not None and isinstance(middle.payload, ParseError):  # else: the garbage was a valid line
        assert middle.payload.location == Location(str(path), 2)


def test_journal_export_bad_line_in_the_middle(tmp_path: Path) -> None:
    good = {
        "__REALTIME_TIMESTAMP": "1700000000000000",
        "MESSAGE": "wireguard: wg0: Peer 1 created",
        "_TRANSPORT": "kernel",
        "__CURSOR": "s=1",
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps(good) + "\n{not json\n\n" + json.dumps({**good, "__CURSOR": "s=2"}) + "\n")
    got = list(read_json_export(path))
    assert [n for n, _ in got] == [1, 2, 4]
    assert isinstance(got[1][1], ParseError) and got[1][1].location == Location(str(path), 2)
    items = list(KernelLogSource.replay_read(path))
    assert [type(i.payload).__name__ for i in items] == ["Record", "ParseError", "Record"]
    assert items[1].location == f"{path}:2"


@settings(deadline=None, max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "MESSAGE",
                "PRIORITY",
                "SYSLOG_FACILITY",
                "_PID",
                "_SOURCE_MONOTONIC_TIMESTAMP",
                "_SYSTEMD_UNIT",
                "SYSLOG_IDENTIFIER",
                "_UID",
                "__CURSOR",
            ]
        ),
        st.one_of(st.text(max_size=40), st.lists(st.integers(0, 255), max_size=20), st.none()),
    ),
    st.sampled_from(["kernel", "stdout", "syslog"]),
)
def test_any_journal_entry_processes_or_is_skipped(fields: dict, transport: str) -> None:
    from wgsiem.sources.kernel_log.source import Record, record_from_entry

    entry = {"__REALTIME_TIMESTAMP": "1700000000000000", "_TRANSPORT": transport, **fields}
    if "MESSAGE" in entry and isinstance(entry["MESSAGE"], str) and transport == "kernel":
        entry["MESSAGE"] = "wireguard: wg0: " + entry["MESSAGE"]
    got = record_from_entry(entry, Location("journal", 1))
    assert got is None or isinstance(got, Record | ParseError)
    if isinstance(got, Record):
        (env,) = _SOURCE.process(got, got.line.time or 0.0)
        assert validate(env.data) == []
