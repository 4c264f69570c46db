"""Follow one log file like ``tail -F``: new lines, rotation (rename + new file), truncation (copytruncate).

The position is (device, inode, byte offset, lines consumed, a hash of the file's first bytes). It is
the offset just after the last *complete* line handed out, so a half-written line is read again in
full after a restart. On start with a saved position:

* same file (device, inode, head hash) and at least ``offset`` bytes long → resume there;
* the file was rotated while wgsiem was down → the rotated file (a sibling with the saved inode, e.g.
  ``wg0.log.1``) is finished first, then the new one is read from its start;
* truncated or replaced and the old one is gone → the new file is read from its start
  (:attr:`FileFollower.resets` counts it).

While running, at end of file it checks the path: another inode means rotation (the rest of the old
file was already read: switch), a smaller size means truncation (start again at 0).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["FileFollower", "Position"]

HEAD_BYTES = 256


@dataclass(slots=True)
class Position:
    dev: int
    ino: int
    offset: int
    line: int  # complete lines consumed before ``offset``
    head: str  # sha256 (hex, 16 chars) of the file's first min(HEAD_BYTES, offset) bytes

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Position:
        return cls(int(d["dev"]), int(d["ino"]), int(d["offset"]), int(d["line"]), str(d["head"]))


def _head_hash(fd: int, upto: int) -> str:
    data = os.pread(fd, min(HEAD_BYTES, upto), 0)
    return hashlib.sha256(data).hexdigest()[:16]


class FileFollower:
    """Hands out complete lines of ``path`` as ``(line_number, bytes_without_newline)``."""

    def __init__(
        self,
        path: Path,
        *,
        position: Position | None = None,
        from_start: bool = True,
        read_max_bytes: int = 1 << 20,
        max_line_bytes: int = 65536,
    ) -> None:
        self.path = Path(path)
        self.read_max_bytes = read_max_bytes
        self.max_line_bytes = max_line_bytes
        self._fd: int | None = None
        self._st: os.stat_result | None = None
        self._offset = 0  # of the next byte to read
        self._line = 0
        self._buf = b""
        self._skipping = False  # inside an over-long line, until its newline
        self._saved = position
        self._from_start = from_start
        self.resets = 0  # truncations / replaced files seen
        self.rotations = 0
        self.too_long = 0

    # ------------------------------------------------------------ open / position
    def _open(self, path: Path) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, PermissionError, IsADirectoryError):
            return False
        self._close()
        self._fd, self._st = fd, os.fstat(fd)
        self._offset, self._line, self._buf, self._skipping = 0, 0, b"", False
        return True

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None

    def _first_open(self) -> bool:
        """Open for the first time: resume a saved position, or start at the end (``from_start``
        false) of a file that exists **now**; a file that appears later is new and read from its start."""
        saved, self._saved = self._saved, None
        at_end, self._from_start = not self._from_start, True
        if saved is not None:
            if self._open(self.path) and self._matches(saved):
                self._offset, self._line = saved.offset, saved.line
                return True
            rotated = self._find_rotated(saved)
            if rotated is not None and self._open(rotated) and self._matches(saved):
                self._offset, self._line = saved.offset, saved.line
                self.rotations += 1
                return True
            self.resets += 1
            return self._open(self.path)
        if not self._open(self.path):
            return False
        if at_end:
            self._skip_to_end()
        return True

    def _matches(self, saved: Position) -> bool:
        assert self._fd is not None and self._st is not None
        st = self._st
        return (
            (st.st_dev, st.st_ino) == (saved.dev, saved.ino)
            and st.st_size >= saved.offset
            and _head_hash(self._fd, saved.offset) == saved.head
        )

    def _find_rotated(self, saved: Position) -> Path | None:
        try:
            siblings = list(self.path.parent.iterdir())
        except OSError:
            return None
        for p in sorted(siblings):
            if p.name.startswith(self.path.name) and p != self.path:
                try:
                    st = p.stat()
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) == (saved.dev, saved.ino):
                    return p
        return None

    def _skip_to_end(self) -> None:
        """Start at the end, counting the lines skipped so line numbers stay those of the file."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        lines, pos = 0, 0
        while pos < size:
            chunk = os.pread(self._fd, min(1 << 20, size - pos), pos)
            if not chunk:
                break
            lines += chunk.count(b"\n")
            pos += len(chunk)
        last_nl = pos
        if pos and os.pread(self._fd, 1, pos - 1) != b"\n":
            # a trailing partial line is read when it completes
            start = max(0, pos - self.max_line_bytes)
            tail = os.pread(self._fd, pos - start, start)
            idx = tail.rfind(b"\n")
            last_nl = start + idx + 1 if idx >= 0 else start
        self._offset, self._line = last_nl, lines

    def position(self) -> Position | None:
        """Where a restart should continue (after the last complete line handed out)."""
        if self._fd is None or self._st is None:
            return self._saved
        consumed = self._offset - len(self._buf)
        return Position(
            self._st.st_dev,
            self._st.st_ino,
            consumed,
            self._line,
            _head_hash(self._fd, consumed),
        )

    @property
    def current_path(self) -> Path:
        return self.path

    # ------------------------------------------------------------ reading
    def read(self) -> tuple[list[tuple[int, bytes]], bool]:
        """Lines available now and whether more are waiting (the read stopped at ``read_max_bytes``)."""
        if self._fd is None and not self._first_open():
            return [], False
        assert self._fd is not None
        out: list[tuple[int, bytes]] = []
        data = os.pread(self._fd, self.read_max_bytes, self._offset)
        if data:
            self._offset += len(data)
            self._split(data, out)
            return out, len(data) == self.read_max_bytes
        # at end of file: rotated, truncated, or just nothing new
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return out, False  # renamed away, new one not there yet: keep the old one open
        assert self._st is not None
        if (st.st_dev, st.st_ino) != (self._st.st_dev, self._st.st_ino):
            if self._buf:  # the old file ended without a newline
                self._emit(self._buf, out)
                self._buf = b""
            if self._open(self.path):
                self.rotations += 1
                return out, True
            return out, False
        if st.st_size < self._offset:
            self.resets += 1
            self._offset, self._line, self._buf, self._skipping = 0, 0, b"", False
            return out, True
        self._st = st
        return out, False

    def _split(self, data: bytes, out: list[tuple[int, bytes]]) -> None:
        buf = self._buf + data if self._buf else data
        parts = buf.split(b"\n")
        rest = parts.pop()
        if self._skipping and parts:
            parts.pop(0)  # the end of an over-long line whose head was already handed out
            self._skipping = False
            self._line += 1
        n = self._line
        limit = self.max_line_bytes
        for part in parts:
            n += 1
            if len(part) > limit:
                self.too_long += 1
                part = part[:limit]
            out.append((n, part[:-1] if part.endswith(b"\r") else part))
        self._line = n
        if self._skipping:
            rest = b""
        elif len(rest) > self.max_line_bytes:
            self.too_long += 1
            self._emit(rest[: self.max_line_bytes], out, count=False)
            self._skipping = True
            rest = b""
        self._buf = rest

    def _emit(self, line: bytes, out: list[tuple[int, bytes]], *, count: bool = True) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if count:
            self._line += 1
            out.append((self._line, line))
        else:  # the cut head of an over-long line: numbered with the line it belongs to
            out.append((self._line + 1, line))

    def close(self) -> None:
        self._close()
