"""Text log lines (kern.log, syslog, messages, dmesg output, logread) → :class:`LogLine` (pure).

Line shapes, recognized by their first characters:

* RFC 3164 (rsyslog/syslog-ng default, ``journalctl`` short): ``Dec 11 12:56:38 host kernel: …`` with an
  optional ``<PRI>``. It has **no year**: :class:`TimeContext` gives one, or infers it from a reference
  time (the file's modification time, or now when following live): the year of the reference, or the
  year before when the date would lie more than a day after the reference (a December line read in
  January).
* RFC 5424: ``<PRI>1 2026-11-25T17:00:00.123456+00:00 host kernel - - - …``.
* ISO 8601 / RFC 3339 (rsyslog ``RSYSLOG_FileFormat``, ``journalctl -o short-iso[-precise]``, ``dmesg
  --time-format iso`` with its ``,`` decimal separator): ``2026-11-25T17:00:00.123456+00:00 host kernel: …``.
* ``dmesg``: ``[   15.753760] wireguard: …`` — seconds since boot only; the wall clock is
  ``boot_time + uptime`` when :class:`TimeContext` has a boot time, else unknown (``time=None``).
* ``dmesg -T``: ``[Tue Sep  9 22:48:06 2025] …`` (and the ``[6/21 18:47:27 2023]`` variant seen in the
  wild), local time.
* OpenWrt ``logread``: ``Wed May 21 13:01:57 2025 kern.debug kernel: [302487.137152] …``.
* a bare message (``dmesg -t``): ``wireguard: wg0: …``.

Times without an offset are in :attr:`TimeContext.tz` (default: the local zone).
"""

from __future__ import annotations

import re
import time as _time
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from wgsiem.errors import Location, ParseError
from wgsiem.sources.kernel_log.messages import find_message, parse_message
from wgsiem.sources.kernel_log.records import LogLine
from wgsiem.sources.kernel_log.wg_quick import parse_wg_quick

__all__ = ["TimeContext", "is_candidate", "parse_line"]

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_RFC3164 = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?(?P<stamp>(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) "
    r"(?P<hms>\d\d:\d\d:\d\d))(?P<frac>\.\d+)? "
    r"(?:(?P<host>[^\s:\[]+) )?(?P<tag>[^\s:\[]+)(?:\[(?P<pid>\d+)\])?: "
)
_LOGREAD = re.compile(
    r"[A-Z][a-z]{2} (?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d) (?P<year>\d{4}) "
    r"(?P<fac>\w+)\.(?P<lvl>\w+) (?P<tag>[^\s:\[]+)(?:\[(?P<pid>\d+)\])?: "
)
_ISO = re.compile(
    r"(?:<(?P<pri>\d{1,3})>(?P<v5424>1 )?)?"
    r"(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) "
)
_AFTER_ISO_5424 = re.compile(r"(?P<host>\S+) (?P<tag>\S+) (?P<pid>\S+) \S+ (?:-|(?:\[[^\]]*\])+) ?")
_AFTER_ISO_TAG = re.compile(r"(?P<host>[^\s:\[]+) (?P<tag>[^\s:\[]+)(?:\[(?P<pid>\d+)\])?: ")
_DMESG_T = re.compile(
    r"\[(?:[A-Z][a-z]{2} (?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d) (?P<year>\d{4})"
    r"|(?P<m2>\d{1,2})/(?P<d2>\d{1,2}) (?P<hms2>\d\d:\d\d:\d\d) (?P<y2>\d{4}))\] ?"
)
_UPTIME = re.compile(r"\[\s*(?P<up>\d+\.\d+)\] ?")


@dataclass(slots=True)
class TimeContext:
    """What the text itself does not say about time: the zone of offset-less stamps, the year of
    RFC 3164 stamps (or the reference time to infer it from), and the boot time for bare dmesg."""

    tz: tzinfo | None = None  # None: local zone
    year: int | None = None
    reference: float | None = None  # epoch seconds; RFC 3164 dates more than a day after it → year - 1
    boot_time: float | None = None
    _cache: dict[Any, float] = field(default_factory=dict)
    _ref_key: float = -1.0
    _ref_year: int = 0
    _stamps: dict[str, float] = field(default_factory=dict)
    _stamps_key: float = -1.0

    def rfc3164_stamp(self, stamp: str, mon: str, day: str, hms: str) -> float:
        """:meth:`rfc3164` memoized on the stamp text (``Dec 11 12:56:38``): lines of one second share it."""
        ref = self.reference if self.reference is not None else _time.time()
        if self._stamps_key != ref // 3600:  # the inferred year may change with the reference
            self._stamps.clear()
            self._stamps_key = ref // 3600
        t = self._stamps.get(stamp)
        if t is None:
            if len(self._stamps) > 4096:
                self._stamps.clear()
            t = self._stamps[stamp] = self.rfc3164(_MONTHS[mon], int(day), hms, None)
        return t

    def local(self, y: int, mo: int, d: int, hms: str, frac: str | None) -> float:
        key = (y, mo, d, hms)
        t = self._cache.get(key)
        if t is None:
            hh, mm, ss = int(hms[0:2]), int(hms[3:5]), int(hms[6:8])
            dt = datetime(y, mo, d, hh, mm, ss)
            t = (dt.replace(tzinfo=self.tz) if self.tz is not None else dt.astimezone()).timestamp()
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = t
        if frac:
            t += float("0" + frac)
        return t

    def rfc3164(self, mo: int, d: int, hms: str, frac: str | None) -> float:
        ref = self.reference if self.reference is not None else _time.time()
        if self.year is not None:
            return self.local(self.year, mo, d, hms, frac)
        if self._ref_key != ref // 3600:  # the year of the reference, recomputed at most hourly
            self._ref_key = ref // 3600
            self._ref_year = datetime.fromtimestamp(ref, self.tz).year
        year = self._ref_year
        try:
            t = self.local(year, mo, d, hms, frac)
        except ValueError:  # Feb 29 of a year that has none: it was a leap year before
            t = float("inf")
        if t > ref + 86400:
            return self.local(year - 1, mo, d, hms, frac)
        return t


def is_candidate(line: str) -> bool:
    """Cheap test: could this line hold a WireGuard kernel message or wg-quick output?"""
    return (
        "wireguard: " in line
        or "wg-quick" in line
        or "net_ratelimit: " in line
        or "amneziawg: " in line
        or "Somehow a wrong" in line
        or "Non-exhaustive parsing" in line
    )


def _iso_time(ts: str, ctx: TimeContext) -> float:
    ts = ts.replace(",", ".").replace(" ", "T", 1)
    if ts.endswith("Z"):
        ts = ts[:-1] + "+00:00"
    elif len(ts) > 5 and ts[-5] in "+-" and ts[-3] != ":":
        ts = ts[:-2] + ":" + ts[-2:]
    dt = datetime.fromisoformat(ts)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ctx.tz) if ctx.tz is not None else dt.astimezone()
    return dt.timestamp()


def _finish(
    rest: str,
    ctx: TimeContext,
    time: float | None,
    fmt: str,
    host: str | None = None,
    tag: str | None = None,
    pid: str | None = None,
    pri: str | None = None,
) -> LogLine | None:
    uptime = None
    if rest[:1] == "[":
        # "[  265.694319] ": by hand, it is on nearly every kernel line
        j = rest.find("]", 1, 32)
        if j > 0:
            head, dot, tail = rest[1:j].lstrip(" ").partition(".")
            if dot and head.isdigit() and tail.isdigit() and head.isascii() and tail.isascii():
                uptime = float(head + "." + tail)
                rest = rest[j + 2 :] if rest[j + 1 : j + 2] == " " else rest[j + 1 :]
    if time is None and uptime is not None and ctx.boot_time is not None:
        time = round(ctx.boot_time + uptime, 6)
    pid_i = int(pid) if pid and pid.isascii() and pid.isdigit() else None
    pri_i = int(pri) if pri else None
    if tag is not None and tag.startswith("wg-quick"):
        wq = parse_wg_quick(rest)
        if wq is None:
            return None
        return LogLine(wq, time, uptime, host, tag, pid_i, pri_i, fmt)
    msg = parse_message(rest)
    if msg is None:
        return None
    return LogLine(msg, time, uptime, host, tag, pid_i, pri_i, fmt)


def parse_line(line: str, ctx: TimeContext, location: Location) -> LogLine | ParseError | None:
    """One text line → :class:`LogLine`; ``None`` when it is not WireGuard's (or wg-quick's); a
    :class:`ParseError` when it is but its timestamp cannot be read."""
    if not is_candidate(line):
        return None
    line = line.rstrip("\r\n")
    try:
        c = line[:1]
        if c == "[":
            m = _UPTIME.match(line)
            if m is not None:
                return _finish(line, time=None, fmt="dmesg", ctx=ctx)
            m = _DMESG_T.match(line)
            if m is not None:
                if m.group("mon"):
                    t = ctx.local(
                        int(m.group("year")),
                        _MONTHS[m.group("mon")],
                        int(m.group("day")),
                        m.group("hms"),
                        None,
                    )
                else:
                    t = ctx.local(
                        int(m.group("y2")), int(m.group("m2")), int(m.group("d2")), m.group("hms2"), None
                    )
                return _finish(line[m.end() :], time=t, fmt="dmesg-T", ctx=ctx)
        elif c.isdigit() or c == "<":
            m = _ISO.match(line)
            if m is not None:
                t = _iso_time(m.group("ts"), ctx)
                rest = line[m.end() :]
                if m.group("v5424"):
                    h = _AFTER_ISO_5424.match(rest)
                    if h is None:
                        raise ValueError("RFC 5424 header incomplete")
                    pid = h.group("pid")
                    return _finish(
                        rest[h.end() :],
                        time=t,
                        fmt="rfc5424",
                        host=_nil(h.group("host")),
                        tag=_nil(h.group("tag")),
                        pid=None if pid == "-" else pid,
                        pri=m.group("pri"),
                        ctx=ctx,
                    )
                h = _AFTER_ISO_TAG.match(rest)
                if h is not None:
                    return _finish(
                        rest[h.end() :],
                        time=t,
                        fmt="iso",
                        host=h.group("host"),
                        tag=h.group("tag"),
                        pid=h.group("pid"),
                        pri=m.group("pri"),
                        ctx=ctx,
                    )
                return _finish(rest, time=t, fmt="iso", pri=m.group("pri"), ctx=ctx)
        if c.isalpha() or c == "<":
            m = _RFC3164.match(line)
            if m is not None and m.group("mon") in _MONTHS:
                pri, stamp, mon, day, hms, frac, host, tag, pid = m.group(
                    "pri", "stamp", "mon", "day", "hms", "frac", "host", "tag", "pid"
                )
                t = ctx.rfc3164_stamp(stamp, mon, day, hms)
                if frac:
                    t += float("0" + frac)
                return _finish(line[m.end() :], ctx, t, "rfc3164", host, tag, pid, pri)
            m = _LOGREAD.match(line)
            if m is not None:
                t = ctx.local(
                    int(m.group("year")), _MONTHS[m.group("mon")], int(m.group("day")), m.group("hms"), None
                )
                return _finish(
                    line[m.end() :], time=t, fmt="logread", tag=m.group("tag"), pid=m.group("pid"), ctx=ctx
                )
    except (ValueError, OverflowError, OSError, KeyError) as exc:
        if find_message(line) is None and "wg-quick" not in line:
            return None
        return ParseError(
            f"bad timestamp ({exc})",
            location=location,
            fix="the line must start with an RFC 3164/5424, ISO 8601, dmesg or dmesg -T timestamp",
        )
    # no timestamp we know: a bare message ("dmesg -t") is fine; anything else holding a marker is bad
    found = find_message(line)
    if found is None:
        return None
    if found[1] == 0:
        return _finish(line, time=None, fmt="bare", ctx=ctx)
    return ParseError(
        "WireGuard message without a timestamp this parser knows",
        location=location,
        fix="the line must start with an RFC 3164/5424, ISO 8601, dmesg or dmesg -T timestamp",
    )


def _nil(v: str) -> str | None:
    return None if v == "-" else v
