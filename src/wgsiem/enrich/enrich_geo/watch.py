"""Notice that a file on disk was replaced or rewritten, cheaply enough to ask on every event.

``os.stat`` runs at most once per ``interval_secs``; between checks the caller compares one
``time.monotonic()`` reading. A change is a different (inode, size, mtime) — what an atomic rename
(``geoipupdate``, ``mv new old``) and an in-place rewrite both produce. The assets transform uses the
same watch for its inventory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["FileWatch", "Stamp"]

Stamp = tuple[int, int, int, int]
"""(device, inode, size, mtime_ns) of a file; ``(0, 0, -1, 0)`` while it does not exist."""

MISSING: Stamp = (0, 0, -1, 0)


def stamp(path: Path) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return MISSING
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class FileWatch:
    """Tells when ``path`` differs from the version last :meth:`accept`-ed."""

    __slots__ = ("_next", "interval_secs", "path", "seen")

    def __init__(self, path: Path, interval_secs: float) -> None:
        self.path = path
        self.interval_secs = interval_secs
        self.seen: Stamp = stamp(path)
        self._next = time.monotonic() + interval_secs

    def changed(self, now: float) -> Stamp | None:
        """The new stamp if the file changed since the last accepted version, else ``None``."""
        self._next = now + self.interval_secs
        current = stamp(self.path)
        return None if current == self.seen else current

    def accept(self, current: Stamp) -> None:
        """Record ``current`` as handled (loaded, or failed and reported once)."""
        self.seen = current
