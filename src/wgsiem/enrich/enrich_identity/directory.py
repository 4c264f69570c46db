"""The merged identity table: inventory over LDAP over config comments, field by field.

Each source is kept apart and the merged table (a plain dict, swapped whole) is rebuilt when one of
them changes, so a lookup on the hot path is one dict access and a reader never sees half a reload.
Files are checked at most every ``reload_check_interval_secs`` (one ``stat`` per file); LDAP is read
in a background thread every ``refresh_interval_secs``. A reload that fails keeps the last good
version of that source and is counted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wgsiem.errors import ConfigError, Location, ParseError, WgsiemError

from .config import EnrichIdentityConfig
from .config_comments import expand, read_configs
from .inventory import Identity, parse_inventory
from .ldap_directory import fetch_identities

__all__ = ["IdentityDirectory", "load_inventory"]

log = logging.getLogger(__name__)

Stamp = tuple[int, int, int, int]
Report = Callable[[str, str, str], None]  # (error type, stage, message)


def _stamp(path: Path) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, -1, 0)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def load_inventory(path: Path) -> tuple[list[Identity], list[WgsiemError]]:
    """Read and parse the inventory; a file that cannot be read or parsed at all raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "enrich_identity: inventory not found",
            location=Location(str(path)),
            fix="create it (see docs/enrich/identity.md) or correct inventory_path",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        what = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise ConfigError(
            f"enrich_identity: cannot read the inventory ({what})",
            location=Location(str(path)),
            fix="make it a readable UTF-8 text file",
        ) from None
    try:
        idents, problems = parse_inventory(text, str(path))
    except ParseError as exc:
        raise ConfigError(f"enrich_identity: {exc.what}", location=exc.location, fix=exc.fix) from None
    return idents, list(problems)


class IdentityDirectory:
    """Peer key → :class:`Identity`, from every configured source (see the module docstring)."""

    def __init__(self, config: EnrichIdentityConfig, report: Report) -> None:
        self.config = config
        self._report = report
        self._lock = threading.Lock()
        self.inventory_path = Path(config.inventory_path) if config.inventory_path else None
        self._inventory: dict[str, Identity] = {}
        self._configs: dict[str, Identity] = {}
        self._ldap: dict[str, Identity] = {}
        self.table: dict[str, Identity] = {}
        self.generation = 0
        self.on_change: list[Callable[[], None]] = []
        """Called after every rebuild of the table (a reload, an LDAP refresh — from its thread too):
        a fused chain empties its caches (:mod:`wgsiem.enrich.fused_chain`)."""
        self.reloads = 0
        self.reload_errors = 0
        self.problems: list[str] = []
        self.last_error: str | None = None
        self.ldap_refreshes = 0
        self.ldap_errors = 0
        self._inv_stamp: Stamp | None = None
        self._cfg_stamps: dict[str, Stamp] = {}
        self.next_check = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

        if self.inventory_path is not None:
            self._inv_stamp = _stamp(self.inventory_path)
            idents, problems = load_inventory(self.inventory_path)
            if problems and config.strict:
                raise ConfigError("enrich_identity: bad inventory rows", problems=problems)
            self._problems("InventoryRowError", "load", problems)
            self._inventory = {i.public_key: i for i in idents}
        if config.config_paths:
            self._load_configs()
        if config.ldap is not None:
            self._refresh_ldap()
        self._rebuild()
        self.next_check = time.monotonic() + config.reload_check_interval_secs

    # ------------------------------------------------------------------ lookups
    def get(self, public_key: str) -> Identity | None:
        return self.table.get(public_key)

    def __len__(self) -> int:
        return len(self.table)

    def identities(self) -> list[Identity]:
        return list(self.table.values())

    # ------------------------------------------------------------------ loading
    def _problems(self, etype: str, stage: str, problems: list[WgsiemError]) -> None:
        for p in problems:
            self._report(etype, stage, p.render())
            log.warning("%s", p.render())
        if etype == "InventoryRowError":
            self.problems = [p.render() for p in problems]

    def _rebuild(self) -> None:
        with self._lock:
            merged: dict[str, Identity] = dict(self._configs)
            for key, ident in self._ldap.items():
                merged[key] = ident.merged_with(merged[key]) if key in merged else ident
            for key, ident in self._inventory.items():
                merged[key] = ident.merged_with(merged[key]) if key in merged else ident
            self.table = merged
            self.generation += 1
        for hook in self.on_change:
            hook()

    def _load_configs(self) -> None:
        paths = expand(self.config.config_paths)
        self._cfg_stamps = {str(p): _stamp(p) for p in paths}
        idents, problems = read_configs(
            self.config.config_paths, name_as_user=self.config.config_name_as_user
        )
        for p in problems:
            self._report("ConfigFileError", "load", p.render())
        configs: dict[str, Identity] = {}
        for i in idents:
            configs[i.public_key] = i if i.public_key not in configs else configs[i.public_key].merged_with(i)
        self._configs = configs

    def _refresh_ldap(self) -> bool:
        assert self.config.ldap is not None
        try:
            idents, problems = fetch_identities(self.config.ldap)
        except WgsiemError as exc:
            self.ldap_errors += 1
            self.last_error = exc.render()
            self._report(type(exc).__name__, "ldap", exc.render())
            log.warning("keeping the last LDAP identities: %s", exc.render())
            return False
        for p in problems:
            self._report("LdapEntryError", "ldap", p.render())
        self._ldap = {i.public_key: i for i in idents}
        self.ldap_refreshes += 1
        return True

    # ------------------------------------------------------------------ reloads
    def maybe_reload(self, now: float) -> bool:
        """Called per event: at most every ``reload_check_interval_secs``, stat the files and reload
        what changed. ``True`` if the table changed."""
        if now < self.next_check:
            return False
        return self.check_now(now)

    def check_now(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.next_check = now + self.config.reload_check_interval_secs
        changed = False
        if self.inventory_path is not None:
            st = _stamp(self.inventory_path)
            if st != self._inv_stamp:
                self._inv_stamp = st
                changed |= self._reload_inventory()
        if self.config.config_paths:
            current = {str(p): _stamp(p) for p in expand(self.config.config_paths)}
            if current != self._cfg_stamps:
                self._load_configs()
                changed = True
        if changed:
            self._rebuild()
        return changed

    def _reload_inventory(self) -> bool:
        assert self.inventory_path is not None
        try:
            idents, problems = load_inventory(self.inventory_path)
        except ConfigError as exc:
            self.reload_errors += 1
            self.last_error = exc.render()
            self._report("InventoryError", "reload", exc.render())
            log.warning("keeping the loaded identity inventory: %s", exc.render())
            return False
        self._problems("InventoryRowError", "reload", problems)
        self._inventory = {i.public_key: i for i in idents}
        self.reloads += 1
        log.info("reloaded identity inventory %s: %d peers", self.inventory_path, len(idents))
        return True

    # ------------------------------------------------------------------ LDAP thread
    def start(self) -> None:
        """Refresh LDAP in the background (no-op without LDAP)."""
        if self.config.ldap is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._ldap_loop, name="enrich_identity-ldap", daemon=True)
        self._thread.start()

    def refresh_ldap(self) -> bool:
        """Re-read the directory now (what the background thread does); ``True`` if it was read."""
        if self.config.ldap is None:
            return False
        ok = self._refresh_ldap()
        if ok:
            self._rebuild()
        return ok

    def _ldap_loop(self) -> None:
        assert self.config.ldap is not None
        while not self._stop.wait(self.config.ldap.refresh_interval_secs):
            self.refresh_ldap()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def status(self) -> dict[str, Any]:
        return {
            "peers": len(self.table),
            "inventory": len(self._inventory),
            "config": len(self._configs),
            "ldap": len(self._ldap),
            "reloads": self.reloads,
            "reload_errors": self.reload_errors,
            "ldap_refreshes": self.ldap_refreshes,
            "ldap_errors": self.ldap_errors,
            "problems": self.problems,
            "last_error": self.last_error,
        }
