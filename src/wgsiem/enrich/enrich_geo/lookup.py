"""Pure mapping from MaxMind records to the ECS fields of one address (no I/O here).

``<side>.geo.*`` follows ECS (``country_iso_code``, ``region_iso_code`` as ``CC-SUB``, ``location`` a
geo_point); ``<side>.as.*`` takes the AS number and organization; what ECS has no field for — the scope
of the address, which databases answered, the Anonymous-IP flags, the accuracy radius — goes to
``wireguard.geo.<side>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ANONYMIZER_FLAGS", "GeoResult", "anonymizer_fields", "as_fields", "geo_fields"]

ANONYMIZER_FLAGS: dict[str, str] = {
    # MaxMind Anonymous-IP key → wireguard.geo.<side>.anonymizer.<name>
    "is_anonymous": "any",
    "is_anonymous_vpn": "vpn",
    "is_hosting_provider": "hosting",
    "is_public_proxy": "public_proxy",
    "is_residential_proxy": "residential_proxy",
    "is_tor_exit_node": "tor",
}


@dataclass(frozen=True, slots=True)
class GeoResult:
    """Everything one address contributes, as ready-made document fragments.

    Shared by the cache, so the transform copies them into each event."""

    geo: dict[str, Any] | None
    as_doc: dict[str, Any] | None
    wg_doc: dict[str, Any]
    # which nested parts exist (so the per-event copy asks nothing of the documents)
    geo_location_object: bool = False
    as_organization: bool = False
    wg_databases: bool = False
    wg_anonymizer: bool = False

    @classmethod
    def build(
        cls,
        geo: dict[str, Any] | None,
        as_number: int | None,
        as_org: str | None,
        scope: str,
        databases: list[str],
        anonymizer: dict[str, bool] | None,
        accuracy_radius_km: int | None,
    ) -> GeoResult:
        as_doc: dict[str, Any] | None = None
        if as_number is not None or as_org is not None:
            as_doc = {}
            if as_number is not None:
                as_doc["number"] = as_number
            if as_org is not None:
                as_doc["organization"] = {"name": as_org}
        wg: dict[str, Any] = {"scope": scope}
        if databases:  # "anonymizer" only ever comes with a database that said so
            wg["databases"] = list(databases)
            if anonymizer is not None:
                wg["anonymizer"] = dict(anonymizer)
        if accuracy_radius_km is not None:
            wg["accuracy_radius_km"] = accuracy_radius_km
        geo = geo or None
        return cls(
            geo,
            as_doc,
            wg,
            geo_location_object=geo is not None and type(geo.get("location")) is dict,
            as_organization=as_doc is not None and "organization" in as_doc,
            wg_databases="databases" in wg,
            wg_anonymizer="anonymizer" in wg,
        )


def _name(obj: Any, lang: str) -> str | None:
    if not isinstance(obj, dict):
        return None
    names = obj.get("names")
    if isinstance(names, dict):
        n = names.get(lang) or names.get("en")
        if isinstance(n, str):
            return n
    return None


def geo_fields(rec: dict[str, Any], lang: str, location_format: str) -> dict[str, Any]:
    """ECS ``geo.*`` from a City or Country record (empty if it holds nothing usable)."""
    out: dict[str, Any] = {}
    continent = rec.get("continent")
    if isinstance(continent, dict):
        if isinstance(continent.get("code"), str):
            out["continent_code"] = continent["code"]
        name = _name(continent, lang)
        if name:
            out["continent_name"] = name
    country = rec.get("country") or rec.get("registered_country")
    cc = None
    if isinstance(country, dict):
        cc = country.get("iso_code") if isinstance(country.get("iso_code"), str) else None
        if cc:
            out["country_iso_code"] = cc
        name = _name(country, lang)
        if name:
            out["country_name"] = name
    subs = rec.get("subdivisions")
    if isinstance(subs, list) and subs and isinstance(subs[0], dict):
        sub = subs[0]
        if cc and isinstance(sub.get("iso_code"), str):
            out["region_iso_code"] = f"{cc}-{sub['iso_code']}"
        name = _name(sub, lang)
        if name:
            out["region_name"] = name
    city = _name(rec.get("city"), lang)
    if city:
        out["city_name"] = city
    postal = rec.get("postal")
    if isinstance(postal, dict) and isinstance(postal.get("code"), str):
        out["postal_code"] = postal["code"]
    loc = rec.get("location")
    if isinstance(loc, dict):
        if isinstance(loc.get("time_zone"), str):
            out["timezone"] = loc["time_zone"]
        lat, lon = loc.get("latitude"), loc.get("longitude")
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            out["location"] = f"POINT ({lon} {lat})" if location_format == "wkt" else {"lat": lat, "lon": lon}
    return out


def as_fields(rec: dict[str, Any]) -> tuple[int | None, str | None]:
    num = rec.get("autonomous_system_number")
    org = rec.get("autonomous_system_organization")
    return (
        num if isinstance(num, int) and not isinstance(num, bool) else None,
        org if isinstance(org, str) and org else None,
    )


def anonymizer_fields(rec: dict[str, Any]) -> dict[str, bool] | None:
    """The Anonymous-IP flags that are set; ``None`` if none is."""
    out = {name: True for key, name in ANONYMIZER_FLAGS.items() if rec.get(key) is True}
    if out and "any" not in out:
        out["any"] = True
    return out or None
