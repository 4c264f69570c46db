"""MaxMind DB files (GeoIP2/GeoLite2 City, Country, ASN, Anonymous-IP): opened, checked, re-opened.

Opened with ``maxminddb``'s C extension over ``mmap`` when it is installed (the fast path), otherwise
its pure-Python reader. A new version is expected to arrive the way ``geoipupdate`` writes it — a new
file renamed over the old — so a reader keeps its mapping of the old inode until the swap is noticed;
an in-place rewrite is noticed too but is not atomic, so a lookup during it may fail and is counted.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

import maxminddb
import maxminddb.errors

from wgsiem.errors import ConfigError, Location

from .watch import FileWatch, Stamp, stamp

__all__ = ["KINDS", "DatabaseLookupError", "MaxmindDatabase", "open_database"]

log = logging.getLogger(__name__)

KINDS: Final[dict[str, tuple[str, ...]]] = {
    # kind → substrings one of which the file's metadata database_type must contain
    "city": ("City", "Enterprise"),
    "country": ("Country", "City", "Enterprise"),
    "asn": ("ASN", "ISP"),
    "anonymous_ip": ("Anonymous-IP", "Anonymous"),
}
_CONFIG_KEY = {
    "city": "city_db_path",
    "country": "country_db_path",
    "asn": "asn_db_path",
    "anonymous_ip": "anonymous_ip_db_path",
}


class DatabaseLookupError(Exception):
    """A lookup in an opened database failed (the file is damaged); counted, the event goes on."""


def open_database(path: Path, kind: str) -> Any:
    """A ``maxminddb`` reader for ``path``, or a :class:`ConfigError` that names the file and the fix."""
    key = _CONFIG_KEY[kind]
    if not path.exists():
        raise ConfigError(
            f"enrich_geo: {kind} database not found",
            location=Location(str(path)),
            fix=f"install it there (MaxMind's geoipupdate writes GeoLite2/GeoIP2 .mmdb files) or remove "
            f"{key} from the transform's config",
        )
    try:
        reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    except (maxminddb.errors.InvalidDatabaseError, ValueError, OSError) as exc:
        raise ConfigError(
            f"enrich_geo: {kind} database is not a valid MaxMind DB ({exc})",
            location=Location(str(path)),
            fix="download it again (a partial download or a .tar.gz instead of the .mmdb inside it is the "
            f"usual cause) or remove {key} from the config",
        ) from exc
    db_type = str(reader.metadata().database_type)
    if not any(t in db_type for t in KINDS[kind]):
        reader.close()
        raise ConfigError(
            f"enrich_geo: {path.name} is a {db_type!r} database, not a {kind} database",
            location=Location(str(path)),
            fix=f"set it under the key for its kind ({', '.join(_CONFIG_KEY.values())})",
        )
    return reader


class MaxmindDatabase:
    """One database file, re-opened when it changes on disk (checked every ``interval_secs`` at most).

    A new version that is missing or corrupt is reported once (``reload_errors``, ``last_error``) and
    the last good version stays in use, as the transform contract asks.
    """

    def __init__(self, kind: str, path: Path, interval_secs: float) -> None:
        self.kind = kind
        self.path = path
        self.reader = open_database(path, kind)
        self.database_type = str(self.reader.metadata().database_type)
        self.build_epoch = int(self.reader.metadata().build_epoch)
        self.watch = FileWatch(path, interval_secs)
        self._size = max(self.watch.seen[2], 0)
        self.reloads = 0
        self.reload_errors = 0
        self.last_error: str | None = None

    def get(self, ip: str) -> dict[str, Any] | None:
        try:
            rec = self.reader.get(ip)
        except ValueError:
            raise
        except Exception as exc:  # InvalidDatabaseError, or an OSError from a damaged mapping
            raise DatabaseLookupError(f"{self.path}: {exc}") from exc
        return rec if isinstance(rec, dict) else None

    def maybe_reload(self, now: float) -> bool:
        """Re-open the file if it changed; ``True`` when a new version is now in use."""
        current = self.watch.changed(now)
        if current is None:
            return False
        return self.reload(current)

    def reload(self, current: Stamp | None = None) -> bool:
        current = current if current is not None else stamp(self.path)
        self.watch.accept(current)
        try:
            reader = open_database(self.path, self.kind)
        except ConfigError as exc:
            self.reload_errors += 1
            self.last_error = exc.render()
            log.warning("keeping the loaded %s database: %s", self.kind, exc.render())
            return False
        old, self.reader = self.reader, reader
        self._size = max(current[2], 0)
        self.database_type = str(reader.metadata().database_type)
        self.build_epoch = int(reader.metadata().build_epoch)
        self.reloads += 1
        old.close()
        log.info("reloaded %s database %s", self.kind, self.path)
        return True

    def size_bytes(self) -> int:
        """Size of the version in use (what the reader maps; the kernel pages it in as lookups touch it)."""
        return self._size

    def status(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "database_type": self.database_type,
            "build_epoch": self.build_epoch,
            "reloads": self.reloads,
            "reload_errors": self.reload_errors,
            "last_error": self.last_error,
        }

    def close(self) -> None:
        self.reader.close()
