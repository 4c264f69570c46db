"""Timestamps and line shapes → exact :class:`LogLine` records."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from wgsiem.errors import Location, ParseError
from wgsiem.sources.kernel_log.lines import TimeContext, parse_line
from wgsiem.sources.kernel_log.records import Endpoint, KernelMessage, LogLine, WgQuickLine

LOC = Location("kern.log", 7)


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def utc(**kw: object) -> TimeContext:
    return TimeContext(tz=UTC, **kw)  # type: ignore[arg-type]


def test_rfc3164_with_kernel_uptime_and_einval() -> None:
    line = (
        "Dec 11 12:56:43 poseidon kernel: [  270.593097] wireguard: wg0: Sending handshake initiation to peer 1 "  # noqa: E501
        "((einval))"
    )
    assert parse_line(line, utc(year=2021), LOC) == LogLine(
        KernelMessage(
            "handshake-initiation-sent",
            "wg0: Sending handshake initiation to peer 1 ((einval))",
            interface="wg0",
            peer_id=1,
            endpoint=Endpoint("(einval)", unset=True),
            direction="outbound",
        ),
        ts(2021, 12, 11, 12, 56, 43),
        270.593097,
        "poseidon",
        "kernel",
        None,
        None,
        "rfc3164",
    )


def test_rfc3164_year_is_inferred_from_the_reference_time() -> None:
    line = "Dec 31 23:59:59 h kernel: wireguard: wg0: Peer 1 created"
    jan = ts(2026, 1, 1, 0, 0, 5)  # read just after New Year: December belongs to the year before
    assert parse_line(line, utc(reference=jan), LOC).time == ts(2025, 12, 31, 23, 59, 59)  # type: ignore[union-attr]
    dec = ts(2026, 12, 31, 23, 59, 59)
    assert parse_line(line, utc(reference=dec), LOC).time == ts(2026, 12, 31, 23, 59, 59)  # type: ignore[union-attr]
    assert parse_line(line, utc(year=2019), LOC).time == ts(2019, 12, 31, 23, 59, 59)  # type: ignore[union-attr]


def test_rfc3164_in_a_configured_zone() -> None:
    ctx = TimeContext(tz=ZoneInfo("Europe/Berlin"), year=2026)
    parsed = parse_line("Jun  1 12:00:00 h kernel: wireguard: wg0: Peer 1 created", ctx, LOC)
    assert parsed.time == ts(2026, 6, 1, 10, 0, 0)  # type: ignore[union-attr]


def test_dmesg_uptime_needs_a_boot_time() -> None:
    line = "[   15.753760] wireguard: wg0: Interface created"
    msg = KernelMessage("interface-created", "wg0: Interface created", interface="wg0")
    assert parse_line(line, utc(), LOC) == LogLine(msg, None, 15.75376, line_format="dmesg")
    assert parse_line(line, utc(boot_time=1_700_000_000.0), LOC) == LogLine(
        msg, 1_700_000_015.75376, 15.75376, line_format="dmesg"
    )


def test_dmesg_T_both_shapes() -> None:
    a = parse_line("[Tue Sep  9 22:48:06 2025] wireguard: wg0: Peer 1 created", utc(), LOC)
    b = parse_line("[6/21 18:48:02 2023] wireguard: wg0: Peer 1 created", utc(), LOC)
    assert (a.time, a.line_format) == (ts(2025, 9, 9, 22, 48, 6), "dmesg-T")  # type: ignore[union-attr]
    assert (b.time, b.line_format) == (ts(2023, 6, 21, 18, 48, 2), "dmesg-T")  # type: ignore[union-attr]


def test_openwrt_logread() -> None:
    line = "Wed May 21 13:01:57 2025 kern.debug kernel: [302487.137152] wireguard: wg: Invalid IP packet"
    assert parse_line(line, utc(), LOC) == LogLine(
        KernelMessage("invalid-ip-packet", "wg: Invalid IP packet", interface="wg", direction="outbound"),
        ts(2025, 5, 21, 13, 1, 57),
        302487.137152,
        None,
        "kernel",
        None,
        None,
        "logread",
    )


def test_rfc5424() -> None:
    line = "<7>1 2026-11-25T17:00:00.250000+01:00 gw kernel - - - wireguard: wg0: Peer 3 created"
    assert parse_line(line, utc(), LOC) == LogLine(
        KernelMessage("peer-created", "wg0: Peer 3 created", interface="wg0", peer_id=3),
        ts(2026, 11, 25, 16, 0, 0) + 0.25,
        None,
        "gw",
        "kernel",
        None,
        7,
        "rfc5424",
    )


def test_iso_rsyslog_file_format_and_dmesg_iso() -> None:
    a = parse_line("2026-11-25T17:00:00.5+00:00 gw kernel: wireguard: wg0: Peer 3 created", utc(), LOC)
    b = parse_line("2026-11-25T17:00:00,500000+0000 wireguard: wg0: Peer 3 created", utc(), LOC)
    c = parse_line("2026-11-25T17:00:00+0000 gw kernel: wireguard: wg0: Peer 3 created", utc(), LOC)
    assert a.time == b.time == ts(2026, 11, 25, 17, 0, 0) + 0.5  # type: ignore[union-attr]
    assert c.time == ts(2026, 11, 25, 17, 0, 0)  # type: ignore[union-attr]
    assert (a.host, a.program, b.host) == ("gw", "kernel", None)  # type: ignore[union-attr]


def test_wg_quick_syslog_line() -> None:
    line = "Nov 25 17:00:00 gw wg-quick[4242]: [#] ip link add dev wg0 type wireguard"
    assert parse_line(line, utc(year=2026), LOC) == LogLine(
        WgQuickLine(
            "interface-up",
            "[#] ip link add dev wg0 type wireguard",
            "wg0",
            "ip link add dev wg0 type wireguard",
            "ip",
        ),
        ts(2026, 11, 25, 17, 0, 0),
        None,
        "gw",
        "wg-quick",
        4242,
        None,
        "rfc3164",
    )


def test_not_ours() -> None:
    ctx = utc()
    assert parse_line("Nov 25 17:00:00 gw kernel: [UFW BLOCK] IN=eth0", ctx, LOC) is None
    assert (
        parse_line("Nov 25 17:00:00 gw systemd[1]: Starting WireGuard via wg-quick(8) for wg0...", ctx, LOC)
        is None
    )
    assert parse_line("", ctx, LOC) is None


def test_bad_timestamp_is_a_parse_error_with_location() -> None:
    err = parse_line("Feb 30 12:00:00 h kernel: wireguard: wg0: Peer 1 created", utc(year=2026), LOC)
    assert isinstance(err, ParseError)
    assert err.location == LOC
    err = parse_line("garbage wireguard: wg0: Peer 1 created", utc(), LOC)
    assert isinstance(err, ParseError) and err.location == LOC


def test_bare_dmesg_t_line() -> None:
    assert parse_line("wireguard: wg0: Peer 1 created", utc(), LOC) == LogLine(
        KernelMessage("peer-created", "wg0: Peer 1 created", interface="wg0", peer_id=1), None
    )
