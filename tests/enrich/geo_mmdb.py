"""MaxMind DB files written by the tests (mmdb-writer), mapping documentation ranges to places.

Real GeoIP databases never place 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 or 2001:db8::/32 — the
lab's "public" endpoints — so the tests write databases that do, in the same record layout MaxMind
uses (``country.iso_code``, ``names``, ``autonomous_system_number``, ``is_tor_exit_node``, …).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

from wgsiem.enrich.base import TransformContext
from wgsiem.enrich.enrich_geo.config import EnrichGeoConfig
from wgsiem.enrich.enrich_geo.transform import EnrichGeo
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory

CITY: dict[str, dict[str, Any]] = {
    "203.0.113.0/24": {
        "cc": "NL",
        "country": "Netherlands",
        "continent": ("EU", "Europe"),
        "city": "Amsterdam",
        "sub": ("NH", "North Holland"),
        "loc": (52.37, 4.89),
        "tz": "Europe/Amsterdam",
    },
    "198.51.100.0/24": {
        "cc": "DE",
        "country": "Germany",
        "continent": ("EU", "Europe"),
        "city": "Berlin",
        "sub": ("BE", "Land Berlin"),
        "loc": (52.52, 13.40),
        "tz": "Europe/Berlin",
    },
    "192.0.2.0/24": {
        "cc": "KP",
        "country": "North Korea",
        "continent": ("AS", "Asia"),
        "city": "Pyongyang",
        "sub": None,
        "loc": (39.03, 125.75),
        "tz": "Asia/Pyongyang",
    },
    "2001:db8::/32": {
        "cc": "JP",
        "country": "Japan",
        "continent": ("AS", "Asia"),
        "city": "Tokyo",
        "sub": ("13", "Tokyo"),
        "loc": (35.69, 139.69),
        "tz": "Asia/Tokyo",
    },
}
ASN: dict[str, tuple[int, str]] = {
    "203.0.113.0/24": (64500, "Example Transit B.V."),
    "198.51.100.0/24": (64501, "Example Hosting GmbH"),
    "192.0.2.0/24": (64502, "Example Bulletproof Ltd"),
    "2001:db8::/32": (64503, "Example IPv6 KK"),
}
ANON: dict[str, dict[str, bool]] = {
    "203.0.113.12/32": {"is_anonymous": True, "is_tor_exit_node": True},
    "198.51.100.0/25": {"is_anonymous": True, "is_hosting_provider": True},
    "192.0.2.7/32": {"is_anonymous": True, "is_anonymous_vpn": True, "is_public_proxy": True},
}


def city_record(spec: dict[str, Any]) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "continent": {"code": spec["continent"][0], "names": {"en": spec["continent"][1]}},
        "country": {"iso_code": spec["cc"], "names": {"en": spec["country"]}},
        "registered_country": {"iso_code": spec["cc"], "names": {"en": spec["country"]}},
        "city": {"names": {"en": spec["city"]}},
        "location": {
            "latitude": spec["loc"][0],
            "longitude": spec["loc"][1],
            "time_zone": spec["tz"],
            "accuracy_radius": 20,
        },
    }
    if spec.get("sub"):
        rec["subdivisions"] = [{"iso_code": spec["sub"][0], "names": {"en": spec["sub"][1]}}]
    return rec


def _write(path: Path, db_type: str, rows: dict[str, dict[str, Any]]) -> Path:
    w = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=db_type,
        languages=["en"],
        description="wgsiem test database",
    )
    for cidr, rec in rows.items():
        w.insert_network(IPSet([cidr]), rec)
    tmp = path.with_name(path.name + ".tmp")
    w.to_db_file(str(tmp))
    os.replace(tmp, path)  # what geoipupdate does: a new file renamed over the old
    return path


def write_city(
    path: Path, city: dict[str, dict[str, Any]] | None = None, db_type: str = "GeoLite2-City"
) -> Path:
    return _write(path, db_type, {c: city_record(s) for c, s in (city or CITY).items()})


def write_asn(path: Path, asn: dict[str, tuple[int, str]] | None = None) -> Path:
    rows = {
        c: {"autonomous_system_number": n, "autonomous_system_organization": o}
        for c, (n, o) in (asn or ASN).items()
    }
    return _write(path, "GeoLite2-ASN", rows)


def write_anonymous(path: Path, anon: dict[str, dict[str, bool]] | None = None) -> Path:
    return _write(path, "GeoIP2-Anonymous-IP", dict(anon or ANON))


# ---------------------------------------------------------------- building the transforms in tests
def context(tmp_path: Path, component_id: str = "geo", kind: str = "enrich_geo") -> TransformContext:
    tel = TelemetryRegistry().register(component_id, "transform", kind)
    return TransformContext(hostname="gw-test", state_dir=tmp_path, telemetry=tel, peers=PeerDirectory())


def build(tmp_path: Path, **cfg: Any) -> EnrichGeo:
    return EnrichGeo("geo", EnrichGeoConfig(**cfg), context(tmp_path))


def envelope(doc: dict[str, Any]) -> Envelope:
    return Envelope(doc, EventMeta("test", 0))


def flow(src: str | None = None, dst: str | None = None) -> dict[str, Any]:
    """A minimal ECS network event with the given addresses."""
    doc: dict[str, Any] = {
        "@timestamp": "2026-11-25T18:00:00.000Z",
        "event": {
            "kind": "event",
            "category": ["network"],
            "type": ["connection"],
            "action": "flow",
            "dataset": "wireguard.netflow",
            "module": "wireguard",
            "id": "x",
        },
    }
    if src:
        doc["source"] = {"ip": src}
    if dst:
        doc["destination"] = {"ip": dst}
    return doc


def enrich(transform: Any, src: str | None = None, dst: str | None = None) -> dict[str, Any]:
    env = transform(envelope(flow(src, dst)))
    assert env is not None
    return env.data
