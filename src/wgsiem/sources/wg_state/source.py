"""Runtime of the ``wg_state`` source: poll → diff → ECS envelopes, with persisted per-peer state."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from wgsiem.errors import SourceError
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import ComponentTelemetry
from wgsiem.private_file import write_private
from wgsiem.sources.base import ReplayItem
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo
from wgsiem.sources.wg_state.capture import CaptureReader, CaptureWriter, capture_time
from wgsiem.sources.wg_state.config import WgStateSourceConfig, poll_interval_warning
from wgsiem.sources.wg_state.differ import Change, Differ, DiffSettings
from wgsiem.sources.wg_state.lines import LineEncoder
from wgsiem.sources.wg_state.normalize import iso, to_ecs
from wgsiem.sources.wg_state.reader import StateReader
from wgsiem.sources.wg_state.records import Fingerprinter
from wgsiem.sources.wg_state.shard import Shard, split_groups

__all__ = ["PollTiming", "WgStateSource", "load_fingerprint_secret"]

log = logging.getLogger("wgsiem.sources.wg_state")

Emit = Callable[[list[Envelope]], Awaitable[None]]


def load_fingerprint_secret(state_dir: Path) -> bytes:
    """The per-collector secret that keys fingerprints of private/preshared keys (created 0600)."""
    path = state_dir / "fingerprint.key"
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return data


@dataclass(slots=True)
class PollTiming:
    read_secs: float = 0.0
    diff_secs: float = 0.0
    emit_secs: float = 0.0
    interfaces: int = 0
    peers: int = 0
    changes: int = 0


class WgStateSource:
    """Polls WireGuard state on an interval; every change becomes one ECS event."""

    component_type = "wg_state"

    def __init__(
        self,
        component_id: str,
        config: WgStateSourceConfig,
        *,
        hostname: str,
        state_dir: Path,
        telemetry: ComponentTelemetry,
        peers: PeerDirectory | None = None,
    ) -> None:
        self.component_id = component_id
        self.directory = peers
        if peers is not None:
            peers.attach(self.peer_infos)
        self.config = config
        self.hostname = hostname
        self.telemetry = telemetry
        self.state_path = state_dir / "wg_state" / f"{component_id}.json"
        fp = Fingerprinter(load_fingerprint_secret(state_dir))
        self.reader = StateReader(
            fp,
            mode=config.reader,
            interfaces=config.interfaces,
            socket_dirs=config.socket_dirs,
            wg_binary=config.wg_binary,
            timeout_secs=config.read_timeout_secs,
        )
        self.differ = Differ(
            fp,
            DiffSettings(
                session_timeout_secs=config.session_timeout_secs,
                session_grace_secs=config.session_grace_secs,
                transfer_interval_secs=config.transfer_interval_secs,
            ),
            host=hostname,
        )
        self._capture_writer: CaptureWriter | None = None
        self._capture_reader = CaptureReader()
        self.line_encoder = LineEncoder(hostname)
        self.last_poll = PollTiming()
        self.last_poll_at: float | None = None
        self.polls = 0
        self._restore()
        warning = poll_interval_warning(config)
        if warning is not None:
            log.warning("%s", warning)

    # ------------------------------------------------------------ persistence
    def _restore(self) -> None:
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            return
        try:
            self.differ.restore_state(orjson.loads(raw))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            # a corrupt state file must not stop collection: keep it aside and start fresh
            bad = self.state_path.with_suffix(f".corrupt-{int(time.time())}")
            self.state_path.rename(bad)
            self.telemetry.error("state_corrupt", "restore", f"state file unreadable ({exc}); moved to {bad}")

    def save_state(self) -> None:
        write_private(self.state_path, orjson.dumps(self.differ.export_state()))

    # ------------------------------------------------------------ polling
    def _envelopes(self, changes: list[Change], now: float) -> list[Envelope]:
        ns = time.time_ns()
        out = []
        for c in changes:
            doc = to_ecs(c, hostname=self.hostname, observed_at=now)
            out.append(Envelope(doc, EventMeta(self.component_id, ns)))
        return out

    def drain(self) -> list[Envelope]:
        """Envelopes for every pending transfer delta (what a stop must emit before state is saved).

        They carry the time of the last poll — when those bytes were last observed — so a stop emits
        the same events a replay of the captured snapshots does."""
        now = self.last_poll_at or time.time()
        return self._envelopes(self.differ.flush(now), now)

    async def poll_once(self) -> list[Envelope]:
        t0 = time.perf_counter()
        snap = await self.reader.read()
        # milliseconds: what a capture file name holds, so a replay sees the very same times
        snap.taken_at = round(snap.taken_at, 3)
        t1 = time.perf_counter()
        before_errors = self.differ.stats.parse_errors
        changes = self.differ.update(snap)
        t2 = time.perf_counter()
        envs = self._envelopes(changes, snap.taken_at)
        if self.directory is not None:
            self._publish(changes)
        if self.config.capture_dir:
            await asyncio.to_thread(self._capture, snap.taken_at)
        t3 = time.perf_counter()
        for msg in snap.errors:
            self.telemetry.error("read", "poll", msg)
        new_errors = self.differ.stats.parse_errors - before_errors
        if new_errors:
            self.telemetry.error("parse", "diff", self.differ.stats.errors[-1])
            del self.differ.stats.errors[:-10]
        self.last_poll = PollTiming(
            read_secs=t1 - t0,
            diff_secs=t2 - t1,
            emit_secs=t3 - t2,
            interfaces=len(snap.interfaces),
            peers=sum(len(i.records) for i in snap.interfaces.values()),
            changes=len(changes),
        )
        self.last_poll_at = snap.taken_at
        self.polls += 1
        return envs

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        interval = self.config.poll_interval_secs
        last_save = time.monotonic()
        next_poll = time.monotonic()
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    envs = await self.poll_once()
                except SourceError as exc:
                    self.telemetry.error("read", "poll", exc.render())
                    log.warning("%s: %s", self.component_id, exc.render())
                    envs = []
                took = time.monotonic() - started
                t = self.last_poll
                if self.polls == 1:
                    # the per-peer state built by the first poll lives for the whole run: keep the
                    # cyclic GC from re-walking it (100k peers ≈ 1M objects) on every full collection
                    gc.freeze()
                    log.info(
                        "%s: first poll: %d interface(s), %d peer(s), %d event(s) in %.2fs",
                        self.component_id,
                        t.interfaces,
                        t.peers,
                        t.changes,
                        took,
                    )
                elif took > interval:
                    log.warning(
                        "%s: a poll of %d peers took %.2fs, longer than poll_interval_secs=%s; "
                        "raise the interval or watch fewer interfaces",
                        self.component_id,
                        t.peers,
                        took,
                        interval,
                    )
                if envs:
                    self.telemetry.sent += len(envs)
                    await emit(envs)
                if time.monotonic() - last_save >= self.config.state_save_interval_secs:
                    await asyncio.to_thread(self.save_state)
                    last_save = time.monotonic()
                next_poll += interval
                delay = next_poll - time.monotonic()
                if delay < 0:  # a poll took longer than the interval: skip, don't pile up
                    next_poll = time.monotonic()
                    delay = 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            final = self.drain()
            if final:
                self.telemetry.sent += len(final)
                await emit(final)
            self.save_state()

    # ------------------------------------------------------------ capture and replay
    def _capture(self, taken_at: float) -> None:
        if self._capture_writer is None:
            assert self.config.capture_dir
            self._capture_writer = CaptureWriter(
                Path(self.config.capture_dir), self.config.capture_keyframe_secs
            )
        self._capture_writer.write(
            taken_at,
            (
                (iface.info, iface.implementation, [st.rec for st in iface.peers.values()])
                for iface in self.differ.ifaces.values()
                if iface.gone_since is None
            ),
        )

    @staticmethod
    def replay_detect(path: Path, head: bytes) -> bool:
        return capture_time(path) is not None

    @staticmethod
    def replay_read(path: Path) -> Iterator[ReplayItem]:
        t = capture_time(path)
        assert t is not None
        yield ReplayItem(t, path, str(path))

    def process(self, payload: Path, at: float) -> list[Envelope]:
        """One captured snapshot → the events a live poll of that state would have emitted."""
        changes = self._replay_changes(payload, at)
        envs = self._envelopes(changes, at)
        self.telemetry.sent += len(envs)
        return envs

    def process_lines(self, payload: Path, at: float) -> list[Any]:
        """:meth:`process`, but each event as its NDJSON line (``encode_document`` of its document) —
        or, for the rare event JSON cannot express, its document: what the replay's worker process
        sends to the pipeline (see :mod:`wgsiem.replay.worker`)."""
        changes = self._replay_changes(payload, at)
        lines = self.line_encoder.lines(changes, at)
        self.telemetry.sent += len(lines)
        return lines

    def drain_lines(self) -> list[Any]:
        """:meth:`drain` as NDJSON lines."""
        now = self.last_poll_at or time.time()
        return self.line_encoder.lines(self.differ.flush(now), now)

    def process_shard_lines(
        self, payload: Path, at: float, shard: Shard
    ) -> tuple[list[Any], list[tuple[Any, ...]], dict[tuple[Any, ...], int]]:
        """:meth:`process_lines` for one shard of the peers (see :mod:`~wgsiem.sources.wg_state.shard`):
        the lines, each one's merge key, and the peer counts the merge adds to ``interface-removed``."""
        marks = self.differ.marks = []
        changes = self._replay_changes(payload, at, shard)
        kept, keys, counts = split_groups(changes, marks, shard.index)
        lines = self.line_encoder.lines(kept, at)
        self.telemetry.sent += len(lines)
        return lines, keys, counts

    def drain_shard_lines(self, shard: Shard) -> tuple[list[Any], list[tuple[Any, ...]]]:
        """:meth:`drain_lines` for one shard, with each line's merge key."""
        now = self.last_poll_at or time.time()
        marks = self.differ.marks = []
        kept, keys, _ = split_groups(self.differ.flush(now), marks, shard.index)
        return self.line_encoder.lines(kept, now), keys

    def _replay_changes(self, payload: Path, at: float, shard: Shard | None = None) -> list[Change]:
        origin = str(payload)
        data = payload.read_bytes()
        try:
            snap = self._capture_reader.snapshot(data, at, self.reader.fp, origin)
        except ValueError as exc:
            raise SourceError(str(exc), fix="replay the capture directory from its first file") from exc
        if shard is not None:
            snap = shard.filter(snap)
            if shard.index:  # every shard reads the same text: shard 0 reports its errors
                snap.errors = []
        for msg in snap.errors:
            self.telemetry.error("parse", "replay", msg)
        changes = self.differ.update(snap)
        self.last_poll_at = at
        self.polls += 1
        if self.directory is not None:
            self._publish(changes)
        return changes

    # ------------------------------------------------------------ the shared peer directory
    def _publish(self, changes: list[Change]) -> None:
        assert self.directory is not None
        for c in changes:
            if c.peer is not None and c.peer.endpoint and c.action in ("peer-added", "endpoint-changed"):
                self.directory.note_endpoint(c.peer.public_key, c.peer.endpoint, c.time)
        self.directory.invalidate()

    def peer_infos(self) -> list[PeerInfo]:
        """Every known peer, for :class:`~wgsiem.sources.peer_directory.PeerDirectory`."""
        return [
            PeerInfo(
                interface=name,
                public_key=st.rec.public_key,
                endpoint=st.rec.endpoint,
                allowed_ips=st.rec.allowed_ips,
                latest_handshake=float(st.rec.latest_handshake) or None,
                first_seen=st.first_seen,
            )
            for name, iface in self.differ.ifaces.items()
            if iface.gone_since is None
            for st in iface.peers.values()
        ]

    # ------------------------------------------------------------ views for the local API
    def peers_view(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, iface in self.differ.ifaces.items():
            for st in iface.peers.values():
                r = st.rec
                out.append(
                    {
                        "interface": name,
                        "interface_present": iface.gone_since is None,
                        "public_key": r.public_key,
                        "endpoint": r.endpoint,
                        "allowed_ips": list(r.allowed_ips),
                        "latest_handshake": iso(r.latest_handshake) if r.latest_handshake else None,
                        "rx_bytes": r.rx_bytes,
                        "tx_bytes": r.tx_bytes,
                        "connected": st.session_id is not None,
                        "session_id": st.session_id,
                        "session_start": iso(st.session_start) if st.session_id else None,
                        "first_seen": iso(st.first_seen),
                    }
                )
        return out

    def open_sessions_view(self) -> dict[str, dict[str, Any]]:
        """Session id → its bytes and endpoints so far, for every open session."""
        out: dict[str, dict[str, Any]] = {}
        for iface in self.differ.ifaces.values():
            for st in iface.peers.values():
                if st.session_id is not None:
                    out[st.session_id] = {
                        "rx_bytes": st.session_rx,
                        "tx_bytes": st.session_tx,
                        "endpoints": list(st.session_endpoints),
                        "duration_secs": round(max(0.0, time.time() - st.session_start), 3),
                    }
        return out

    def status(self) -> dict[str, Any]:
        t = self.last_poll
        return {
            "polls": self.polls,
            "last_poll_at": iso(self.last_poll_at) if self.last_poll_at else None,
            "last_poll": {
                "read_secs": round(t.read_secs, 4),
                "diff_secs": round(t.diff_secs, 4),
                "normalize_secs": round(t.emit_secs, 4),
                "interfaces": t.interfaces,
                "peers": t.peers,
                "changes": t.changes,
            },
            "peers": self.differ.peer_count(),
            "open_sessions": self.differ.open_sessions(),
        }
