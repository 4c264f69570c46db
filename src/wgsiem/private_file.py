"""Files only wgsiem may read: source state, positions, captures.

Everything a source persists (positions, per-peer state, captures) is written the same way: to a
temporary file in the same directory, created 0600 *and* chmod-ed 0600 (a stale temporary left with
wider bits would otherwise keep them), flushed and fsync-ed, then renamed over the target — a crash
leaves the old version or the new one, never half of one, and never a readable one.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, data: bytes, *, fsync: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
