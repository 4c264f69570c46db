"""Following a text log file across rotation and truncation, with a persisted position (I/O).

The position is the file's identity (device, inode) plus the byte offset after the last complete line
handed out, and that line's number. On every poll:

* new complete lines are read (a partial last line waits for its newline — but a rotated-away file's
  last partial line is handed out, it will never be finished);
* **rotation** (the path now names another inode: ``logrotate`` create mode, or rsyslog reopening) —
  the old file is read to its end through the still-open descriptor, then the new file from offset 0;
* **truncation** (same inode, size below the offset: ``copytruncate``) — read again from 0;
* after a **restart** with a saved position: the same inode continues at the offset; if the file was
  rotated while wgsiem was down, the rotated file (``<path>.1``, ``<path>.0``, ``<path>-*``, not
  compressed) that still has the saved inode is read to its end first.

A file seen for the first time starts at its end (or its start with ``from_start``).
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FilePosition", "FileTail", "TailLine"]

READ_CHUNK = 1 << 20
MAX_BYTES_PER_POLL = 8 << 20  # bounded work per poll and file; the rest comes on the next poll


@dataclass(slots=True)
class FilePosition:
    dev: int
    ino: int
    offset: int
    line: int  # lines before offset (1-based number of the next line is line + 1)

    def to_json(self) -> dict[str, int]:
        return {"dev": self.dev, "ino": self.ino, "offset": self.offset, "line": self.line}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FilePosition:
        return cls(int(d["dev"]), int(d["ino"]), int(d["offset"]), int(d["line"]))


@dataclass(frozen=True, slots=True)
class TailLine:
    text: str
    path: str  # the file it was read from (the rotated name when read after rotation)
    offset: int  # byte offset of the line's start
    line: int  # 1-based line number
    truncated: bool = False  # longer than max_line_bytes: cut


def _count_lines(fd: int, upto: int) -> int:
    n = 0
    pos = 0
    while pos < upto:
        chunk = os.pread(fd, min(READ_CHUNK, upto - pos), pos)
        if not chunk:
            break
        n += chunk.count(b"\n")
        pos += len(chunk)
    return n


class FileTail:
    """One followed file. :meth:`poll` returns the complete lines available now."""

    def __init__(
        self,
        path: str | Path,
        position: FilePosition | None = None,
        *,
        from_start: bool = False,
        max_line_bytes: int = 65536,
    ) -> None:
        self.path = str(path)
        self.position = position
        self.from_start = from_start
        self.max_line_bytes = max_line_bytes
        self.rotations = 0
        self.truncations = 0
        self.long_lines = 0
        self._fd: int | None = None
        self._buf = b""
        self._fresh = False
        self._pending_old: tuple[int, str, FilePosition] | None = None  # rotated file to finish first
        if not self._open():
            self._fresh = True  # created after we started: everything in it is new

    # ------------------------------------------------------------ open / reopen
    def _open(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, PermissionError, NotADirectoryError):
            return False
        st = os.fstat(fd)
        pos = self.position
        if pos is not None and (pos.dev, pos.ino) == (st.st_dev, st.st_ino):
            if st.st_size < pos.offset:
                self.truncations += 1
                pos = FilePosition(st.st_dev, st.st_ino, 0, 0)
        elif pos is not None:
            # rotated while we were away: finish the old file first if it is still there
            old = self._find_rotated(pos)
            if old is not None:
                self._pending_old = old
            pos = FilePosition(st.st_dev, st.st_ino, 0, 0)
        elif self.from_start or self._fresh:
            pos = FilePosition(st.st_dev, st.st_ino, 0, 0)
        else:
            pos = FilePosition(st.st_dev, st.st_ino, st.st_size, _count_lines(fd, st.st_size))
        self._fd, self.position, self._buf, self._fresh = fd, pos, b"", False
        return True

    def _find_rotated(self, pos: FilePosition) -> tuple[int, str, FilePosition] | None:
        for cand in sorted(
            glob.glob(glob.escape(self.path) + ".*") + glob.glob(glob.escape(self.path) + "-*")
        ):
            if cand.endswith((".gz", ".xz", ".bz2", ".zst", ".lz4")):
                continue
            try:
                st = os.stat(cand)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (pos.dev, pos.ino):
                try:
                    fd = os.open(cand, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                except OSError:
                    return None
                start = pos if st.st_size >= pos.offset else FilePosition(pos.dev, pos.ino, 0, 0)
                return fd, cand, FilePosition(start.dev, start.ino, start.offset, start.line)
        return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pending_old is not None:
            os.close(self._pending_old[0])
            self._pending_old = None

    # ------------------------------------------------------------ reading
    def _drain(
        self, fd: int, path: str, pos: FilePosition, buf: bytes, *, final: bool
    ) -> tuple[list[TailLine], bytes]:
        """Read from ``pos.offset + len(buf)`` on; split complete lines; advance ``pos``."""
        out: list[TailLine] = []
        read = 0
        while read < MAX_BYTES_PER_POLL:
            chunk = os.pread(fd, READ_CHUNK, pos.offset + len(buf))
            if not chunk:
                break
            read += len(chunk)
            buf += chunk
            start = 0
            while True:
                nl = buf.find(b"\n", start)
                if nl < 0:
                    break
                out.append(self._line(buf[start:nl], path, pos.offset + start, pos.line + 1))
                pos.line += 1
                start = nl + 1
            pos.offset += start
            buf = buf[start:]
            if len(buf) > self.max_line_bytes:
                # an endless line: hand out what we have as one cut line, skip to its end later
                out.append(self._line(buf, path, pos.offset, pos.line + 1))
                pos.line += 1
                pos.offset += len(buf)
                buf = b""
        if final and buf:
            out.append(self._line(buf, path, pos.offset, pos.line + 1))
            pos.line += 1
            pos.offset += len(buf)
            buf = b""
        return out, buf

    def _line(self, raw: bytes, path: str, offset: int, line: int) -> TailLine:
        cut = len(raw) > self.max_line_bytes
        if cut:
            self.long_lines += 1
            raw = raw[: self.max_line_bytes]
        return TailLine(raw.decode("utf-8", "replace").rstrip("\r"), path, offset, line, cut)

    def poll(self) -> list[TailLine]:
        """Every complete line written since the last poll (rotation and truncation handled)."""
        out: list[TailLine] = []
        if self._fd is None and not self._open():
            return out
        if self._pending_old is not None:
            fd, name, opos = self._pending_old
            lines, _ = self._drain(fd, name, opos, b"", final=True)
            out.extend(lines)
            os.close(fd)
            self._pending_old = None
            self.rotations += 1
        assert self._fd is not None and self.position is not None
        lines, self._buf = self._drain(self._fd, self.path, self.position, self._buf, final=False)
        out.extend(lines)
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        fst = os.fstat(self._fd)
        if st is None or (st.st_dev, st.st_ino) != (fst.st_dev, fst.st_ino):
            if st is None and fst.st_nlink > 0:
                return out  # moved away and not yet replaced... keep reading the old one
            # rotated: finish the old file through our descriptor, then start the new one
            lines, self._buf = self._drain(self._fd, self.path, self.position, self._buf, final=True)
            out.extend(lines)
            os.close(self._fd)
            self._fd = None
            self.rotations += 1
            self.position = None
            self._fresh = True  # whatever appears under the name now is new: read it from its start
            if st is not None and self._open():
                out.extend(self.poll())
        elif fst.st_size < self.position.offset + len(self._buf):
            self.truncations += 1
            self.position = FilePosition(fst.st_dev, fst.st_ino, 0, 0)
            self._buf = b""
            out.extend(self.poll())
        return out

    def __iter__(self) -> Iterator[TailLine]:
        return iter(self.poll())

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
