"""Runtime of the ``kernel_log`` source: journald and tailed files → parsed lines → ECS envelopes.

Both inputs become :class:`Record` values (a parsed line, what identifies it, where it came from); the
live :meth:`KernelLogSource.run` and ``wgsiem replay`` (:meth:`replay_read` + :meth:`process`) both turn
a record into envelopes through :meth:`KernelLogSource.process`, so a replay gives the live events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from wgsiem.errors import Location, ParseError
from wgsiem.event import Envelope, EventMeta, event_id
from wgsiem.private_file import write_private
from wgsiem.sources.base import ReplayItem, SourceContext
from wgsiem.sources.journal import JournalFollower, entry_field, entry_message, entry_time, read_json_export
from wgsiem.sources.kernel_log.attribution import PeerAttributor
from wgsiem.sources.kernel_log.config import KernelLogSourceConfig
from wgsiem.sources.kernel_log.lines import TimeContext, parse_line
from wgsiem.sources.kernel_log.messages import parse_message
from wgsiem.sources.kernel_log.normalize import NOT_EMITTED, Origin, to_ecs
from wgsiem.sources.kernel_log.records import KernelMessage, LogLine
from wgsiem.sources.kernel_log.tail import FilePosition, FileTail, TailLine
from wgsiem.sources.kernel_log.wg_quick import parse_wg_quick, unit_interface

__all__ = [
    "JOURNAL_MATCHES",
    "KernelLogSource",
    "Record",
    "host_boot_time",
    "record_from_entry",
    "record_from_line",
]

log = logging.getLogger("wgsiem.sources.kernel_log")

Emit = Callable[[list[Envelope]], Awaitable[None]]

JOURNAL_MATCHES = ["_TRANSPORT=kernel", "+", "SYSLOG_IDENTIFIER=wg-quick"]
"""Kernel messages, or wg-quick's output (``wg-quick@<if>.service`` and runs by hand under systemd-run)."""


@dataclass(frozen=True, slots=True)
class Record:
    """A parsed line and what identifies it (for ``event.id``) and where it came from."""

    line: LogLine
    identity: tuple[Any, ...]
    origin: Origin


def host_boot_time(proc_stat: str = "/proc/stat") -> float | None:
    """This host's boot time (``btime`` of ``/proc/stat``), for bare dmesg lines read live."""
    try:
        with open(proc_stat, encoding="ascii") as fh:
            for row in fh:
                if row.startswith("btime "):
                    return float(row.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def record_from_line(tl: TailLine, ctx: TimeContext, fallback_time: float) -> Record | ParseError | None:
    """A tailed (or replayed) text line → :class:`Record`; ``None`` when it is not WireGuard's."""
    parsed = parse_line(tl.text, ctx, Location(tl.path, tl.line))
    if parsed is None or isinstance(parsed, ParseError):
        return parsed
    if parsed.time is None:
        parsed = LogLine(
            parsed.message,
            fallback_time,
            parsed.uptime,
            parsed.host,
            parsed.program,
            parsed.pid,
            parsed.priority,
            parsed.line_format,
        )
    return Record(parsed, ("line", tl.offset, tl.text), Origin(file=tl.path))


def record_from_entry(entry: dict[str, Any], location: Location) -> Record | ParseError | None:
    """A journal entry → :class:`Record`; ``None`` when it is neither a WireGuard kernel message nor
    wg-quick output."""
    ident = entry_field(entry, "SYSLOG_IDENTIFIER")
    unit = entry_field(entry, "_SYSTEMD_UNIT")
    transport = entry_field(entry, "_TRANSPORT")
    try:
        at = entry_time(entry)
    except ValueError:
        return ParseError("journal entry without __REALTIME_TIMESTAMP", location=location)
    text = entry_message(entry)
    msg: Any
    if (ident or "").startswith("wg-quick") or (unit or "").startswith("wg-quick@"):
        msg = parse_wg_quick(text, unit_if=unit_interface(unit))
    elif transport == "kernel" or ident == "kernel":
        msg = parse_message(text)
    else:
        return None
    if msg is None:
        return None
    sev = entry_field(entry, "PRIORITY")
    fac = entry_field(entry, "SYSLOG_FACILITY")
    pri = None
    if sev is not None and _digits(sev):
        pri = int(sev) + 8 * (int(fac) if fac is not None and _digits(fac) else 0)
    mono = entry_field(entry, "_SOURCE_MONOTONIC_TIMESTAMP")
    pid = entry_field(entry, "_PID")
    line = LogLine(
        msg,
        at,
        int(mono) / 1e6 if mono and _digits(mono) else None,
        entry_field(entry, "_HOSTNAME"),
        ident,
        int(pid) if pid and _digits(pid) and transport != "kernel" else None,
        pri,
        "journal",
    )
    cursor = entry_field(entry, "__CURSOR")
    identity: tuple[Any, ...] = ("journal", cursor) if cursor else ("journal", at, text)
    origin = Origin(
        unit=unit,
        uid=entry_field(entry, "_UID"),
        login_uid=entry_field(entry, "_AUDIT_LOGINUID"),
        comm=entry_field(entry, "_COMM"),
        boot_id=entry_field(entry, "_BOOT_ID"),
        cursor=cursor,
    )
    return Record(line, identity, origin)


def _is_journal_export(head: bytes) -> bool:
    s = head.lstrip()
    return s.startswith(b"{") and b'"__REALTIME_TIMESTAMP"' in head and b'"MESSAGE"' in head


def _is_our_journal_export(head: bytes) -> bool:
    """A ``journalctl -o json`` export holding kernel messages or wg-quick output (the replay driver
    gives a file to the first source that claims it, so an export of wireguard-go's unit only is left
    for ``wggo_log``)."""
    if not _is_journal_export(head):
        return False
    compact = head.replace(b" ", b"")
    return b'"_TRANSPORT":"kernel"' in compact or b"wg-quick" in head or b"wireguard: " in head


class KernelLogSource:
    """WireGuard kernel messages and wg-quick output from journald and text logs."""

    component_type = "kernel_log"

    def __init__(self, component_id: str, config: KernelLogSourceConfig, ctx: SourceContext) -> None:
        self.component_id = component_id
        self.config = config
        self.ctx = ctx
        self.telemetry = ctx.telemetry
        self.hostname = ctx.hostname
        base = ctx.state_dir / "kernel_log"
        self.state_path = base / f"{component_id}.json"
        self.cursor_path = base / f"{component_id}.cursor"
        self.attributor = PeerAttributor(ctx.peers, config.peer_map_max_entries)
        self.tz: tzinfo | None = ZoneInfo(config.timezone) if config.timezone else None
        self.positions: dict[str, FilePosition] = {}
        self.tails: dict[str, FileTail] = {}
        self.follower: JournalFollower | None = None
        self.lines_read = 0
        self.records = 0
        self._restore()

    # ------------------------------------------------------------ persistence
    def _restore(self) -> None:
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            return
        try:
            state = orjson.loads(raw)
            self.positions = {p: FilePosition.from_json(d) for p, d in state.get("files", {}).items()}
            self.attributor.restore_state(state.get("peers", {}))
        except (ValueError, KeyError, TypeError) as exc:
            bad = self.state_path.with_suffix(f".corrupt-{int(time.time())}")
            self.state_path.rename(bad)
            self.positions = {}
            self.telemetry.error("state_corrupt", "restore", f"state file unreadable ({exc}); moved to {bad}")

    def save_state(self) -> None:
        for path, tail in self.tails.items():
            if tail.position is not None:
                self.positions[path] = tail.position
        state = {
            "files": {p: pos.to_json() for p, pos in self.positions.items()},
            "peers": self.attributor.export_state(),
        }
        write_private(self.state_path, orjson.dumps(state))

    # ------------------------------------------------------------ records → envelopes
    def process(self, payload: Record | ParseError, at: float) -> list[Envelope]:
        """One record → the envelopes the live source emits for it (none, or one)."""
        if isinstance(payload, ParseError):
            self.telemetry.error("parse", "parse_line", payload.render())
            return []
        msg = payload.line.message
        self.records += 1
        self.telemetry.received += 1
        if msg.action in NOT_EMITTED:
            self.telemetry.drop("module_banner")
            return []
        attribution = None
        if isinstance(msg, KernelMessage):
            if msg.action == "peer-created":
                self.attributor.observe(msg)
            if msg.peer_id is not None:
                attribution = self.attributor.attribute(msg, at)
            if msg.action != "peer-created":
                self.attributor.observe(msg)
        doc = to_ecs(
            payload.line,
            time=at,
            hostname=self.hostname,
            event_id=event_id("kernel_log", self.hostname, *payload.identity),
            observed_at=time.time() if not self.ctx.replay else at,
            attribution=attribution,
            origin=payload.origin,
        )
        self.telemetry.sent += 1
        return [Envelope(doc, EventMeta(self.component_id, time.time_ns()))]

    # ------------------------------------------------------------ replay
    @staticmethod
    def replay_detect(path: Path, head: bytes) -> bool:
        if b"\x00" in head:
            return False
        if _is_journal_export(head):
            return _is_our_journal_export(head)
        text = head.decode("utf-8", "replace")
        ctx = TimeContext()
        for i, row in enumerate(text.splitlines()[:64], 1):
            parsed = parse_line(row, ctx, Location(str(path), i))
            if isinstance(parsed, LogLine):
                return True
        first = text.splitlines()[0] if text else ""
        return " kernel: " in text and bool(first) and not first.startswith("{")

    @staticmethod
    def replay_read(path: Path) -> Iterator[ReplayItem]:
        """Text logs (year of RFC 3164 dates from the file's mtime; bare dmesg uptimes against
        ``mtime - last uptime`` as the boot time) and ``journalctl -o json`` exports."""
        with open(path, "rb") as fh:
            head = fh.read(4096)
        if _is_journal_export(head):
            for lineno, entry in read_json_export(path):
                loc = f"{path}:{lineno}"
                if isinstance(entry, ParseError):
                    yield ReplayItem(0.0, entry, loc)
                    continue
                rec = record_from_entry(entry, Location(str(path), lineno))
                if rec is None:
                    continue
                if isinstance(rec, ParseError):
                    yield ReplayItem(0.0, rec, loc)
                else:
                    assert rec.line.time is not None
                    yield ReplayItem(rec.line.time, rec, loc)
            return
        mtime = path.stat().st_mtime
        ctx = TimeContext(reference=mtime, boot_time=_estimate_boot(path, mtime))
        last = 0.0
        for tl in _read_lines(path):
            rec = record_from_line(tl, ctx, mtime)
            if rec is None:
                continue
            loc = f"{tl.path}:{tl.line}"
            if isinstance(rec, ParseError):
                yield ReplayItem(last, rec, loc)
                continue
            assert rec.line.time is not None
            last = rec.line.time
            yield ReplayItem(rec.line.time, rec, loc)

    # ------------------------------------------------------------ live
    def _time_context(self) -> TimeContext:
        boot = self.config.boot_time_epoch
        if boot is None:
            boot = host_boot_time()
        return TimeContext(tz=self.tz, year=self.config.year, boot_time=boot)

    async def _emit(self, emit: Emit, envs: list[Envelope]) -> None:
        if envs:
            await emit(envs)

    async def _run_files(self, emit: Emit, stop: asyncio.Event) -> None:
        cfg = self.config
        for path in cfg.files:
            self.tails[path] = FileTail(
                path,
                self.positions.get(path),
                from_start=cfg.files_from_start,
                max_line_bytes=cfg.max_line_bytes,
            )
        tctx = self._time_context()
        last_save = time.monotonic()
        while True:
            stopping = stop.is_set()  # one last poll after stop: what is written is read
            for tail in self.tails.values():
                lines = await asyncio.to_thread(tail.poll)
                envs: list[Envelope] = []
                for tl in lines:
                    self.lines_read += 1
                    if tl.truncated:
                        self.telemetry.drop("line_too_long")
                    rec = record_from_line(tl, tctx, time.time())
                    if rec is None:
                        continue
                    at = (
                        rec.line.time
                        if isinstance(rec, Record) and rec.line.time is not None
                        else time.time()
                    )
                    envs.extend(self.process(rec, at))
                    if len(envs) >= cfg.batch_max_events:
                        await emit(envs)
                        envs = []
                await self._emit(emit, envs)
            if stopping:
                return
            if time.monotonic() - last_save >= cfg.state_save_interval_secs:
                await asyncio.to_thread(self.save_state)
                last_save = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), cfg.poll_interval_secs)

    async def _run_journal(self, emit: Emit, stop: asyncio.Event) -> None:
        cfg = self.config
        self.follower = follower = JournalFollower(
            JOURNAL_MATCHES,
            self.cursor_path,
            journalctl=cfg.journalctl,
            directory=cfg.journal_directory,
            files=cfg.journal_files,
            since_now=cfg.journal_since_now,
            on_error=lambda e: self.telemetry.error("parse", "journal", e.render()),
        )
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=cfg.batch_max_events * 4)

        async def reader() -> None:
            try:
                async for entry in follower.entries(stop):
                    await queue.put(entry)
            except Exception as exc:  # journalctl missing, … : reported, the files keep going
                self.telemetry.error("read", "journal", str(exc))
                log.warning("%s: journal: %s", self.component_id, exc)
            finally:
                await queue.put(None)

        task = asyncio.create_task(reader())
        lineno = 0
        try:
            done = False
            while not done:
                first = await queue.get()
                batch = [first]
                while len(batch) < cfg.batch_max_events and not queue.empty():
                    batch.append(queue.get_nowait())
                envs: list[Envelope] = []
                cursor = None
                for entry in batch:
                    if entry is None:
                        done = True
                        break
                    lineno += 1
                    rec = record_from_entry(entry, Location("journal", lineno))
                    cur = entry.get("__CURSOR")
                    if isinstance(cur, str):
                        cursor = cur
                    if rec is None:
                        continue
                    at = (
                        rec.line.time
                        if isinstance(rec, Record) and rec.line.time is not None
                        else time.time()
                    )
                    envs.extend(self.process(rec, at))
                await self._emit(emit, envs)
                if cursor is not None:
                    await asyncio.to_thread(follower.commit, cursor)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await follower.close()

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        tasks = []
        if self.config.files:
            tasks.append(asyncio.create_task(self._run_files(emit, stop)))
        if self.config.journal:
            tasks.append(asyncio.create_task(self._run_journal(emit, stop)))
        try:
            if tasks:
                await asyncio.gather(*tasks)
            else:
                await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            for tail in self.tails.values():
                if tail.position is not None:
                    self.positions[tail.path] = tail.position
            self.save_state()

    async def close(self) -> None:
        for tail in self.tails.values():
            tail.close()

    def status(self) -> dict[str, Any]:
        return {
            "lines_read": self.lines_read,
            "records": self.records,
            "files": {
                p: {
                    "offset": t.position.offset if t.position else None,
                    "line": t.position.line if t.position else None,
                    "rotations": t.rotations,
                    "truncations": t.truncations,
                }
                for p, t in self.tails.items()
            },
            "journal": self.follower.status() if self.follower else None,
            "peer_map_entries": len(self.attributor.map),
        }


def _read_lines(path: Path) -> Iterator[TailLine]:
    offset = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            yield TailLine(
                raw.rstrip(b"\n").decode("utf-8", "replace").rstrip("\r"), str(path), offset, lineno
            )
            offset += len(raw)


def _estimate_boot(path: Path, mtime: float) -> float | None:
    """For a saved plain ``dmesg``: boot = mtime - the last uptime in it (the file was written right
    after its last line). ``None`` when the file has no uptime-only lines."""
    last = None
    with open(path, "rb") as fh:
        first = fh.readline()
        if not first.startswith(b"["):
            return None
        fh.seek(0)
        for raw in fh:
            if raw.startswith(b"["):
                end = raw.find(b"]")
                try:
                    last = float(raw[1:end])
                except ValueError:
                    continue
    return mtime - last if last is not None else None
