"""The outbox's disk queue: segment files, a read cursor, an acknowledged position (I/O, no policy).

Layout of ``<directory>`` (mode 0700, files 0600)::

    00000000000000000001.seg   frames (see :mod:`.segment`), named by the seq of their first record
    00000000000000052001.seg   the active segment: a restart never appends to an old one
    acked.json                 {"acked_seq": N}: every record with seq <= N is accounted for
    parked.ndjson              records the destination refused for good, with the reason

Why these choices:

* **Space is freed a whole segment at a time** (unlink), never by rewriting: an acknowledged prefix
  costs one small atomic file write, not a copy.
* **The acknowledged position is a single seq**, written with :func:`~wgsiem.private_file.write_private`
  (atomic rename) but *without* fsync: losing the newest acknowledgement in a power cut only means
  re-sending (at-least-once, deduplicated by ``event.id``), never losing.
* **Records are read back from memory when possible.** What was appended in this process is kept in a
  bounded cache keyed by its position; the delivery loop takes it from there without decoding JSON.
  After a restart, or when the destination fell behind by more than the cache holds, records are read
  from disk (and decoded) in order.
* **Damage is skipped, reported and accounted for**: a restart scans every segment (CRC only, no JSON)
  and reports each damaged region with its file and offset; the intact records around it are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from wgsiem.errors import Location, ParseError, WgsiemError
from wgsiem.private_file import write_private

from .contract import Pending
from .segment import HEADER, decode_payload, encode_frame, payload_doc_json, scan

__all__ = ["DamageReport", "OutboxIOError", "SegmentQueue", "Stored"]

_SUFFIX = ".seg"
_ACK_FILE = "acked.json"
_FILE_MODE = 0o600
_READ_CHUNK = 1024 * 1024


class OutboxIOError(WgsiemError):
    """The outbox directory or one of its files could not be created, read or written."""


@dataclass(frozen=True, slots=True)
class DamageReport:
    """A damaged region found in a segment: where, how long, why, how many records it cost if known."""

    file: str
    offset: int
    length: int
    reason: str
    torn: bool
    lost_records: int | None

    def describe(self) -> str:
        what = "torn tail" if self.torn else "corrupt region"
        lost = f", {self.lost_records} record(s) lost" if self.lost_records else ""
        return f"outbox {what} ({self.reason}, {self.length} bytes{lost}) in {self.file}@{self.offset}"


@dataclass(frozen=True, slots=True)
class Stored:
    """A record handed to the delivery loop, with where it lives (to acknowledge it)."""

    pending: Pending
    segment: int
    end: int
    written_ms: int


@dataclass(slots=True)
class _Segment:
    key: int
    path: Path
    size: int = 0
    count: int = 0
    remaining: int = 0
    """Records not yet accounted for (delivered, parked or dropped)."""
    inflight: int = 0
    """Records handed to the delivery loop and not yet acknowledged."""
    acked_end: int = 0
    """Offset after the last acknowledged record (records are acknowledged in order)."""
    sealed: bool = False
    known_damage: set[int] = field(default_factory=set)


def _pread(path: Path, length: int, offset: int) -> bytes:
    """Read with a descriptor of its own: a segment may be dropped while a read is in flight."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


class SegmentQueue:
    """A FIFO of records on disk; one writer and one reader, both in the event loop's thread."""

    def __init__(
        self, directory: Path, *, max_bytes: int, segment_max_bytes: int, fsync: bool, cache_max: int
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_max_bytes = max(64 * 1024, min(segment_max_bytes, max_bytes // 8))
        self.fsync = fsync
        self.cache_max = cache_max
        self._segs: OrderedDict[int, _Segment] = OrderedDict()
        self._fds: dict[int, int] = {}
        self._cache: dict[tuple[int, int], Stored] = {}
        self.acked_seq = 0
        self.next_seq = 1
        self.queued = 0
        """Records on disk not yet accounted for (in flight included)."""
        self.disk_bytes = 0
        self.carried_over = 0
        self.lost_at_runtime = 0
        """Records appended in this process and then lost to damage found when reading them back."""
        self.damage: list[DamageReport] = []
        self._cur_key = 0
        self._cur_off = 0
        self._active: _Segment | None = None

    # ---- open / recover ---------------------------------------------------------------------------

    def open(self) -> list[DamageReport]:
        """Create or recover the directory; returns the damage found (also kept in :attr:`damage`)."""
        d = self.directory
        try:
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(d, 0o700)
            self.acked_seq = self._read_ack()
            last_seq = self.acked_seq
            for path in sorted(d.glob("*" + _SUFFIX)):
                try:
                    key = int(path.stem)
                except ValueError:
                    continue
                os.chmod(path, _FILE_MODE)
                data = path.read_bytes()
                frames, damage = scan(data)
                seg = _Segment(key, path, size=len(data), count=len(frames), sealed=True)
                prev = last_seq
                for fr in frames:
                    if fr.seq > self.acked_seq:
                        seg.remaining += 1
                    last_seq = max(last_seq, fr.seq)
                for dmg in damage:
                    after = next((f.seq for f in frames if f.offset >= dmg.offset + dmg.length), None)
                    before = max((f.seq for f in frames if f.end <= dmg.offset), default=prev)
                    lost = None if dmg.torn or after is None else max(0, after - before - 1)
                    seg.known_damage.add(dmg.offset)
                    self.damage.append(
                        DamageReport(str(path), dmg.offset, dmg.length, dmg.reason, dmg.torn, lost)
                    )
                if seg.remaining == 0:
                    path.unlink()
                    continue
                self._segs[key] = seg
                self.disk_bytes += seg.size
                self.queued += seg.remaining
            self.carried_over = self.queued
            self.next_seq = last_seq + 1
            self._cur_key = next(iter(self._segs), 0)
            self._new_active()
        except OSError as exc:
            raise OutboxIOError(
                f"cannot open the outbox: {exc.strerror}",
                location=Location(str(exc.filename or d)),
                fix="check that the state directory is writable by the wgsiem user",
            ) from exc
        return list(self.damage)

    def _read_ack(self) -> int:
        path = self.directory / _ACK_FILE
        try:
            obj = orjson.loads(path.read_bytes())
            return int(obj["acked_seq"])
        except FileNotFoundError:
            return 0
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            # an unreadable acknowledgement means "nothing acknowledged": re-send, never lose
            return 0

    def _new_active(self) -> None:
        if self._active is not None:
            self._active.sealed = True
        key = self.next_seq
        path = self.directory / f"{key:020d}{_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, _FILE_MODE)
        os.fchmod(fd, _FILE_MODE)
        self._fds[key] = fd
        seg = _Segment(key, path)
        self._segs[key] = seg
        self._active = seg
        if not self._cur_key or self._cur_key not in self._segs:
            self._cur_key = key

    # ---- write ------------------------------------------------------------------------------------

    @staticmethod
    def frame_size(payload: bytes) -> int:
        return HEADER + len(payload)

    def free_bytes(self) -> int:
        return self.max_bytes - self.disk_bytes

    async def append(self, items: list[tuple[str, dict[str, Any], bytes]]) -> int:
        """Append ``(event_id, doc, payload)`` records as one write (+ fsync by policy); returns bytes."""
        active = self._active
        assert active is not None
        if active.size >= self.segment_max_bytes:
            self._new_active()
            active = self._active
            assert active is not None
        now_ms = int(time.time() * 1000)
        seq = self.next_seq
        frames: list[bytes] = []
        stored: list[Stored] = []
        off = active.size
        for eid, doc, payload in items:
            fr = encode_frame(seq, now_ms, payload)
            frames.append(fr)
            off += len(fr)
            stored.append(Stored(Pending(seq, eid, doc, payload_doc_json(payload)), active.key, off, now_ms))
            seq += 1
        blob = b"".join(frames)
        fd = self._fds[active.key]
        try:
            await asyncio.to_thread(self._write_blob, fd, blob, active.size)
        except OSError as exc:
            raise OutboxIOError(
                f"cannot append to the outbox: {exc.strerror}",
                location=Location(str(active.path), offset=active.size),
                fix="free disk space or lower outbox.max_bytes",
            ) from exc
        start = active.size
        active.size += len(blob)
        active.count += len(items)
        active.remaining += len(items)
        self.disk_bytes += len(blob)
        self.queued += len(items)
        self.next_seq = seq
        cache = self._cache
        prev_end = start
        for s in stored:
            if len(cache) >= self.cache_max:
                break
            cache[(active.key, prev_end)] = s
            prev_end = s.end
        return len(blob)

    def _write_blob(self, fd: int, blob: bytes, size_before: int) -> None:
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
        except OSError:
            # never leave half a batch behind: the pipeline retries the whole batch
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size_before)
            raise

    async def sync(self) -> None:
        if self._active is not None:
            await asyncio.to_thread(os.fsync, self._fds[self._active.key])

    # ---- read -------------------------------------------------------------------------------------

    async def read(self, n: int) -> list[Stored]:
        """Up to ``n`` next records in order (from the cache, else from disk); marks them in flight."""
        out: list[Stored] = []
        while len(out) < n:
            seg = self._segs.get(self._cur_key)
            if seg is None:
                nxt = next((k for k in self._segs if k > self._cur_key), None)
                if nxt is None:
                    break
                self._cur_key, self._cur_off = nxt, 0
                continue
            if self._cur_off >= seg.size:
                if not seg.sealed:
                    break
                self._exhausted(seg)
                nxt = next((k for k in self._segs if k > seg.key), None)
                if nxt is None:
                    break
                self._cur_key, self._cur_off = nxt, 0
                continue
            hit = self._cache.pop((seg.key, self._cur_off), None)
            if hit is not None:
                self._cur_off = hit.end
                seg.inflight += 1
                out.append(hit)
                continue
            out.extend(await self._read_disk(seg, n - len(out)))
        return out

    async def _read_disk(self, seg: _Segment, want: int) -> list[Stored]:
        start = self._cur_off
        chunk = _READ_CHUNK
        while True:
            length = min(seg.size - start, chunk)
            try:
                data = await asyncio.to_thread(_pread, seg.path, length, start)
            except FileNotFoundError:
                return []  # dropped (drop_oldest) meanwhile: the caller moves on
            if seg.key not in self._segs or self._cur_off != start:
                return []
            frames, damage = scan(data)
            if frames or start + length >= seg.size or len(data) < length:
                break
            chunk *= 4  # a frame larger than the chunk: read more
        out: list[Stored] = []
        end = start
        for fr in frames:
            if len(out) >= want:
                break
            end = start + fr.end
            cached = self._cache.pop((seg.key, start + fr.offset), None)
            if fr.seq <= self.acked_seq:
                continue
            if cached is not None:
                out.append(cached)
                continue
            try:
                eid, doc = decode_payload(fr.payload, file=str(seg.path), offset=start + fr.offset)
            except ParseError as exc:
                self.damage.append(
                    DamageReport(str(seg.path), start + fr.offset, fr.end - fr.offset, exc.what, False, 1)
                )
                continue
            raw = payload_doc_json(fr.payload)
            out.append(Stored(Pending(fr.seq, eid, doc, raw), seg.key, end, fr.written_ms))
        for dmg in damage:
            at = start + dmg.offset
            if at >= end and (out or frames):
                continue  # beyond what this read consumed: seen again by the next read
            if dmg.torn and start + len(data) < seg.size:
                continue
            if at not in seg.known_damage:
                seg.known_damage.add(at)
                self.damage.append(DamageReport(str(seg.path), at, dmg.length, dmg.reason, dmg.torn, None))
            end = max(end, at + dmg.length)
        if end == start:  # nothing intact was consumed: skip the damage seen
            end = seg.size
        self._cur_off = end
        seg.inflight += len(out)
        return out

    def _exhausted(self, seg: _Segment) -> None:
        """The reader passed the end of a sealed segment: what it never handed out was lost to damage."""
        lost = seg.remaining - seg.inflight
        if lost > 0:
            seg.remaining -= lost
            self.queued -= lost
            self.lost_at_runtime += lost
        self._maybe_delete(seg)

    # ---- acknowledge / drop -----------------------------------------------------------------------

    def ack(self, records: list[Stored]) -> None:
        """Every record of ``records`` is accounted for; frees fully accounted segments."""
        if not records:
            return
        touched: dict[int, int] = {}
        ends: dict[int, int] = {}
        for r in records:
            touched[r.segment] = touched.get(r.segment, 0) + 1
            ends[r.segment] = r.end
        for key, k in touched.items():
            seg = self._segs.get(key)
            if seg is None:  # dropped (drop_oldest) while in flight: already counted then
                continue
            self.queued -= k
            seg.acked_end = max(seg.acked_end, ends[key])
            seg.inflight -= k
            seg.remaining -= k
            self._maybe_delete(seg)
        self.acked_seq = max(self.acked_seq, records[-1].pending.seq)
        write_private(self.directory / _ACK_FILE, orjson.dumps({"acked_seq": self.acked_seq}), fsync=False)

    def _maybe_delete(self, seg: _Segment) -> None:
        if seg.sealed and seg.remaining <= 0 and seg.inflight <= 0:
            self._remove(seg)

    def _remove(self, seg: _Segment) -> None:
        self._segs.pop(seg.key, None)
        fd = self._fds.pop(seg.key, None)
        if fd is not None:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            seg.path.unlink()
        self.disk_bytes -= seg.size
        if self._cache:
            for k in [k for k in self._cache if k[0] == seg.key]:
                del self._cache[k]

    def release_space(self) -> None:
        """Seal and remove the active segment if everything in it is accounted for (frees its bytes)."""
        active = self._active
        if active is not None and active.size and active.remaining == 0 and active.inflight == 0:
            self._new_active()
            self._remove(active)

    def drop_oldest(self, need: int) -> int:
        """Remove the oldest segments until ``need`` bytes fit; returns the undelivered records dropped."""
        dropped = 0
        while self.free_bytes() < need and self._segs:
            oldest = next(iter(self._segs.values()))
            if oldest is self._active:
                if not oldest.size:
                    break
                self._new_active()
            lost = oldest.remaining  # in-flight records too: the delivery loop abandons them
            dropped += lost
            self.queued -= lost
            self._remove(oldest)
        return dropped

    # ---- facts ------------------------------------------------------------------------------------

    def holds(self, record: Stored) -> bool:
        """Whether ``record``'s segment still exists (drop_oldest may have discarded it in flight)."""
        return record.segment in self._segs

    def head_written_ms(self) -> int | None:
        """When the next record to read was written (from the cache; ``None`` if unknown or empty)."""
        hit = self._cache.get((self._cur_key, self._cur_off))
        return hit.written_ms if hit is not None else None

    @property
    def queued_bytes(self) -> int:
        """Bytes of records not yet acknowledged (approximate right after a restart)."""
        return sum(s.size - s.acked_end for s in self._segs.values())

    @property
    def segments(self) -> int:
        return len(self._segs)

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        self._cache.clear()
