"""Configuration of the ``enrich_geo`` transform."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EnrichGeoConfig"]


class EnrichGeoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["enrich_geo"] = "enrich_geo"
    city_db_path: str | None = Field(
        None, description="GeoIP2/GeoLite2 City database (.mmdb); gives country, region, city, location"
    )
    country_db_path: str | None = Field(
        None, description="GeoIP2/GeoLite2 Country database (.mmdb); used when no City database is set"
    )
    asn_db_path: str | None = Field(None, description="GeoLite2/GeoIP2 ASN database (.mmdb)")
    anonymous_ip_db_path: str | None = Field(
        None, description="GeoIP2 Anonymous-IP database (.mmdb): VPN, hosting, Tor, public/residential proxy"
    )
    fallback: Literal["bundled", "none"] = Field(
        "bundled",
        description="where country and AS come from when no database for them is configured: 'bundled' "
        "uses data shipped in Python packages (iptocc, geoip2fast); 'none' leaves them out",
    )
    fields: list[Literal["source", "destination"]] = Field(
        default=["source", "destination"],
        description="which ECS sides to enrich: <side>.ip is looked up, <side>.geo/.as are filled",
    )
    reload_check_interval_secs: float = Field(
        30.0, ge=0, description="how often (at most) each database file is checked for a new version"
    )
    cache_max_entries: int = Field(65_536, ge=0, description="LRU cache of lookups by address; 0 disables")
    language: str = Field("en", description="language of country/city/continent names (MaxMind 'names')")
    location_format: Literal["wkt", "object"] = Field(
        "wkt",
        description="how <side>.geo.location (an ECS geo_point) is written: 'wkt' = \"POINT (lon lat)\", "
        "'object' = {lat, lon}",
    )
