"""The ``enrich_assets`` transform: what the inventory knows about the hosts an event touches.

``<side>.ip`` (``destination`` by default: in a flow, the internal host a peer reached) is matched
against the inventory's networks, longest prefix first; the gateway itself is matched by
``observer.hostname`` against hostname rows, else by ``observer.ip``. The match goes to
``wireguard.asset.<side>`` / ``wireguard.asset.observer``: ``name``, ``network`` or ``hostname``,
``owner``, ``department``, ``criticality`` (1–5) and ``criticality_level``, ``environment``, ``tags``.
ECS has no asset fields for a destination, so they live under the ``wireguard.*`` custom namespace.

The inventory is re-read when the file changes (checked every ``reload_check_interval_secs``); a
reload that cannot be read keeps the last good inventory, and bad rows in it are skipped — both are
counted with the file and line.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wgsiem.enrich.base import TransformContext, cache_stat
from wgsiem.enrich.enrich_geo.scope import parse_ip
from wgsiem.enrich.enrich_geo.watch import FileWatch, Stamp, stamp
from wgsiem.errors import ConfigError, Location, ParseError
from wgsiem.event import Envelope

from .config import EnrichAssetsConfig
from .inventory import AssetTable, parse_inventory

__all__ = ["EnrichAssets", "load_inventory"]

log = logging.getLogger(__name__)
_monotonic = time.monotonic


def load_inventory(path: Path) -> tuple[AssetTable, list[ParseError]]:
    """Read and parse the inventory; a file that cannot be read at all raises :class:`ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "enrich_assets: inventory not found",
            location=Location(str(path)),
            fix="create it (see docs/enrich/assets.md) or correct inventory_path",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"enrich_assets: cannot read the inventory ({exc})",
            location=Location(str(path)),
            fix="make it a readable UTF-8 text file",
        ) from None
    try:
        assets, problems = parse_inventory(text, str(path))
    except ParseError as exc:
        raise ConfigError(f"enrich_assets: {exc.what}", location=exc.location, fix=exc.fix) from None
    return AssetTable(assets), problems


class EnrichAssets:
    """See the module docstring; built as ``EnrichAssets(transform_id, config, ctx)``."""

    __name__ = "enrich_assets"

    def __init__(self, transform_id: str, config: EnrichAssetsConfig, ctx: TransformContext) -> None:
        self.transform_id = transform_id
        self.config = config
        self.ctx = ctx
        self.telemetry = ctx.telemetry
        self.path = Path(config.inventory_path)
        self.watch = FileWatch(self.path, config.reload_check_interval_secs)
        table, problems = load_inventory(self.path)
        if problems and config.strict:
            raise ConfigError("enrich_assets: bad inventory rows", problems=list(problems))
        self._report(problems)
        self.table = table
        self.problems: list[str] = [p.render() for p in problems]
        self.reloads = 0
        self.reload_errors = 0
        self.last_error: str | None = None
        self.matched = 0
        self.on_clear: list[Callable[[], None]] = []
        """Called whenever the caches are emptied (the inventory reloaded): a fused chain empties its
        own caches built from this transform's answers (:mod:`wgsiem.enrich.fused_chain`)."""
        self._sides = tuple(config.fields)
        self._next_check = time.monotonic() + config.reload_check_interval_secs
        self._match: Any = (
            functools.lru_cache(maxsize=config.cache_max_entries)(self._match_ip)
            if config.cache_max_entries
            else self._match_ip
        )
        self._observer = config.observer
        self._observer_cache: dict[Any, dict[str, Any] | None] = {}
        self._observer_hits = 0
        self._observer_misses = 0

    def _report(self, problems: list[ParseError]) -> None:
        for p in problems:
            self.telemetry.error("InventoryRowError", "load", p.render())
            log.warning("%s", p.render())

    # ---------------------------------------------------------------- per event
    def __call__(self, env: Envelope) -> Envelope:
        data = env.data
        now = _monotonic()
        if now >= self._next_check:
            self._check_reload(now)
        found: dict[str, dict[str, Any]] | None = None
        match = self._match
        for side in self._sides:
            part = data.get(side)
            if type(part) is not dict:
                continue
            ip = part.get("ip")
            if type(ip) is not str:
                continue
            doc = match(ip)
            if doc is not None:
                doc = doc.copy()  # the cached document is shared; tags too
                if "tags" in doc:
                    doc["tags"] = doc["tags"][:]
                if found is None:
                    found = {side: doc}
                else:
                    found[side] = doc
        if self._observer:
            obs = data.get("observer")
            if type(obs) is dict:
                ip = obs.get("ip")
                if ip is not None:
                    ip = ip[0] if type(ip) is list and ip else ip
                    ip = ip if type(ip) is str else None
                host = obs.get("hostname")
                # the gateway's own events name the same observer over and over: one dict lookup
                key: Any = (host if type(host) is str else None, ip) if ip is not None else host
                cache = self._observer_cache
                try:
                    doc = cache[key]
                    self._observer_hits += 1
                except KeyError:
                    self._observer_misses += 1
                    if len(cache) >= 1024:  # observers are few; a flood of distinct ones must not grow it
                        cache.clear()
                    doc = cache[key] = self._match_observer(host if type(host) is str else None, ip)
                except TypeError:  # an unhashable hostname (not from our sources): no cache
                    doc = self._match_observer(None, ip)
                if doc is not None:
                    doc = doc.copy()
                    if "tags" in doc:
                        doc["tags"] = doc["tags"][:]
                    if found is None:
                        found = {"observer": doc}
                    else:
                        found["observer"] = doc
        if found is not None:
            self.matched += 1
            wg = data.get("wireguard")
            if type(wg) is not dict:
                wg = data["wireguard"] = {}
            existing = wg.get("asset")
            if type(existing) is not dict:
                wg["asset"] = found
            else:
                existing.update(found)
        return env

    def _match_ip(self, ip: str) -> dict[str, Any] | None:
        try:
            addr = parse_ip(ip)
        except (ValueError, TypeError, AttributeError):
            return None
        asset = self.table.match_ip(addr)
        return asset.document() if asset is not None else None

    def _match_observer(self, hostname: str | None, ip: str | None) -> dict[str, Any] | None:
        if hostname:
            hit = self.table.match_hostname(hostname)
            if hit is not None:
                return hit.document()
        return self._match_ip(ip) if ip else None

    # ---------------------------------------------------------------- reload
    def _check_reload(self, now: float) -> None:
        self._next_check = now + self.config.reload_check_interval_secs
        current = self.watch.changed(now)
        if current is not None:
            self.reload(current)

    def reload(self, current: Stamp | None = None) -> bool:
        """Re-read the inventory now; ``True`` if a new version is in use."""
        self.watch.accept(current if current is not None else stamp(self.path))
        try:
            table, problems = load_inventory(self.path)
        except ConfigError as exc:
            self.reload_errors += 1
            self.last_error = exc.render()
            self.telemetry.error("InventoryError", "reload", exc.render())
            log.warning("keeping the loaded inventory: %s", exc.render())
            return False
        self._report(problems)
        self.problems = [p.render() for p in problems]
        self.table = table
        self.reloads += 1
        self.clear_cache()
        log.info("reloaded asset inventory %s: %d assets", self.path, len(table.assets))
        return True

    def check_now(self) -> None:
        """Check the inventory file for a new version immediately (what the timer does)."""
        self._check_reload(time.monotonic())

    # ---------------------------------------------------------------- lifecycle
    def cache_stats(self) -> dict[str, dict[str, Any]]:
        """Hit rates of the address → asset cache and the observer cache."""
        out = {}
        info = getattr(self._match, "cache_info", None)
        if info is not None:
            ci = info()
            out["addresses"] = cache_stat(ci.hits, ci.misses, ci.currsize, ci.maxsize)
        out["observer"] = cache_stat(self._observer_hits, self._observer_misses, len(self._observer_cache))
        return out

    def clear_cache(self) -> None:
        for hook in self.on_clear:
            hook()
        clear = getattr(self._match, "cache_clear", None)
        if clear is not None:
            clear()
        self._observer_cache.clear()

    def status(self) -> dict[str, Any]:
        info = getattr(self._match, "cache_info", None)
        cache: dict[str, Any] = {"hits": 0, "misses": 0, "hit_rate": None}
        if info is not None:
            ci = info()
            total = ci.hits + ci.misses
            cache = {
                "hits": ci.hits,
                "misses": ci.misses,
                "size": ci.currsize,
                "hit_rate": round(ci.hits / total, 4) if total else None,
            }
        return {
            "inventory": str(self.path),
            "assets": len(self.table.assets),
            "problems": list(self.problems),
            "reloads": self.reloads,
            "reload_errors": self.reload_errors,
            "last_error": self.last_error,
            "events_matched": self.matched,
            "cache": cache,
            "caches": self.cache_stats(),
        }
