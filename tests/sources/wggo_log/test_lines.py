"""The line grammar and the local-time clock: every prefix form of the reference, DST edges,
arbitrary input (property tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wgsiem.errors import Location, ParseError
from wgsiem.sources.wggo_log.lines import LocalClock, LogLine, is_banner, local_zone, parse_line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (  # standalone daemon (reference §1)
            "DEBUG: (wg0) 2026/11/25 15:12:42 peer(HIgo…8ykw) - Received handshake initiation",
            LogLine(
                "debug",
                "wg0",
                "2026/11/25 15:12:42",
                "peer(HIgo…8ykw) - Received handshake initiation",
                "DEBUG: (wg0) 2026/11/25 15:12:42 peer(HIgo…8ykw) - Received handshake initiation",
            ),
        ),
        (
            "ERROR: (wg0) 2026/11/25 15:12:42 Failed to write packets to TUN device: ...",
            LogLine(
                "error",
                "wg0",
                "2026/11/25 15:12:42",
                "Failed to write packets to TUN device: ...",
                "ERROR: (wg0) 2026/11/25 15:12:42 Failed to write packets to TUN device: ...",
            ),
        ),
        (  # embedder with an empty prepend (sandialabs/wiretap#26)
            "DEBUG: 2023/09/22 11:49:25 peer(WgWB…a/gg) - Sending handshake initiation",
            LogLine(
                "debug",
                None,
                "2023/09/22 11:49:25",
                "peer(WgWB…a/gg) - Sending handshake initiation",
                "DEBUG: 2023/09/22 11:49:25 peer(WgWB…a/gg) - Sending handshake initiation",
            ),
        ),
        (
            "DEBUG: 2023/09/22 11:49:30 peer(WgWB…a/gg) - Handshake did not complete after 5 seconds, "
            "retrying (try 2)",
            LogLine(
                "debug",
                None,
                "2023/09/22 11:49:30",
                "peer(WgWB…a/gg) - Handshake did not complete after 5 seconds, retrying (try 2)",
                "DEBUG: 2023/09/22 11:49:30 peer(WgWB…a/gg) - Handshake did not complete after 5 seconds, "
                "retrying (try 2)",
            ),
        ),
        (  # pre-2021 logger had an INFO level
            "INFO: (wg0) 2020/06/01 08:00:00 Packet with invalid IP version from peer(HIgo…8ykw)",
            LogLine(
                "info",
                "wg0",
                "2020/06/01 08:00:00",
                "Packet with invalid IP version from peer(HIgo…8ykw)",
                "INFO: (wg0) 2020/06/01 08:00:00 Packet with invalid IP version from peer(HIgo…8ykw)",
            ),
        ),
        (  # interface names may hold = + . - _
            "DEBUG: (wg_a=b+c.d-e) 2026/11/25 17:52:48 Device started",
            LogLine(
                "debug",
                "wg_a=b+c.d-e",
                "2026/11/25 17:52:48",
                "Device started",
                "DEBUG: (wg_a=b+c.d-e) 2026/11/25 17:52:48 Device started",
            ),
        ),
    ],
)
def test_parse_line(line: str, expected: LogLine) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "hello",
        "DEBUG: (wg0) 26/11/25 15:12:42 Device started",
        "WARN: (wg0) 2026/11/25 15:12:42 Device started",
        "2021-02-10 16:08:58.676514: [TUN] [client] peer(LW3Y…OqDE) - Handshake did not complete",
        "[   15.753760] wireguard: wg0: Interface created",
    ],
)
def test_not_a_line(line: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_line(line, location=Location("wg0.log", 7))
    assert err.value.location == Location("wg0.log", 7)
    assert "wg0.log:7" in err.value.render()


def test_banner() -> None:
    assert is_banner("│   Running wireguard-go is not required because this  │")
    assert is_banner("┌──────┐") and is_banner("└──────┘")
    assert not is_banner("DEBUG: (wg0) 2026/11/25 15:12:42 Device started")


def test_clock_utc_and_memo() -> None:
    clock = LocalClock(ZoneInfo("UTC"))
    t = clock.epoch("2026/11/25 17:52:48")
    assert t == datetime(2026, 11, 25, 17, 52, 48, tzinfo=UTC).timestamp()
    assert clock.epoch("2026/11/25 17:52:48") == t


def test_clock_zone_offset() -> None:
    clock = LocalClock(ZoneInfo("Europe/Berlin"))
    assert clock.epoch("2026/11/25 18:52:48") == datetime(2026, 11, 25, 17, 52, 48, tzinfo=UTC).timestamp()


def test_clock_dst_end_takes_first_occurrence() -> None:
    # Berlin 2026-10-25: 02:00-03:00 happens twice (CEST, then CET); the first is 00:30 UTC
    clock = LocalClock(ZoneInfo("Europe/Berlin"))
    assert clock.epoch("2026/10/25 02:30:00") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp()


def test_clock_dst_gap_uses_offset_before() -> None:
    # Berlin 2026-03-29: 02:00-03:00 does not exist; read with CET (+1) → 01:30 UTC
    clock = LocalClock(ZoneInfo("Europe/Berlin"))
    assert clock.epoch("2026/03/29 02:30:00") == datetime(2026, 3, 29, 1, 30, tzinfo=UTC).timestamp()


def test_clock_impossible_date() -> None:
    with pytest.raises(ValueError):
        LocalClock(ZoneInfo("UTC")).epoch("2026/13/45 25:61:61")


def test_local_zone_from_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert str(local_zone()) == "Asia/Tokyo"
    assert str(local_zone("Europe/Berlin")) == "Europe/Berlin"


@given(st.text())
def test_arbitrary_text_parses_or_raises_parse_error(text: str) -> None:
    try:
        line = parse_line(text)
    except ParseError:
        return
    assert line.raw == text and line.level in ("debug", "error", "info")


@given(
    st.sampled_from(["DEBUG", "ERROR", "INFO"]),
    st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_=+.-]{1,15}", fullmatch=True)),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r")),
)
def test_round_trip(level: str, iface: str | None, when: datetime, message: str) -> None:
    stamp = when.strftime("%Y/%m/%d %H:%M:%S")
    text = f"{level}: {'(' + iface + ') ' if iface else ''}{stamp} {message}"
    line = parse_line(text)
    assert (line.level, line.interface, line.local_time, line.message) == (
        level.lower(),
        iface,
        stamp,
        message,
    )
    assert LocalClock(ZoneInfo("UTC")).epoch(stamp) == when.replace(microsecond=0, tzinfo=UTC).timestamp()
