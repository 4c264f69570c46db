"""Runtime of the ``wggo_log`` source: wireguard-go's log lines → ECS envelopes.

Three inputs, one per source instance (``mode``), all funnelled through :meth:`WggoLogSource.process`
so a replay of a captured file gives the events the live run gave:

* ``file``: follow a log file (rotation, truncation, position persisted; :mod:`.follow`);
* ``journald``: follow the journal through :class:`wgsiem.sources.journal.JournalFollower`
  (cursor persisted); the event time is the journal's own microsecond timestamp;
* ``command``: start wireguard-go in the foreground, read its stdout/stderr, stop it on stop
  (:mod:`.spawn`).

**Time.** wireguard-go prints local time to the second without a zone. It is read in ``timezone``
(default: this host's zone, as Go's ``time.Local``); the repeated hour at the end of DST resolves to its
first occurrence. Lines within one second keep their order: ``event.sequence`` is the line number in
the file (or the line count of the stream) and the replay driver keeps file order for equal times.

**Identity.** ``event.id`` hashes (source, host, interface, the line as printed, how many identical
lines came before it within that second), so the same line read live, from a rotated copy, from the
journal or replayed gets the same id, and two identical keepalive lines in one second get two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from wgsiem.errors import ConfigError, Location, ParseError, SourceError
from wgsiem.event import Envelope, EventMeta, event_id
from wgsiem.private_file import write_private
from wgsiem.sources.base import ReplayItem, SourceContext
from wgsiem.sources.wggo_log.catalog import Classified, classify
from wgsiem.sources.wggo_log.config import WggoLogSourceConfig
from wgsiem.sources.wggo_log.follow import FileFollower, Position
from wgsiem.sources.wggo_log.lines import LINE_RE, LocalClock, LogLine, is_banner, local_zone, parse_line
from wgsiem.sources.wggo_log.normalize import to_ecs
from wgsiem.sources.wggo_log.resolve import PeerResolver
from wgsiem.sources.wggo_log.spawn import Daemon, interface_from_command

__all__ = ["WggoLogSource", "WggoRecord", "interface_from_path"]

log = logging.getLogger("wgsiem.sources.wggo_log")

Emit = Callable[[list[Envelope]], Awaitable[None]]

_IFACE_RE = re.compile(r"[A-Za-z0-9_=+.-]{1,15}")
_LOG_SUFFIX = re.compile(r"(\.(log|out|txt))?(\.\d+)?(\.gz)?$")
_NAME_PREFIX = re.compile(r"^(wireguard-go|wggo)[-_.]")


def interface_from_path(path: str | Path | None) -> str | None:
    """The interface a log file is named after: ``wg0.log``, ``wg0.log.1``, ``wireguard-go-wg0.log``,
    ``wireguard-go.wg0.log`` → ``wg0``. ``wireguard-go.log`` names no interface."""
    if not path:
        return None
    stem = _LOG_SUFFIX.sub("", Path(path).name, count=1)
    stem = _NAME_PREFIX.sub("", stem, count=1)
    if not stem or stem in ("wireguard-go", "wggo") or not _IFACE_RE.fullmatch(stem):
        return None
    return stem


class WggoRecord(NamedTuple):
    """What :meth:`WggoLogSource.process` takes: one parsed line and where it came from."""

    line: LogLine
    sequence: int  # line number in the file, or count of lines in the stream
    file: str | None = None
    interface_hint: str | None = None  # from the file name, for lines without "(iface) "


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


class WggoLogSource:
    """Reads wireguard-go's log; every line becomes one ECS event."""

    component_type = "wggo_log"

    def __init__(self, component_id: str, config: WggoLogSourceConfig, ctx: SourceContext) -> None:
        self.component_id = component_id
        self.config = config
        self.ctx = ctx
        self.telemetry = ctx.telemetry
        self.clock = LocalClock(local_zone(config.timezone))
        self.resolver = PeerResolver(ctx.peers)
        self.interface: str | None
        self.interface_from: str | None
        if config.interface:
            self.interface, self.interface_from = config.interface, "config"
        elif config.mode == "file" and interface_from_path(config.path):
            self.interface, self.interface_from = interface_from_path(config.path), "file_name"
        elif config.mode == "command" and interface_from_command(config.command):
            self.interface, self.interface_from = interface_from_command(config.command), "command"
        else:
            self.interface, self.interface_from = None, None
        self.state_path = ctx.state_dir / "wggo_log" / f"{component_id}.json"
        self._dup_stamp = ""
        self._dup: dict[tuple[str | None, str], int] = {}
        self._sequence = 0  # stream modes
        self._position: Position | None = None
        self._follower: FileFollower | None = None
        self._journal: Any = None
        self._cursor: str | None = None
        self._daemon: Daemon | None = None
        self._stderr_tail: list[str] = []
        self.lines = 0
        self.daemon_starts = 0
        self.last_exit: int | None = None
        self._restore()

    # ------------------------------------------------------------ persistence
    def _restore(self) -> None:
        if self.ctx.replay:  # a replay starts from nothing, so it numbers lines as the live run did
            return
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            return
        try:
            state = orjson.loads(raw)
            if state.get("path") == self.config.path and state.get("position"):
                self._position = Position.from_json(state["position"])
            dup = state.get("dup") or {}
            self._dup_stamp = str(dup.get("stamp", ""))
            self._dup = {(i or None, str(r)): int(n) for i, r, n in dup.get("counts", [])}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            bad = self.state_path.with_suffix(f".corrupt-{int(time.time())}")
            self.state_path.rename(bad)
            self.telemetry.error("state_corrupt", "restore", f"state file unreadable ({exc}); moved to {bad}")

    def save_state(self) -> None:
        """Persist the file position and the same-second line counts (ids stay stable across restarts)."""
        if self.ctx.replay:
            return
        if self._journal is not None and self._cursor and self._cursor != self._journal.committed:
            self._journal.commit(self._cursor)  # only what was emitted (and, at stop, delivered)
        pos = self._follower.position() if self._follower is not None else self._position
        state = {
            "path": self.config.path,
            "position": pos.to_json() if pos is not None else None,
            "dup": {"stamp": self._dup_stamp, "counts": [[i, r, n] for (i, r), n in self._dup.items()]},
        }
        write_private(self.state_path, orjson.dumps(state))

    # ------------------------------------------------------------ replay contract
    @staticmethod
    def replay_detect(path: Path, head: bytes) -> bool:
        """A wireguard-go log: its first line that is not blank or banner is a wireguard-go log line."""
        text = head.decode("utf-8", "replace")
        for line in text.splitlines()[:50]:
            if not line.strip() or is_banner(line):
                continue
            return LINE_RE.fullmatch(line) is not None
        return False

    @staticmethod
    def replay_read(path: Path) -> Iterator[ReplayItem]:
        """Every line of a wireguard-go log file with its time (read in this host's zone, ``TZ``)."""
        clock = LocalClock(local_zone())
        hint = interface_from_path(path)
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                text = _decode(raw.rstrip(b"\r\n"))
                if not text or is_banner(text):
                    continue
                loc = Location(str(path), lineno)
                try:
                    line = parse_line(text, location=loc)
                    at = _epoch(clock, line, loc)
                except ParseError as err:
                    yield ReplayItem(0.0, err, str(loc))
                    continue
                yield ReplayItem(at, WggoRecord(line, lineno, str(path), hint), str(loc))

    def process(self, payload: WggoRecord, at: float) -> list[Envelope]:
        """The event of one line at event time ``at``."""
        line = payload.line
        iface: str | None = line.interface
        iface_from: str | None = "line"
        if iface is None:
            iface, iface_from = self.interface, self.interface_from
            if iface is None and payload.interface_hint:
                iface, iface_from = payload.interface_hint, "file_name"
        c: Classified = classify(line.message)
        peer = None
        if c.head is not None and c.tail is not None:
            peer = self.resolver.resolve(c.head, c.tail, iface)
        if line.local_time != self._dup_stamp:
            self._dup_stamp = line.local_time
            self._dup.clear()
        key = (iface, line.raw)
        n = self._dup.get(key, 0)
        self._dup[key] = n + 1
        eid = event_id("wggo_log", self.ctx.hostname, iface or "", line.raw, n)
        doc = to_ecs(
            level=line.level,
            message=line.message,
            raw=line.raw,
            local_time=line.local_time,
            classified=c,
            at=at,
            created=at if self.ctx.replay else time.time(),
            event_id=eid,
            sequence=payload.sequence,
            hostname=self.ctx.hostname,
            interface=iface,
            interface_from=iface_from,
            peer=peer,
            file_path=payload.file,
        )
        return [Envelope(doc, EventMeta(self.component_id, time.time_ns()))]

    # ------------------------------------------------------------ live: shared
    def _line_envelopes(
        self, text: str, sequence: int, *, file: str | None, where: str, at: float | None = None
    ) -> list[Envelope]:
        """One line read live (``where`` names the stream for error locations: a path, ``stdout``…)."""
        self.lines += 1
        self.telemetry.received += 1
        if not text:
            self.telemetry.drop("blank_line")
            return []
        if is_banner(text):
            self.telemetry.drop("banner")
            return []
        try:
            line = parse_line(text)
            t = _epoch(self.clock, line) if at is None else at
        except ParseError as err:
            located = ParseError(err.what, location=Location(where, sequence), fix=err.fix)
            self.telemetry.error("parse", "parse", located.render())
            return []
        return self.process(WggoRecord(line, sequence, file, None), t)

    async def _emit(self, emit: Emit, envs: list[Envelope]) -> None:
        step = self.config.batch_max_events
        for i in range(0, len(envs), step):
            batch = envs[i : i + step]
            self.telemetry.sent += len(batch)
            await emit(batch)

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        mode = self.config.mode
        if mode == "file" and not self.config.path:
            raise ConfigError(
                f"source {self.component_id!r} (wggo_log, mode file) has no `path`",
                fix="set `path:` to the wireguard-go log file, or `mode: journald` / `mode: command`",
            )
        try:
            if mode == "file":
                await self._run_file(emit, stop)
            elif mode == "journald":
                await self._run_journal(emit, stop)
            else:
                await self._run_command(emit, stop)
        finally:
            self.save_state()

    async def _wait(self, stop: asyncio.Event, secs: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), secs)

    # ------------------------------------------------------------ file mode
    async def _run_file(self, emit: Emit, stop: asyncio.Event) -> None:
        cfg = self.config
        assert cfg.path is not None
        follower = self._follower = FileFollower(
            Path(cfg.path),
            position=self._position,
            from_start=cfg.from_start,
            read_max_bytes=cfg.read_max_bytes,
            max_line_bytes=cfg.max_line_bytes,
        )
        last_save = time.monotonic()
        too_long = 0
        while True:
            stopping = stop.is_set()
            more = True
            while more:  # drain what is there (also once more after stop: lines written before it)
                lines, more = follower.read()
                if lines:
                    path = str(follower.path)
                    envs: list[Envelope] = []
                    for lineno, raw in lines:
                        envs += self._line_envelopes(_decode(raw), lineno, file=path, where=path)
                    if envs:
                        await self._emit(emit, envs)
                if follower.too_long != too_long:
                    self.telemetry.drop("line_too_long", follower.too_long - too_long)
                    too_long = follower.too_long
            if stopping:
                return
            if time.monotonic() - last_save >= cfg.state_save_interval_secs:
                self.save_state()
                last_save = time.monotonic()
            await self._wait(stop, cfg.poll_interval_secs)

    # ------------------------------------------------------------ journald mode
    async def _run_journal(self, emit: Emit, stop: asyncio.Event) -> None:
        from wgsiem.sources.journal import JournalFollower, entry_field, entry_message, entry_time

        cfg = self.config

        def bad(err: ParseError) -> None:
            self.telemetry.error("parse", "journal", err.render())

        last_save = time.monotonic()
        follower = self._journal = JournalFollower(
            list(cfg.journal_matches),
            self.state_dir_for("cursor"),
            journalctl=cfg.journalctl,
            directory=cfg.journal_directory,
            files=list(cfg.journal_files),
            since_now=cfg.journal_since_now,
            on_error=bad,
        )
        try:
            async for entry in follower.entries(stop):
                self._sequence += 1
                try:
                    at: float | None = entry_time(entry)
                except ValueError:
                    at = None
                envs = self._line_envelopes(
                    entry_message(entry),
                    self._sequence,
                    file=None,
                    where="journal",
                    at=at,
                )
                if envs:
                    await self._emit(emit, envs)
                self._cursor = entry_field(entry, "__CURSOR") or self._cursor
                if time.monotonic() - last_save >= cfg.state_save_interval_secs:
                    await asyncio.to_thread(self.save_state)
                    last_save = time.monotonic()
        finally:
            await follower.close()

    def state_dir_for(self, what: str) -> Path:
        return self.ctx.state_dir / "wggo_log" / f"{self.component_id}.{what}"

    # ------------------------------------------------------------ command mode
    async def _run_command(self, emit: Emit, stop: asyncio.Event) -> None:
        cfg = self.config
        delay = cfg.restart_delay_secs
        stop_task = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                daemon = self._daemon = Daemon(
                    cfg.command,
                    cfg.env,
                    max_line_bytes=cfg.max_line_bytes,
                    stop_timeout_secs=cfg.stop_timeout_secs,
                )
                try:
                    await daemon.start()
                except SourceError as exc:
                    self.telemetry.error("start", "command", exc.render())
                    log.warning("%s: %s", self.component_id, exc.render())
                    await self._wait(stop, delay)
                    delay = min(60.0, max(delay * 2, 1.0))
                    continue
                self.daemon_starts += 1
                started = time.monotonic()
                try:
                    await self._read_daemon(daemon, emit, stop, stop_task)
                finally:
                    await daemon.close()
                rc = await daemon.wait()
                self.last_exit = rc
                if stop.is_set():
                    return
                await self._emit(emit, self._exit_event(daemon, rc))
                self.telemetry.error("exited", "command", f"{cfg.command[0]} exited with {rc}")
                if not cfg.restart_on_exit:
                    await stop.wait()
                    return
                # a daemon that ran for a while is restarted promptly; one that dies at once backs off
                delay = cfg.restart_delay_secs if time.monotonic() - started > 60 else delay
                await self._wait(stop, delay)
                delay = min(60.0, max(delay * 2, 1.0))
        finally:
            stop_task.cancel()

    async def _read_daemon(
        self, daemon: Daemon, emit: Emit, stop: asyncio.Event, stop_task: asyncio.Future[Any]
    ) -> None:
        """Hand out the daemon's lines until both pipes close; on stop, SIGTERM and read to the end."""
        deadline: float | None = None
        killed = False
        cfg = self.config
        while True:
            if stop.is_set() and deadline is None:
                daemon.terminate()  # wireguard-go logs its shutdown; keep reading it
                deadline = time.monotonic() + cfg.stop_timeout_secs
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    if killed:
                        return  # the pipes stay open (a grandchild holds them): stop reading
                    daemon.kill()
                    killed = True
                    deadline = time.monotonic() + cfg.stop_timeout_secs
                    continue
                try:
                    item = await asyncio.wait_for(daemon.queue.get(), left)
                except TimeoutError:
                    continue
            else:
                get = asyncio.ensure_future(daemon.queue.get())
                done, _ = await asyncio.wait({get, stop_task}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await get
                    continue
                item = get.result()
            items = [item]
            while len(items) < cfg.batch_max_events and not daemon.queue.empty():
                items.append(daemon.queue.get_nowait())
            envs: list[Envelope] = []
            ended = False
            for it in items:
                if it is None:
                    ended = daemon.stream_ended() or ended
                    continue
                stream, raw = it
                self._sequence += 1
                text = _decode(raw.rstrip(b"\r"))
                if stream == "stderr" and text and not LINE_RE.match(text):
                    self.telemetry.received += 1
                    self.telemetry.drop("banner" if is_banner(text) else "stderr_text")
                    self._stderr_tail = [*self._stderr_tail[-19:], text]
                    continue
                envs += self._line_envelopes(text, self._sequence, file=None, where=stream)
            if envs:
                await self._emit(emit, envs)
            if ended:
                return

    def _exit_event(self, daemon: Daemon, rc: int) -> list[Envelope]:
        """A wgsiem observation (not a log line): the daemon it runs exited on its own."""
        now = time.time()
        iface = self.interface
        self._sequence += 1
        doc = to_ecs(
            level="error",
            message=f"{self.config.command[0]} exited with status {rc}",
            raw="",
            local_time="",
            classified=Classified("daemon-exited"),
            at=now,
            created=now,
            event_id=event_id("wggo_log", self.ctx.hostname, iface or "", "exit", daemon.pid, now),
            sequence=self._sequence,
            hostname=self.ctx.hostname,
            interface=iface,
            interface_from=self.interface_from,
            peer=None,
            extra={"process": {"pid": daemon.pid or 0, "exit_code": rc}},
        )
        del doc["event"]["original"]
        if self._stderr_tail:
            doc["error"] = {"message": "\n".join(self._stderr_tail[-5:])}
        return [Envelope(doc, EventMeta(self.component_id, time.time_ns()))]

    # ------------------------------------------------------------ views
    @property
    def daemon_pid(self) -> int | None:
        d = self._daemon
        return d.pid if d is not None and d.returncode is None else None

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mode": self.config.mode,
            "interface": self.interface,
            "lines": self.lines,
            "peers": dict(self.resolver.counts),
        }
        if self._follower is not None:
            pos = self._follower.position()
            out["file"] = {
                "path": self.config.path,
                "offset": pos.offset if pos else None,
                "line": pos.line if pos else None,
                "rotations": self._follower.rotations,
                "truncations": self._follower.resets,
            }
        if self._journal is not None:
            out["journal"] = self._journal.status()
        if self.config.mode == "command":
            out["daemon"] = {
                "pid": self.daemon_pid,
                "starts": self.daemon_starts,
                "last_exit": self.last_exit,
                "stderr_tail": self._stderr_tail[-5:],
            }
        return out

    async def close(self) -> None:
        if self._daemon is not None:
            await self._daemon.close()
        if self._follower is not None:
            self._follower.close()


def _epoch(clock: LocalClock, line: LogLine, loc: Location | None = None) -> float:
    try:
        return clock.epoch(line.local_time)
    except ValueError as exc:
        raise ParseError(
            f"impossible date {line.local_time!r} ({exc})",
            location=loc,
            fix="the line's time stamp must be a real local date and time",
        ) from None
