"""The simulated internet: countries, their networks (fixed line, mobile CGNAT, hosting) and a GeoIP
database that places them.

Every address comes from the documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32): real GeoIP databases never place them, so the simulation writes its own City and ASN
databases (MaxMind layout, through ``mmdb-writer``) and hands them to ``enrich_geo``. Twelve IPv4 /26
blocks go to mobile (CGNAT: many subscribers behind few addresses, as in reality) and hosting networks;
fixed-line networks and the rest get an IPv6 /48, where every home has its own address — so an endpoint
address names one household, as it does for a real gateway, and kernel ``peer N`` lines can be
attributed by address.
"""

from __future__ import annotations

import ipaddress
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["COUNTRIES", "Country", "Network", "World", "distance_km"]


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    name: str
    continent: tuple[str, str]
    city: str
    lat: float
    lon: float
    tz: str
    utc_offset_hours: int
    role: str  # "home" (users live here), "travel" (users visit), "hostile" (attacks come from here)


COUNTRIES: tuple[Country, ...] = (
    Country("DE", "Germany", ("EU", "Europe"), "Berlin", 52.52, 13.40, "Europe/Berlin", 1, "home"),
    Country("NL", "Netherlands", ("EU", "Europe"), "Amsterdam", 52.37, 4.89, "Europe/Amsterdam", 1, "home"),
    Country("FR", "France", ("EU", "Europe"), "Paris", 48.86, 2.35, "Europe/Paris", 1, "home"),
    Country("GB", "United Kingdom", ("EU", "Europe"), "London", 51.51, -0.13, "Europe/London", 0, "home"),
    Country("ES", "Spain", ("EU", "Europe"), "Madrid", 40.42, -3.70, "Europe/Madrid", 1, "travel"),
    Country("IT", "Italy", ("EU", "Europe"), "Rome", 41.90, 12.50, "Europe/Rome", 1, "travel"),
    Country(
        "US",
        "United States",
        ("NA", "North America"),
        "New York",
        40.71,
        -74.01,
        "America/New_York",
        -5,
        "travel",
    ),
    Country("JP", "Japan", ("AS", "Asia"), "Tokyo", 35.69, 139.69, "Asia/Tokyo", 9, "travel"),
    Country("KP", "North Korea", ("AS", "Asia"), "Pyongyang", 39.03, 125.75, "Asia/Pyongyang", 9, "hostile"),
    Country("RU", "Russia", ("EU", "Europe"), "Moscow", 55.76, 37.62, "Europe/Moscow", 3, "hostile"),
    Country(
        "BR",
        "Brazil",
        ("SA", "South America"),
        "Sao Paulo",
        -23.55,
        -46.63,
        "America/Sao_Paulo",
        -3,
        "hostile",
    ),
    Country("NG", "Nigeria", ("AF", "Africa"), "Lagos", 6.52, 3.38, "Africa/Lagos", 1, "hostile"),
    Country(
        "AU", "Australia", ("OC", "Oceania"), "Sydney", -33.87, 151.21, "Australia/Sydney", 10, "hostile"
    ),
)
KINDS = ("fixed", "mobile", "hosting")


@dataclass(frozen=True, slots=True)
class Network:
    country: Country
    kind: str  # fixed | mobile | hosting
    asn: int
    org: str
    cidr: str

    def address(self, rng: random.Random) -> str:
        net = ipaddress.ip_network(self.cidr)
        host = rng.randrange(1, min(net.num_addresses - 1, 1 << 48))
        return str(net.network_address + host)


def distance_km(a: Country, b: Country) -> float:
    """Great-circle distance between two countries' reference cities."""
    la1, lo1, la2, lo2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


class World:
    """Every (country, kind) network with its AS number and address block."""

    def __init__(self) -> None:
        v4 = [
            sub
            for block in ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24")
            for sub in ipaddress.ip_network(block).subnets(new_prefix=26)
        ]
        self.networks: list[Network] = []
        free_v4 = iter(v4)
        n = 0
        for c in COUNTRIES:
            for kind in KINDS:
                block = next(free_v4, None) if kind != "fixed" else None
                cidr = str(block) if block is not None else f"2001:db8:{n:x}::/48"
                org = {"fixed": "Broadband", "mobile": "Mobile", "hosting": "Hosting"}[kind]
                self.networks.append(Network(c, kind, 64500 + n, f"Example {c.name} {org}", cidr))
                n += 1
        self._by = {(nw.country.code, nw.kind): nw for nw in self.networks}

    def network(self, country: str, kind: str) -> Network:
        return self._by[(country, kind)]

    def countries(self, role: str) -> list[Country]:
        return [c for c in COUNTRIES if c.role == role]

    def write_geoip(self, directory: Path) -> tuple[Path, Path]:
        """City and ASN databases placing every simulated network; returns (city, asn) paths."""
        try:
            from mmdb_writer import MMDBWriter
            from netaddr import IPSet
        except ImportError as exc:  # pragma: no cover - dependency missing
            raise RuntimeError(
                "the simulator needs mmdb-writer and netaddr to write its GeoIP test database"
            ) from exc
        directory.mkdir(parents=True, exist_ok=True)
        city_path = directory / "sim-city.mmdb"
        asn_path = directory / "sim-asn.mmdb"
        for path, db_type, rec in (
            (city_path, "GeoLite2-City", _city_record),
            (asn_path, "GeoLite2-ASN", _asn_record),
        ):
            w = MMDBWriter(
                ip_version=6,
                ipv4_compatible=True,
                database_type=db_type,
                languages=["en"],
                description="wgsiem simulator database (documentation ranges)",
            )
            for nw in self.networks:
                w.insert_network(IPSet([nw.cidr]), rec(nw))
            w.to_db_file(str(path))
        return city_path, asn_path


def _city_record(nw: Network) -> dict[str, Any]:
    c = nw.country
    return {
        "continent": {"code": c.continent[0], "names": {"en": c.continent[1]}},
        "country": {"iso_code": c.code, "names": {"en": c.name}},
        "registered_country": {"iso_code": c.code, "names": {"en": c.name}},
        "city": {"names": {"en": c.city}},
        "location": {"latitude": c.lat, "longitude": c.lon, "time_zone": c.tz, "accuracy_radius": 50},
    }


def _asn_record(nw: Network) -> dict[str, Any]:
    return {"autonomous_system_number": nw.asn, "autonomous_system_organization": nw.org}
