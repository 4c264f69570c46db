"""Pure parser of one wireguard-go log line: text → :class:`LogLine` or :class:`~wgsiem.errors.ParseError`.

wireguard-go logs through Go's ``log`` package with ``Ldate|Ltime`` and a prefix of
``"DEBUG: "``/``"ERROR: "`` (``"INFO: "`` before 0.0.20210212) plus what the embedder prepends — the
standalone daemon prepends ``"(<interface>) "``, embedders often nothing::

    DEBUG: (wg0) 2026/11/25 17:45:47 peer(B9qo…q53o) - Received handshake initiation
    DEBUG: 2023/09/22 11:49:25 peer(WgWB…a/gg) - Sending handshake initiation

The time has second precision and no zone: it is the daemon host's local time (see :func:`LocalClock`).
The message is classified by :mod:`wgsiem.sources.wggo_log.catalog`.

When not run as a daemon, wireguard-go also writes a box-drawn warning to stderr ("Running wireguard-go
is not required because this kernel has first class support for WireGuard…"); the lab sends stderr to
the same file. Those lines are recognised by :func:`is_banner` and skipped (counted, not errors).
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

from wgsiem.errors import Location, ParseError

__all__ = ["LINE_RE", "LocalClock", "LogLine", "is_banner", "local_zone", "parse_line"]

LINE_RE = re.compile(
    r"(DEBUG|ERROR|INFO): (?:\(([^()]*)\) )?(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) ?(.*)", re.DOTALL
)
_LEVELS = {"DEBUG": "debug", "ERROR": "error", "INFO": "info"}
_BANNER_START = ("┌", "│", "└")
_new = tuple.__new__


class LogLine(NamedTuple):
    """One wireguard-go log line, split but not yet classified (immutable; a NamedTuple because one is
    made per line and it builds in a third of a frozen dataclass's time)."""

    level: str  # "debug" | "error" | "info" (ECS log.level)
    interface: str | None  # from the "(wg0) " prefix of the standalone daemon; None when absent
    local_time: str  # "YYYY/MM/DD HH:MM:SS", the host's local time, as printed
    message: str
    raw: str  # the whole line without its line break


def is_banner(line: str) -> bool:
    """A line of wireguard-go's box-drawn "not required" stderr warning (not a log line)."""
    return line.startswith(_BANNER_START)


def parse_line(line: str, *, location: Location | None = None) -> LogLine:
    """Split one line (the caller removes its line break). Raises :class:`ParseError` otherwise."""
    m = LINE_RE.match(line)
    if m is None:
        raise ParseError(
            f"not a wireguard-go log line: {line[:80]!r}",
            location=location,
            fix="expected 'DEBUG|ERROR|INFO: [(iface) ]YYYY/MM/DD HH:MM:SS message' (wireguard-go LOG_LEVEL)",
        )
    level, iface, stamp, message = m.groups()
    # tuple.__new__ skips the NamedTuple's Python-level __new__: this runs once per line
    return _new(LogLine, (_LEVELS[level], iface or None, stamp, message, line))


def local_zone(name: str | None = None) -> tzinfo:
    """The zone wireguard-go's local times are in: ``name`` (IANA, e.g. ``Europe/Berlin``), else the
    ``TZ`` environment variable, else ``/etc/localtime``, else UTC — what Go's ``time.Local`` uses."""
    import os

    name = name or os.environ.get("TZ", "").lstrip(":") or None
    if name:
        if name.startswith("/"):
            with open(name, "rb") as f:
                return ZoneInfo.from_file(f, key=name)
        return ZoneInfo(name)
    path = Path("/etc/localtime")
    if path.exists():
        with path.open("rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    return ZoneInfo("UTC")


class LocalClock:
    """``"YYYY/MM/DD HH:MM:SS"`` local time → epoch seconds, memoising the last second seen.

    Ambiguous local times (the repeated hour when DST ends) resolve to the **first** occurrence
    (``fold=0``); times in the skipped hour when DST starts are read with the offset in force before
    the change (``fold=0`` again, as :mod:`zoneinfo` does). Both are deterministic, so a replay on a
    host with the same zone gives the same instants as the live run.
    """

    __slots__ = ("_last", "_last_t", "zone")

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._last = ""
        self._last_t = 0.0

    def epoch(self, stamp: str) -> float:
        if stamp == self._last:
            return self._last_t
        t = (
            datetime(
                int(stamp[0:4]),
                int(stamp[5:7]),
                int(stamp[8:10]),
                int(stamp[11:13]),
                int(stamp[14:16]),
                int(stamp[17:19]),
                tzinfo=self.zone,
            )
        ).timestamp()
        self._last, self._last_t = stamp, t
        return t
