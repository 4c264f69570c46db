"""Runtime of the ``config_watch`` source: inotify (watchfiles) → read → parse → diff → ECS envelopes,
plus periodic drift checks against the running interfaces, with the last seen version of every file
persisted so a change made while wgsiem was stopped is reported at start.

Why rescan instead of trusting each inotify event: editors save through a temporary file and a
rename (vim, sed -i, Ansible), some write twice; after every debounced batch the matching files are
stat'ed and only those whose inode, size, mtime, mode or owner moved are read. The result is the
same whatever sequence of events the editor produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import grp
import hashlib
import logging
import os
import pwd
import re
import stat
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from wgsiem.errors import Location, ParseError, SourceError
from wgsiem.event import Envelope, EventMeta
from wgsiem.private_file import write_private
from wgsiem.sources.base import ReplayItem, SourceContext
from wgsiem.sources.config_watch.config import ConfigWatchSourceConfig
from wgsiem.sources.config_watch.differ import diff_versions
from wgsiem.sources.config_watch.drift import (
    DriftTracker,
    RunningInterface,
    RunningPeer,
    RunningView,
    find_drift,
)
from wgsiem.sources.config_watch.normalize import change_to_ecs, drift_to_ecs
from wgsiem.sources.config_watch.parser import parse_config
from wgsiem.sources.config_watch.records import (
    FileMeta,
    FileVersion,
    ParsedConfig,
    version_from_dict,
    version_to_dict,
)
from wgsiem.sources.wg_state.records import Fingerprinter
from wgsiem.sources.wg_state.source import load_fingerprint_secret

__all__ = ["ConfigSnapshot", "ConfigWatchSource"]

log = logging.getLogger("wgsiem.sources.config_watch")

Emit = Callable[[list[Envelope]], Awaitable[None]]

_REPLAY_NAME = re.compile(r"^(\d+(?:\.\d+)?)\.([A-Za-z0-9_=+.-]{1,15})\.conf$")
_SECTION = re.compile(rb"^[ \t]*\[[ \t]*(interface|peer|wireguard|wireguardpeer)[ \t]*\]", re.I | re.M)
STATE_VERSION = 1
DELETE_GRACE_SECS = 1.0


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    """One read of one file (``data is None``: the file is gone). ``parsed`` may be filled ahead of
    :meth:`ConfigWatchSource.process` (in a worker thread) when it matches ``sha256``."""

    key: str
    path: str
    interface: str
    data: bytes | None = field(repr=False)
    meta: FileMeta | None
    sha256: str = ""
    parsed: ParsedConfig | None = field(default=None, repr=False, compare=False)


def interface_of(path: str) -> str:
    """wg-quick's rule: the interface is the file name without ``.conf``."""
    name = os.path.basename(path)
    return name.rsplit(".", 1)[0] if "." in name else name


def _meta(st: os.stat_result) -> FileMeta:
    try:
        user: str | None = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = None
    try:
        group: str | None = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = None
    return FileMeta(
        uid=st.st_uid,
        gid=st.st_gid,
        user=user,
        group=group,
        mode=stat.S_IMODE(st.st_mode),
        mtime=st.st_mtime,
        size=st.st_size,
        inode=st.st_ino,
    )


def _stat_key(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid, st.st_gid)


class ConfigWatchSource:
    """Watches WireGuard config files; every change becomes ECS events, drift is checked on a timer."""

    component_type = "config_watch"

    def __init__(self, component_id: str, config: ConfigWatchSourceConfig, ctx: SourceContext) -> None:
        self.component_id = component_id
        self.config = config
        self.ctx = ctx
        self.fp = Fingerprinter(load_fingerprint_secret(ctx.state_dir))
        self.state_path = ctx.state_dir / "config_watch" / f"{component_id}.json"
        self.versions: dict[str, FileVersion] = {}
        self.tracker = DriftTracker()
        self._by_interface: dict[str, str] = {}  # interface → key of the version compared with it
        self._stats: dict[str, tuple[int, ...]] = {}
        self._missing_since: dict[str, float] = {}  # watched files seen gone, not yet reported
        self._live: dict[str, RunningView] = {}
        self._baseline = True  # no history: the first scan is an inventory, not a list of changes
        self.scans = 0
        self.watch_ticks = 0  # yields of the watcher loop (a batch or a timeout)
        self.drift_checks = 0
        self.last_scan_at: float | None = None
        self.last_drift_check_at: float | None = None
        if not ctx.replay:
            self._restore()

    # ------------------------------------------------------------ persistence
    def _restore(self) -> None:
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            return
        try:
            data = orjson.loads(raw)
            versions = [version_from_dict(v) for v in data["files"]]
            self.tracker.restore(data.get("drift", {}))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            bad = self.state_path.with_suffix(f".corrupt-{int(time.time())}")
            self.state_path.rename(bad)
            self.telemetry_error("state_corrupt", "restore", f"state file unreadable ({exc}); moved to {bad}")
            return
        for v in versions:
            self.versions[v.key] = v
            self._by_interface[v.interface] = v.key
        self._baseline = False

    def save_state(self) -> None:
        if self.ctx.replay:
            return
        state = {
            "version": STATE_VERSION,
            "files": [version_to_dict(v) for v in self.versions.values()],
            "drift": self.tracker.export(),
        }
        write_private(self.state_path, orjson.dumps(state))

    def telemetry_error(self, kind: str, stage: str, message: str) -> None:
        self.ctx.telemetry.error(kind, stage, message)
        log.warning("%s: %s", self.component_id, message)

    # ------------------------------------------------------------ replay contract
    @staticmethod
    def replay_detect(path: Path, head: bytes) -> bool:
        """A config snapshot written by ``wgsiem record``: ``<unix-ts>.<iface>.conf`` with a section."""
        return _REPLAY_NAME.match(Path(path).name) is not None and _SECTION.search(head) is not None

    @staticmethod
    def replay_read(path: Path) -> Iterator[ReplayItem]:
        path = Path(path)
        m = _REPLAY_NAME.match(path.name)
        if m is None:
            yield ReplayItem(
                0.0,
                ParseError(
                    "not a config snapshot name",
                    location=Location(str(path)),
                    fix="name snapshots <unix-ts>.<iface>.conf",
                ),
                str(path),
            )
            return
        data = path.read_bytes()
        yield ReplayItem(
            float(m.group(1)),
            ConfigSnapshot(
                key=f"replay:{m.group(2)}",
                path=str(path),
                interface=m.group(2),
                data=data,
                meta=None,
                sha256=hashlib.sha256(data).hexdigest(),
            ),
            str(path),
        )

    # ------------------------------------------------------------ processing (shared by live and replay)
    def _envelopes(self, docs: list[dict[str, Any]]) -> list[Envelope]:
        ns = time.time_ns()
        return [Envelope(d, EventMeta(self.component_id, ns)) for d in docs]

    def process(self, payload: ConfigSnapshot, at: float) -> list[Envelope]:
        """The events for one read of one file at event time ``at``: the diff against the previous
        version of the same file, then the drift of its interface."""
        observed = time.time() if not self.ctx.replay else at
        before = self.versions.get(payload.key)
        after: FileVersion | None = None
        if payload.data is not None:
            sha = payload.sha256 or hashlib.sha256(payload.data).hexdigest()
            if before is not None and before.sha256 == sha:
                parsed = before.config
            elif payload.parsed is not None and payload.sha256 == sha:
                parsed = payload.parsed
            else:
                parsed = parse_config(payload.data, payload.path, self.fp)
            if before is None or before.sha256 != sha:
                for err in parsed.errors:
                    self.ctx.telemetry.error("parse", "config", err.render())
            after = FileVersion(payload.key, payload.path, payload.interface, sha, payload.meta, parsed)
        initial = before is None and (self._baseline or self.ctx.replay)
        changes = diff_versions(before, after, initial=initial)
        if after is None:
            self.versions.pop(payload.key, None)
            if self._by_interface.get(payload.interface) == payload.key:
                del self._by_interface[payload.interface]
        else:
            self.versions[payload.key] = after
            self._by_interface[payload.interface] = payload.key
        docs = [change_to_ecs(c, hostname=self.ctx.hostname, at=at, observed_at=observed) for c in changes]
        if changes or after is None:
            docs += self._drift_docs(payload.interface, at, observed, deleted=after is None)
        return self._envelopes(docs)

    def _running_view(self, interface: str) -> RunningView | None:
        if self.config.live_read != "off" and not self.ctx.replay:
            return self._live.get(interface)
        directory = self.ctx.peers
        if interface not in directory.interfaces():
            return None
        peers = {
            p.public_key: RunningPeer(p.public_key, tuple(p.allowed_ips), p.endpoint)
            for p in directory.peers(interface)
        }
        return RunningView(interface, peers, None, "peer_directory")

    def _drift_docs(self, interface: str, at: float, observed: float, *, deleted: bool = False) -> list[dict]:
        key = self._by_interface.get(interface)
        version = self.versions.get(key) if key else None
        if version is None:
            if not deleted:
                return []
            # the file is gone: its drift episodes end (there is nothing left to drift from)
            detected, resolved = self.tracker.update(interface, [], at)
            origin = "file-deleted"
        else:
            view = self._running_view(interface)
            if view is None:
                return []  # interface not running (or unknown): nothing to compare, keep episodes open
            items = find_drift(version.config, view, check_endpoint=self.config.drift_endpoints)
            # event time under replay, too: its drift timer (replay_tick) reports what outlasts the grace
            detected, resolved = self.tracker.update(interface, items, at, self.config.drift_grace_secs)
            origin = view.origin
        docs = []
        for state, pairs in (("resolved", resolved), ("detected", detected)):
            for item, since in pairs:
                docs.append(
                    drift_to_ecs(
                        item,
                        state=state,
                        since=since,
                        interface=interface,
                        version=version,
                        origin=origin,
                        hostname=self.ctx.hostname,
                        at=at,
                        observed_at=observed,
                    )
                )
        return docs

    def check_drift(self, at: float) -> list[Envelope]:
        """Compare every watched file with its running interface (the timer's check)."""
        observed = time.time() if not self.ctx.replay else at
        docs: list[dict[str, Any]] = []
        for interface in sorted(self._by_interface):
            docs += self._drift_docs(interface, at, observed)
        self.drift_checks += 1
        self.last_drift_check_at = at
        return self._envelopes(docs)

    def replay_tick(self, at: float) -> list[Envelope]:
        """Under replay, the timer's drift check in event time: called after every replayed record, it
        checks once ``drift_check_interval_secs`` have passed since the last check, as the live loop
        does, so a running interface that drifts from an unchanged file is flagged in a replay too."""
        if not self._by_interface:
            return []
        last = self.last_drift_check_at
        if last is not None and at - last < self.config.drift_check_interval_secs:
            return []
        return self.check_drift(at)

    async def refresh_live(self) -> None:
        """Read the watched interfaces now (``live_read``), for the next drift comparison."""
        if self.config.live_read == "off" or not self._by_interface:
            return
        from wgsiem.sources.wg_state.dump_parser import parse_dump_peer
        from wgsiem.sources.wg_state.reader import StateReader
        from wgsiem.sources.wg_state.uapi_parser import parse_uapi_peer

        reader = StateReader(
            self.fp,
            mode=self.config.live_read,
            interfaces=sorted(self._by_interface),
            socket_dirs=self.config.socket_dirs,
            wg_binary=self.config.wg_binary,
            timeout_secs=self.config.read_timeout_secs,
        )
        snap = await reader.read()
        for msg in snap.errors:
            self.telemetry_error("read", "live_read", msg)
        live: dict[str, RunningView] = {}
        for name, si in snap.interfaces.items():
            peers: dict[str, RunningPeer] = {}
            for rec in si.records:
                try:
                    r = (
                        parse_uapi_peer(name, rec, self.fp)
                        if si.peer_format == "uapi"
                        else parse_dump_peer(rec, self.fp)
                    )
                except (ValueError, UnicodeDecodeError):
                    self.ctx.telemetry.error("parse", "live_read")
                    continue
                peers[r.public_key] = RunningPeer(
                    r.public_key, r.allowed_ips, r.endpoint, r.preshared_key_fingerprint, True
                )
            info = RunningInterface(si.info.public_key, si.info.private_key_fingerprint, si.info.listen_port)
            live[name] = RunningView(name, peers, info, "live")
        self._live = live

    # ------------------------------------------------------------ files
    def targets(self) -> dict[str, str]:
        """Path → interface for every file the configured globs/directories match now."""
        out: dict[str, str] = {}
        for pattern in self.config.paths:
            pat = os.path.join(pattern, "*.conf") if os.path.isdir(pattern) else pattern
            for f in sorted(glob.glob(pat)):
                if os.path.isfile(f):
                    out[os.path.abspath(f)] = interface_of(f)
        return out

    def watch_dirs(self) -> list[str]:
        """The existing directories inotify must watch for the configured patterns."""
        dirs: set[str] = set()
        for pattern in self.config.paths:
            if os.path.isdir(pattern):
                dirs.add(os.path.abspath(pattern))
                continue
            parent = os.path.dirname(os.path.abspath(pattern))
            if glob.has_magic(parent):
                dirs.update(os.path.abspath(d) for d in glob.glob(parent) if os.path.isdir(d))
            elif os.path.isdir(parent):
                dirs.add(parent)
        return sorted(dirs)

    def read_changed(self, delete_grace_secs: float = 0.0) -> list[ConfigSnapshot]:
        """Snapshots of files that are new, gone, or whose stat moved (blocking I/O + parse: run it in a
        worker thread). Live versions are keyed by path.

        A file must stay gone for ``delete_grace_secs`` before it is reported deleted: a save that
        moves the file away and writes it anew may straddle two inotify batches on a loaded host."""
        out: list[ConfigSnapshot] = []
        targets = self.targets()
        for path, iface in targets.items():
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
            except FileNotFoundError:
                continue  # gone between glob and open: the next batch sees the deletion
            except OSError as exc:
                self.telemetry_error("read", "open", f"cannot open {path}: {exc.strerror}")
                continue
            try:
                st = os.fstat(fd)
                skey = _stat_key(st)
                if self._stats.get(path) == skey and path in self.versions:
                    continue
                if st.st_size > self.config.max_file_bytes:
                    self.telemetry_error(
                        "too_large", "read", f"{path} is {st.st_size} bytes, above max_file_bytes"
                    )
                    continue
                with os.fdopen(os.dup(fd), "rb") as f:
                    data = f.read(self.config.max_file_bytes + 1)
            finally:
                os.close(fd)
            self._stats[path] = skey
            sha = hashlib.sha256(data).hexdigest()
            known = self.versions.get(path)
            parsed = None if known is not None and known.sha256 == sha else parse_config(data, path, self.fp)
            out.append(ConfigSnapshot(path, path, iface, data, _meta(st), sha, parsed))
        now = time.monotonic()
        for key in [k for k in self._missing_since if k in targets or k not in self.versions]:
            del self._missing_since[key]
        for key, v in list(self.versions.items()):
            if not key.startswith("replay:") and key not in targets:
                since = self._missing_since.setdefault(key, now)
                if now - since < delete_grace_secs:
                    continue
                del self._missing_since[key]
                self._stats.pop(key, None)
                out.append(ConfigSnapshot(key, v.path, v.interface, None, None))
        return out

    def _apply(self, snaps: list[ConfigSnapshot], at: float) -> list[Envelope]:
        envs: list[Envelope] = []
        for s in snaps:
            envs += self.process(s, at)
        self.scans += 1
        self.last_scan_at = at
        return envs

    async def scan(self, delete_grace_secs: float = 0.0) -> list[Envelope]:
        """Read what changed on disk and process it."""
        snaps = await asyncio.to_thread(self.read_changed, delete_grace_secs)
        return self._apply(snaps, time.time())

    # ------------------------------------------------------------ the loop
    async def _emit(self, emit: Emit, envs: list[Envelope]) -> None:
        if envs:
            self.ctx.telemetry.sent += len(envs)
            await emit(envs)

    async def _drift_tick(self) -> list[Envelope]:
        try:
            await self.refresh_live()
        except SourceError as exc:
            self.telemetry_error("read", "live_read", exc.render())
        return self.check_drift(time.time())

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        from watchfiles import awatch

        interval = self.config.drift_check_interval_secs
        try:
            envs = await self.scan()
            self._baseline = False
            envs += await self._drift_tick()
            await self._emit(emit, envs)
            await asyncio.to_thread(self.save_state)
            next_drift = time.monotonic() + interval
            next_rescan = time.monotonic() + self.config.rescan_interval_secs
            tick_ms = int(max(50.0, min(1000.0, interval * 1000)))
            while not stop.is_set():
                dirs = self.watch_dirs()
                fresh = True  # the first yield comes once the watcher exists: rescan what it missed
                try:
                    async for batch in (
                        awatch(
                            *dirs,
                            stop_event=stop,
                            debounce=self.config.debounce_ms,
                            step=50,
                            rust_timeout=tick_ms,
                            yield_on_timeout=True,
                            recursive=False,
                            watch_filter=None,
                        )
                        if dirs
                        else self._ticks(stop, tick_ms)
                    ):
                        envs = []
                        now = time.monotonic()
                        self.watch_ticks += 1
                        if batch or fresh or now >= next_rescan or self._missing_since:
                            fresh = False
                            if self.config.live_read != "off" and batch:
                                with contextlib.suppress(SourceError):
                                    await self.refresh_live()
                            envs += await self.scan(DELETE_GRACE_SECS)
                            next_rescan = now + self.config.rescan_interval_secs
                        if now >= next_drift:
                            envs += await self._drift_tick()
                            next_drift = now + interval
                        await self._emit(emit, envs)
                        if envs or batch:
                            await asyncio.to_thread(self.save_state)
                        if self.watch_dirs() != dirs:
                            break  # a watched directory appeared or vanished: watch the new set
                except (OSError, RuntimeError) as exc:
                    self.telemetry_error("watch", "inotify", f"watching {dirs} failed: {exc}")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            self.save_state()

    @staticmethod
    async def _ticks(stop: asyncio.Event, tick_ms: int) -> Any:
        """What awatch yields on timeouts, for when no watched directory exists yet."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_ms / 1000)
            if not stop.is_set():
                yield set()

    def status(self) -> dict[str, Any]:
        return {
            "files": len(self.versions),
            "interfaces": sorted(self._by_interface),
            "scans": self.scans,
            "drift_checks": self.drift_checks,
            "active_drift": sum(len(v) for v in self.tracker.active.values()),
            "files_with_errors": sum(1 for v in self.versions.values() if v.config.errors),
            "exposed_files": sorted(v.path for v in self.versions.values() if v.exposed),
        }
