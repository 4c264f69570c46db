"""The store's document segments: every stored document's NDJSON line, appended once, read by offset.

Why the documents live here and not in DuckDB: a 1.35 KB document costs DuckDB far more to store
(Arrow scan into row storage, zstd at commit, checkpoint) than it costs to compress and append the
line the NDJSON encoder already made. ``events`` keeps an index row per event (the query columns plus
where its document is); the document comes back byte-identical from here.

Layout: a directory beside the database (``<db>.docs/``) of numbered segment files
(``0000000001.ndjson.zst`` …). A segment is a sequence of independent zstd frames of
:data:`FRAME_DOCS` NDJSON lines each — a valid zstd stream, so ``zstdcat`` prints a segment as NDJSON.
A document is found by (segment, frame offset, frame length, offset and length inside the frame):
reading one decompresses one frame (~175 KB, a fraction of a millisecond); :class:`DocReader` keeps
the last frames, since readers mostly want neighbours. Only the newest segment is appended to; a new
one starts when the newest would exceed ``max_bytes`` (a batch is never split). Retention deletes a
segment once no index row points into it.

Measured (``bench/bench_pipeline.py`` documents, one core): zstd level 1 over 128-line frames costs
~1.3-2.4 µs per document and stores ~139 bytes of a 1.36 KB one (9.7×; DuckDB's zstd column held
~390 bytes per event). Plain NDJSON segments would write 10× the bytes, and a page-cache write on this
VM costs 0.4-4.8 µs per 1.36 KB (more than compressing it).

Crash safety (who owns the truth): the DuckDB commit. A batch's bytes are written and flushed to disk
(``fdatasync``) *before* its rows are committed, so a committed row never points to bytes that are not
durable. A crash between the two leaves bytes no row points to: on open, :meth:`SegmentDir.recover`
cuts the newest segment back to the end of its last committed line and removes newer segments.

:class:`MemorySegments` does the same in memory for :meth:`Store.memory` (tests, benchmarks).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from wgsiem.errors import Location, StoreError

__all__ = [
    "FRAME_DOCS",
    "SEGMENT_MAX_BYTES",
    "DocReader",
    "Frames",
    "MemorySegments",
    "SegmentDir",
    "Segments",
    "decompress_segment",
    "encode_frames",
    "frame_content_size",
    "segment_dir_for",
]

log = logging.getLogger(__name__)

SEGMENT_MAX_BYTES = 64 * 1024 * 1024
"""A new segment starts before the newest would grow past this (a batch is never split). 64 MiB is
~50,000 documents: retention frees space in steps of that, and no reader maps huge files."""

FRAME_DOCS = 128
"""Documents per zstd frame: larger frames compress a little better (64: 9.3×, 256: 10.3×) but make a
single-document read decompress more."""

_ZSTD_LEVEL = -1
_CODEC = pa.Codec("zstd", compression_level=_ZSTD_LEVEL)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_NAME = re.compile(r"^(\d{10})\.ndjson\.zst$")
_FILE_MODE = 0o640
_DIR_MODE = 0o750
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


def segment_dir_for(db_path: str | os.PathLike[str]) -> Path:
    """Where the segments of the database at ``db_path`` live."""
    return Path(f"{os.fspath(db_path)}.docs")


@dataclass(frozen=True, slots=True)
class Frames:
    """A batch's documents as zstd frames: the bytes to append and, per document, its frame."""

    data: bytes
    frame_off: pa.Array
    """int64: where each document's frame starts, relative to the start of ``data``."""
    frame_len: pa.Array
    """int32: the compressed length of each document's frame."""
    frame_start: pa.Array
    """int64: where each document's frame starts in the *uncompressed* batch (its offset in the
    frame is its offset in the batch minus this)."""


def encode_frames(data: bytes, starts: Sequence[int], frame_docs: int = FRAME_DOCS) -> Frames:
    """Compress the batch ``data`` (NDJSON lines starting at ``starts``, plus its end) as frames of
    ``frame_docs`` lines (pure)."""
    n = len(starts) - 1
    view = memoryview(data)
    compress = _CODEC.compress
    parts: list[bytes] = []
    offs: list[int] = []
    lens: list[int] = []
    firsts: list[int] = []
    pos = 0
    for k in range(0, n, frame_docs):
        a, b = starts[k], starts[min(k + frame_docs, n)]
        z = compress(view[a:b], asbytes=True)
        parts.append(z)
        count = min(frame_docs, n - k)
        offs += [pos] * count
        lens += [len(z)] * count
        firsts += [a] * count
        pos += len(z)
    return Frames(
        b"".join(parts),
        pa.array(offs, pa.int64()),
        pa.array(lens, pa.int32()),
        pa.array(firsts, pa.int64()),
    )


def _frame_header(frame: bytes | memoryview, pos: int = 0) -> tuple[int, int, bool]:
    """(content size, header length, has checksum) of the zstd frame starting at ``pos``."""
    if bytes(frame[pos : pos + 4]) != _ZSTD_MAGIC or len(frame) < pos + 6:
        raise ValueError(f"no zstd frame at byte {pos}")
    fhd = frame[pos + 4]
    fcs_flag, single = fhd >> 6, (fhd >> 5) & 1
    at = pos + 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 3]
    size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if size == 0:
        raise ValueError(f"zstd frame at byte {pos} states no content size")
    value = int.from_bytes(frame[at : at + size], "little")
    return (value + 256 if size == 2 else value), at + size - pos, bool(fhd & 4)


def frame_content_size(frame: bytes) -> int:
    """The decompressed size a zstd frame header states (the store's frames always state it)."""
    return _frame_header(frame)[0]


def decompress_segment(data: bytes) -> bytes:
    """A whole segment's NDJSON (what ``zstdcat`` prints), walking its frames (pure; ``ValueError``
    if it is not a run of zstd frames). For operators and tests that scan every stored byte."""
    view = memoryview(data)
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        size, header, checksum = _frame_header(view, pos)
        end = pos + header
        while True:  # blocks: 3-byte header (last flag, type, size); an RLE block holds one byte
            if end + 3 > len(data):
                raise ValueError(f"zstd frame at byte {pos} is cut short")
            bh = int.from_bytes(view[end : end + 3], "little")
            end += 3 + (1 if (bh >> 1) & 3 == 1 else bh >> 3)
            if bh & 1:
                break
        end += 4 if checksum else 0
        if end > len(data):
            raise ValueError(f"zstd frame at byte {pos} is cut short")
        try:
            out.append(_CODEC.decompress(view[pos:end], decompressed_size=size, asbytes=True))
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"zstd frame at byte {pos}: {exc}") from exc
        pos = end
    return b"".join(out)


class DocReader:
    """Reads documents out of segments, keeping the last few decompressed frames (thread-safe)."""

    def __init__(self, segments: Segments, cached_frames: int = 8) -> None:
        self.segments = segments
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._max = cached_frames
        self._lock = threading.Lock()

    def read(self, seg: int, frame_off: int, frame_len: int, off: int, length: int) -> bytes:
        key = (seg, frame_off)
        with self._lock:
            raw = self._cache.get(key)
            if raw is not None:
                self._cache.move_to_end(key)
        if raw is None:
            frame = self.segments.read(seg, frame_off, frame_len)
            try:
                raw = _CODEC.decompress(frame, decompressed_size=frame_content_size(frame), asbytes=True)
            except (ValueError, OSError, pa.ArrowException) as exc:
                raise StoreError(
                    f"a stored document's frame at byte {frame_off} is corrupt: {exc}",
                    location=Location(f"segment {seg}"),
                    fix="restore the store's document segments from a backup",
                ) from exc
            with self._lock:
                self._cache[key] = raw
                while len(self._cache) > self._max:
                    self._cache.popitem(last=False)
        return raw[off : off + length]

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


class Segments(Protocol):
    """What :class:`~.store.Store` needs of a segment store."""

    def append(self, data: bytes) -> tuple[int, int]:
        """Write ``data`` at the end of the newest segment (rotating first if it would not fit):
        ``(segment, offset)`` of its first byte. Not yet durable: call :meth:`sync`."""
        ...

    def sync(self) -> None: ...

    def rewind(self, segment: int, offset: int) -> None:
        """Drop everything from ``offset`` of ``segment`` on (a batch whose commit failed)."""
        ...

    def read(self, segment: int, offset: int, length: int) -> bytes: ...

    def recover(self, newest: int | None, end: int) -> None:
        """On open: ``newest`` is the highest segment a committed row points into, ``end`` the end of
        its last committed line; bytes after it (and newer segments) belong to no committed row."""
        ...

    def remove_except(self, referenced: set[int]) -> list[int]:
        """Delete segments no row points into (never the newest); the ids deleted."""
        ...

    def reader(self) -> Segments:
        """A handle another thread may read through (the same object: reads are thread-safe)."""
        ...

    def close(self) -> None: ...


class SegmentDir:
    """Segments as files in a directory (see the module docstring)."""

    def __init__(
        self, directory: Path, *, max_bytes: int = SEGMENT_MAX_BYTES, read_only: bool = False
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.read_only = read_only
        self._fd: int | None = None  # the newest segment, open for appending
        self._active = 0
        self._size = 0
        self._read_fds: dict[int, int] = {}
        self._lock = threading.Lock()  # the read fd cache: the web API's thread reads too
        if not read_only:
            try:
                directory.mkdir(mode=_DIR_MODE, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the store's document directory: {exc.strerror}",
                    location=Location(str(directory)),
                    fix="give the wgsiem user write access to the store's directory",
                ) from exc
        ids = self.ids()
        self._active = ids[-1] if ids else 1

    def path(self, segment: int) -> Path:
        return self.directory / f"{segment:010d}.ndjson.zst"

    def ids(self) -> list[int]:
        """Segment ids present, oldest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for m in map(_NAME.match, names) if m)

    # ---- writing -------------------------------------------------------------------------------------

    def _open_active(self) -> int:
        if self._fd is None:
            path = self.path(self._active)
            created = not path.exists()
            self._fd = os.open(path, _OPEN_FLAGS, _FILE_MODE)
            self._size = os.fstat(self._fd).st_size
            if created:
                self._sync_dir()  # the new name must survive a crash as much as its bytes
        return self._fd

    def append(self, data: bytes) -> tuple[int, int]:
        fd = self._open_active()
        if self._size and self._size + len(data) > self.max_bytes:
            os.close(fd)
            self._fd = None
            self._active += 1
            fd = self._open_active()
        start = self._size
        view = memoryview(data)
        try:
            while view:
                n = os.write(fd, view)
                view = view[n:]
        except OSError as exc:
            self.rewind(self._active, start)
            raise StoreError(
                f"cannot write documents: {exc.strerror}", location=Location(str(self.path(self._active)))
            ) from exc
        self._size = start + len(data)
        return self._active, start

    def sync(self) -> None:
        if self._fd is not None:
            os.fdatasync(self._fd)

    def rewind(self, segment: int, offset: int) -> None:
        if segment != self._active or self._fd is None:
            return
        os.ftruncate(self._fd, offset)
        self._size = offset

    def _sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def recover(self, newest: int | None, end: int) -> None:
        for seg in self.ids():
            if newest is None or seg > newest:
                log.warning("store: removing document segment %s written by an uncommitted batch", seg)
                self.path(seg).unlink()
            elif seg == newest:
                path = self.path(seg)
                size = path.stat().st_size
                if size > end:
                    log.warning(
                        "store: cutting %d bytes an uncommitted batch left at the end of %s", size - end, path
                    )
                    os.truncate(path, end)
        if newest is None:
            self._active = max([0, *self.ids()]) + 1
            return
        path = self.path(newest)
        size = path.stat().st_size if path.exists() else -1
        if size < end:  # lost (restored from an older copy?): never write where stored rows point
            log.error("store: %s is missing or shorter than its stored events say (%d < %d)", path, size, end)
            self._active = newest + 1
        else:
            self._active = newest

    def remove_except(self, referenced: set[int]) -> list[int]:
        gone = [s for s in self.ids() if s not in referenced and s < self._active]
        for seg in gone:
            with self._lock:
                fd = self._read_fds.pop(seg, None)
            if fd is not None:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                self.path(seg).unlink()
        return gone

    # ---- reading -------------------------------------------------------------------------------------

    def read(self, segment: int, offset: int, length: int) -> bytes:
        try:
            with self._lock:  # retention may close a segment's fd meanwhile
                fd = self._read_fds.get(segment)
                if fd is None:
                    fd = os.open(self.path(segment), os.O_RDONLY | os.O_CLOEXEC)
                    self._read_fds[segment] = fd
                data = os.pread(fd, length, offset)
        except OSError as exc:
            raise StoreError(
                f"cannot read a stored document: {exc.strerror}",
                location=Location(str(self.path(segment))),
                fix="the store's document segments were moved or deleted; restore them from a backup",
            ) from exc
        if len(data) != length:
            raise StoreError(
                f"a stored document is cut short at byte {offset + len(data)}",
                location=Location(str(self.path(segment))),
                fix="the segment lost its end (restored from an older copy?); restore it from a backup",
            )
        return data

    def reader(self) -> SegmentDir:
        return self  # reads are thread-safe (the lock); the writing handle closes the files

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        with self._lock:
            fds, self._read_fds = list(self._read_fds.values()), {}
        for fd in fds:
            os.close(fd)


class MemorySegments:
    """Segments as an in-memory buffer (an in-memory store): one segment, nothing is durable."""

    def __init__(self) -> None:
        self._data = bytearray()

    def append(self, data: bytes) -> tuple[int, int]:
        start = len(self._data)
        self._data += data
        return 1, start

    def sync(self) -> None:
        return None

    def rewind(self, segment: int, offset: int) -> None:
        del self._data[offset:]

    def read(self, segment: int, offset: int, length: int) -> bytes:
        return bytes(self._data[offset : offset + length])

    def recover(self, newest: int | None, end: int) -> None:
        return None

    def remove_except(self, referenced: set[int]) -> list[int]:
        return []

    def reader(self) -> MemorySegments:
        return self

    def close(self) -> None:
        return None
