"""The ``enrich_geo`` transform: country, city, AS and anonymizer flags for ``source.ip``/``destination.ip``.

Per address, once (then from an LRU cache, cleared whenever a database is reloaded):

1. the **scope** of the address (:mod:`.scope`); a non-public address gets ``wireguard.geo.<side>.scope``
   (``private``, ``documentation``, ``loopback``, …) and is never placed by the bundled fallback;
2. the configured **MaxMind databases** (City or Country, ASN, Anonymous-IP), whatever the scope — an
   operator's own database may map internal or test ranges on purpose;
3. for a ``global`` address and a kind of data no database is configured for, the **bundled fallback**
   (:mod:`.fallback`): country (iptocc) and AS organization (geoip2fast's table).

Failures never stop the event: an unreadable address or a lookup in a damaged database is counted
(``ctx.telemetry.error``) and the event passes on without geo fields (``status()["without_geo"]``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wgsiem.enrich.base import TransformContext, cache_stat
from wgsiem.event import Envelope

from .config import EnrichGeoConfig
from .databases import DatabaseLookupError, MaxmindDatabase
from .fallback import BundledData, bundled_data
from .lookup import GeoResult, anonymizer_fields, as_fields, geo_fields
from .scope import address_scope, parse_ip

__all__ = ["EnrichGeo"]

log = logging.getLogger(__name__)
_monotonic = time.monotonic


class _InvalidAddress(Exception):
    pass


class EnrichGeo:
    """See the module docstring; built as ``EnrichGeo(transform_id, config, ctx)``."""

    __name__ = "enrich_geo"

    def __init__(self, transform_id: str, config: EnrichGeoConfig, ctx: TransformContext) -> None:
        self.transform_id = transform_id
        self.config = config
        self.ctx = ctx
        self.telemetry = ctx.telemetry
        interval = config.reload_check_interval_secs
        self.location_db: MaxmindDatabase | None = None
        self.asn_db: MaxmindDatabase | None = None
        self.anon_db: MaxmindDatabase | None = None
        opened: list[MaxmindDatabase] = []
        try:
            if config.city_db_path:
                self.location_db = MaxmindDatabase("city", Path(config.city_db_path), interval)
                opened.append(self.location_db)
            elif config.country_db_path:
                self.location_db = MaxmindDatabase("country", Path(config.country_db_path), interval)
                opened.append(self.location_db)
            if config.asn_db_path:
                self.asn_db = MaxmindDatabase("asn", Path(config.asn_db_path), interval)
                opened.append(self.asn_db)
            if config.anonymous_ip_db_path:
                self.anon_db = MaxmindDatabase("anonymous_ip", Path(config.anonymous_ip_db_path), interval)
                opened.append(self.anon_db)
        except Exception:
            for db in opened:
                db.close()
            raise
        self.databases = opened
        need_fallback = config.fallback == "bundled" and (self.location_db is None or self.asn_db is None)
        self.fallback: BundledData | None = bundled_data() if need_fallback else None
        self._sides = tuple(config.fields)
        self._location_object = config.location_format == "object"
        self._next_check = time.monotonic() + interval
        self.on_clear: list[Callable[[], None]] = []
        """Called whenever the cache is emptied (a database reloaded): a fused chain empties its own
        caches built from this transform's answers (:mod:`wgsiem.enrich.fused_chain`)."""
        self.without_geo = 0
        self.invalid_addresses = 0
        self.lookup_errors = 0
        self._lookup: Any = (
            functools.lru_cache(maxsize=config.cache_max_entries)(self._resolve)
            if config.cache_max_entries
            else self._resolve
        )

    # ---------------------------------------------------------------- per event
    def __call__(self, env: Envelope) -> Envelope:
        data = env.data
        now = _monotonic()
        if now >= self._next_check:
            self._check_reload(now)
        wg_geo: dict[str, Any] | None = None
        lookup = self._lookup
        for side in self._sides:
            part = data.get(side)
            if type(part) is not dict:
                continue
            ip = part.get("ip")
            if not ip:
                continue
            try:
                if type(ip) is not str:
                    raise _InvalidAddress(ip)
                res: GeoResult = lookup(ip)
            except _InvalidAddress:
                self.invalid_addresses += 1
                self.without_geo += 1
                self.telemetry.error("InvalidAddress", "lookup", f"{side}.ip {ip!r} is not an IP address")
                continue
            except DatabaseLookupError as exc:
                self.lookup_errors += 1
                self.without_geo += 1
                self.telemetry.error("DatabaseLookupError", "lookup", str(exc))
                continue
            # the cached fragments are shared: each event gets its own copies (a later transform,
            # e.g. privacy, may edit them in place); which nested parts need a copy is known per result
            geo = res.geo
            if geo is not None and "geo" not in part:
                geo = geo.copy()
                if res.geo_location_object:
                    geo["location"] = geo["location"].copy()
                part["geo"] = geo
            as_doc = res.as_doc
            if as_doc is not None and "as" not in part:
                as_doc = as_doc.copy()
                if res.as_organization:
                    as_doc["organization"] = as_doc["organization"].copy()
                part["as"] = as_doc
            if wg_geo is None:
                wg = data.get("wireguard")
                if type(wg) is not dict:
                    wg = data["wireguard"] = {}
                wg_geo = wg.get("geo")
                if type(wg_geo) is not dict:
                    wg_geo = wg["geo"] = {}
            w = res.wg_doc.copy()
            if res.wg_databases:
                w["databases"] = w["databases"][:]
                if res.wg_anonymizer:
                    w["anonymizer"] = w["anonymizer"].copy()
            wg_geo[side] = w
        return env

    def _resolve(self, ip: str) -> GeoResult:
        try:
            addr = parse_ip(ip)
        except (ValueError, TypeError, AttributeError):
            raise _InvalidAddress(ip) from None
        key = str(addr)
        scope = address_scope(addr)
        cfg = self.config
        geo: dict[str, Any] | None = None
        as_number: int | None = None
        as_org: str | None = None
        anonymizer: dict[str, bool] | None = None
        radius: int | None = None
        used: list[str] = []
        if self.location_db is not None:
            rec = self.location_db.get(key)
            if rec:
                geo = geo_fields(rec, cfg.language, cfg.location_format) or None
                loc = rec.get("location")
                if isinstance(loc, dict) and isinstance(loc.get("accuracy_radius"), int):
                    radius = loc["accuracy_radius"]
                if geo:
                    used.append(self.location_db.database_type)
        if self.asn_db is not None:
            rec = self.asn_db.get(key)
            if rec:
                as_number, as_org = as_fields(rec)
                if as_number is not None or as_org is not None:
                    used.append(self.asn_db.database_type)
        if self.anon_db is not None:
            rec = self.anon_db.get(key)
            if rec:
                anonymizer = anonymizer_fields(rec)
                if anonymizer:
                    used.append(self.anon_db.database_type)
        fb = self.fallback
        if fb is not None and scope == "global":
            if self.location_db is None:
                found = fb.country(key)
                if found is not None:
                    geo = {"country_iso_code": found[0]}
                    if found[1]:
                        geo["country_name"] = found[1]
                    used.append(f"bundled:{fb.country_source}")
            if self.asn_db is None:
                as_org = fb.as_org(int(addr), addr.version)
                if as_org is not None:
                    used.append("bundled:geoip2fast")
        return GeoResult.build(geo, as_number, as_org, scope, used, anonymizer, radius)

    # ---------------------------------------------------------------- reload
    def _check_reload(self, now: float) -> None:
        self._next_check = now + self.config.reload_check_interval_secs
        reloaded = False
        for db in self.databases:
            before = db.reload_errors
            if db.maybe_reload(now):
                reloaded = True
            elif db.reload_errors != before:
                self.telemetry.error("DatabaseReloadError", "reload", db.last_error)
        if reloaded:
            self.clear_cache()

    def check_now(self) -> None:
        """Check every database file for a new version immediately (what the timer does)."""
        for db in self.databases:
            db.watch._next = 0.0
        self._check_reload(time.monotonic())

    def clear_cache(self) -> None:
        for hook in self.on_clear:
            hook()
        clear = getattr(self._lookup, "cache_clear", None)
        if clear is not None:
            clear()

    # ---------------------------------------------------------------- lifecycle
    def cache_info(self) -> dict[str, Any]:
        info = getattr(self._lookup, "cache_info", None)
        if info is None:
            return {"hits": 0, "misses": 0, "size": 0, "max_entries": 0, "hit_rate": None}
        ci = info()
        total = ci.hits + ci.misses
        return {
            "hits": ci.hits,
            "misses": ci.misses,
            "size": ci.currsize,
            "max_entries": ci.maxsize,
            "hit_rate": round(ci.hits / total, 4) if total else None,
        }

    def cache_stats(self) -> dict[str, dict[str, Any]]:
        """The address → result cache, in the shape every transform reports."""
        ci = self.cache_info()
        return {"addresses": cache_stat(ci["hits"], ci["misses"], ci["size"], ci["max_entries"])}

    def status(self) -> dict[str, Any]:
        fb = self.fallback
        return {
            "databases": {db.kind: db.status() for db in self.databases},
            "fallback": None
            if fb is None
            else {"country": fb.country_source, "as": fb.as_source, "problems": list(fb.problems)},
            "cache": self.cache_info(),
            "memory": {
                "mapped_database_bytes": sum(db.size_bytes() for db in self.databases),
                "fallback_table_bytes": fb.nbytes() if fb is not None else 0,
            },
            "without_geo": self.without_geo,
            "invalid_addresses": self.invalid_addresses,
            "lookup_errors": self.lookup_errors,
        }

    def close(self) -> None:
        for db in self.databases:
            db.close()
