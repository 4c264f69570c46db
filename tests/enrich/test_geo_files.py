"""enrich_geo with databases the tests write: documentation ranges placed, files swapped on disk,
missing and corrupt files, lookups that fail at runtime, the bundled fallback, the cache."""

from __future__ import annotations

import os
from pathlib import Path

import maxminddb
import pytest

from tests.enrich.geo_mmdb import build, enrich, envelope, write_anonymous, write_asn, write_city
from tests.support.ecs import validate
from wgsiem.errors import ConfigError

MOVED = {
    "203.0.113.0/24": {
        "cc": "SE",
        "country": "Sweden",
        "continent": ("EU", "Europe"),
        "city": "Stockholm",
        "sub": None,
        "loc": (59.33, 18.07),
        "tz": "Europe/Stockholm",
    }
}


@pytest.fixture
def dbs(tmp_path: Path) -> dict[str, str]:
    return {
        "city_db_path": str(write_city(tmp_path / "city.mmdb")),
        "asn_db_path": str(write_asn(tmp_path / "asn.mmdb")),
        "anonymous_ip_db_path": str(write_anonymous(tmp_path / "anon.mmdb")),
    }


def test_documentation_ranges_are_placed_by_the_configured_databases(
    tmp_path: Path, dbs: dict[str, str]
) -> None:
    geo = build(tmp_path, **dbs)
    doc = enrich(geo, "203.0.113.11", "2001:db8:1::5")
    assert doc["source"]["geo"] == {
        "continent_code": "EU",
        "continent_name": "Europe",
        "country_iso_code": "NL",
        "country_name": "Netherlands",
        "region_iso_code": "NL-NH",
        "region_name": "North Holland",
        "city_name": "Amsterdam",
        "timezone": "Europe/Amsterdam",
        "location": "POINT (4.89 52.37)",
    }
    assert doc["source"]["as"] == {"number": 64500, "organization": {"name": "Example Transit B.V."}}
    assert doc["destination"]["geo"]["country_iso_code"] == "JP"
    assert doc["destination"]["as"]["number"] == 64503
    assert doc["wireguard"]["geo"] == {
        "source": {
            "scope": "documentation",
            "databases": ["GeoLite2-City", "GeoLite2-ASN"],
            "accuracy_radius_km": 20,
        },
        "destination": {
            "scope": "documentation",
            "databases": ["GeoLite2-City", "GeoLite2-ASN"],
            "accuracy_radius_km": 20,
        },
    }
    assert validate(doc) == []


def test_anonymizers_are_marked_where_the_database_says(tmp_path: Path, dbs: dict[str, str]) -> None:
    geo = build(tmp_path, **dbs)
    assert enrich(geo, "203.0.113.12")["wireguard"]["geo"]["source"]["anonymizer"] == {
        "any": True,
        "tor": True,
    }
    assert enrich(geo, "198.51.100.9")["wireguard"]["geo"]["source"]["anonymizer"] == {
        "any": True,
        "hosting": True,
    }
    assert enrich(geo, "192.0.2.7")["wireguard"]["geo"]["source"]["anonymizer"] == {
        "any": True,
        "vpn": True,
        "public_proxy": True,
    }
    assert "anonymizer" not in enrich(geo, "203.0.113.11")["wireguard"]["geo"]["source"]
    assert "anonymizer" not in enrich(geo, "198.51.100.200")["wireguard"]["geo"]["source"]


def test_private_and_loopback_addresses_get_a_scope_and_no_place(tmp_path: Path, dbs: dict[str, str]) -> None:
    geo = build(tmp_path, **dbs)
    doc = enrich(geo, "10.222.0.11", "127.0.0.1")
    assert "geo" not in doc["source"] and "as" not in doc["source"]
    assert doc["wireguard"]["geo"] == {"source": {"scope": "private"}, "destination": {"scope": "loopback"}}


def test_object_location_format(tmp_path: Path, dbs: dict[str, str]) -> None:
    geo = build(tmp_path, location_format="object", **dbs)
    assert enrich(geo, "198.51.100.1")["source"]["geo"]["location"] == {"lat": 52.52, "lon": 13.4}


def test_existing_geo_fields_are_kept(tmp_path: Path, dbs: dict[str, str]) -> None:
    geo = build(tmp_path, **dbs)
    doc = {"source": {"ip": "203.0.113.11", "geo": {"country_iso_code": "FR"}}}
    out = geo(envelope(doc))
    assert out is not None and out.data["source"]["geo"] == {"country_iso_code": "FR"}
    assert out.data["source"]["as"]["number"] == 64500


def test_a_database_swapped_on_disk_is_picked_up(tmp_path: Path, dbs: dict[str, str]) -> None:
    geo = build(tmp_path, reload_check_interval_secs=0, **dbs)
    assert enrich(geo, "203.0.113.11")["source"]["geo"]["country_iso_code"] == "NL"
    assert enrich(geo, "203.0.113.11")["source"]["geo"]["country_iso_code"] == "NL"  # cached
    write_city(Path(dbs["city_db_path"]), MOVED)  # atomic rename, as geoipupdate does
    assert enrich(geo, "203.0.113.11")["source"]["geo"]["country_iso_code"] == "SE"
    assert "geo" not in enrich(geo, "198.51.100.1")["source"]  # the new file no longer has it
    st = geo.status()
    assert st["databases"]["city"]["reloads"] == 1
    assert st["cache"]["hits"] == 0  # the reload emptied the cache


def test_an_in_place_rewrite_is_picked_up_on_the_next_check(tmp_path: Path, dbs: dict[str, str]) -> None:
    geo = build(tmp_path, reload_check_interval_secs=3600, **dbs)
    assert enrich(geo, "203.0.113.11")["source"]["geo"]["country_iso_code"] == "NL"
    new = write_city(tmp_path / "other.mmdb", MOVED)
    Path(dbs["city_db_path"]).write_bytes(new.read_bytes())
    assert enrich(geo, "203.0.113.11")["source"]["geo"]["country_iso_code"] == "NL"  # not checked yet
    geo.check_now()
    assert enrich(geo, "203.0.113.11")["source"]["geo"]["country_iso_code"] == "SE"


def test_missing_database_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "GeoLite2-City.mmdb"
    with pytest.raises(ConfigError) as info:
        build(tmp_path, city_db_path=str(missing))
    text = info.value.render()
    assert str(missing) in text and "not found" in text and "geoipupdate" in text


@pytest.mark.parametrize("content", [b"", b"not a database at all\n" * 50, b"\x1f\x8b\x08\x00gzip"])
def test_corrupt_database_is_a_clear_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "GeoLite2-ASN.mmdb"
    bad.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        build(tmp_path, asn_db_path=str(bad))
    text = info.value.render()
    assert str(bad) in text and "not a valid MaxMind DB" in text and "download it again" in text


def test_a_database_of_the_wrong_kind_is_refused(tmp_path: Path, dbs: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        build(tmp_path, city_db_path=dbs["asn_db_path"])
    assert "'GeoLite2-ASN' database, not a city database" in info.value.render()


def test_a_corrupt_replacement_keeps_the_last_good_version_and_is_counted(
    tmp_path: Path, dbs: dict[str, str]
) -> None:
    geo = build(tmp_path, reload_check_interval_secs=0, **dbs)
    tmp = tmp_path / "partial.mmdb"
    tmp.write_bytes(b"truncated download")
    os.replace(tmp, dbs["city_db_path"])
    doc = enrich(geo, "203.0.113.11")
    assert doc["source"]["geo"]["country_iso_code"] == "NL"
    st = geo.status()["databases"]["city"]
    assert st["reload_errors"] == 1 and dbs["city_db_path"] in st["last_error"]
    assert geo.telemetry.errors["DatabaseReloadError@reload"] == 1
    enrich(geo, "203.0.113.11")
    assert geo.telemetry.errors["DatabaseReloadError@reload"] == 1  # reported once, not per event


def test_a_lookup_in_a_damaged_database_passes_the_event_without_geo(
    tmp_path: Path, dbs: dict[str, str]
) -> None:
    geo = build(
        tmp_path,
        reload_check_interval_secs=3600,
        cache_max_entries=0,
        fallback="none",
        city_db_path=dbs["city_db_path"],
    )
    with maxminddb.open_database(dbs["city_db_path"]) as r:
        tree = r.metadata().node_count * r.metadata().record_size * 2 // 8
    with open(dbs["city_db_path"], "r+b") as f:  # damaged in place: the search tree overwritten
        f.write(b"\xff" * tree)
    docs = [enrich(geo, "203.0.113.11", "198.51.100.1") for _ in range(3)]
    assert all("geo" not in d["source"] and "geo" not in d["destination"] for d in docs)
    assert geo.status()["without_geo"] == 6 and geo.status()["lookup_errors"] == 6
    assert geo.telemetry.errors["DatabaseLookupError@lookup"] == 6
    assert "search tree is corrupt" in (geo.telemetry.last_error or "")


def test_an_unreadable_address_is_counted_and_the_event_passes(tmp_path: Path, dbs: dict[str, str]) -> None:
    geo = build(tmp_path, **dbs)
    doc = enrich(geo, "not-an-ip", "203.0.113.11")
    assert "geo" not in doc["source"] and doc["destination"]["geo"]["country_iso_code"] == "NL"
    assert geo.status()["invalid_addresses"] == 1
    assert geo.telemetry.errors["InvalidAddress@lookup"] == 1


def test_cache_hit_rate_is_reported(tmp_path: Path, dbs: dict[str, str]) -> None:
    geo = build(tmp_path, **dbs)
    for _ in range(9):
        enrich(geo, "203.0.113.11")
    enrich(geo, "198.51.100.1")
    cache = geo.status()["cache"]
    assert (cache["hits"], cache["misses"], cache["size"]) == (8, 2, 2)
    assert cache["hit_rate"] == 0.8
    sizes = sum(os.path.getsize(p) for p in dbs.values())
    assert geo.status()["memory"] == {"mapped_database_bytes": sizes, "fallback_table_bytes": 0}


def test_bundled_fallback_gives_country_and_as_name_for_public_addresses(tmp_path: Path) -> None:
    geo = build(tmp_path)  # no database configured at all: a fresh install
    doc = enrich(geo, "8.8.8.8", "2001:4860:4860::8888")
    for side in ("source", "destination"):
        assert doc[side]["geo"] == {"country_iso_code": "US", "country_name": "United States"}
        assert doc[side]["as"] == {"organization": {"name": "GOOGLE"}}
        assert doc["wireguard"]["geo"][side]["databases"] == ["bundled:iptocc", "bundled:geoip2fast"]
    assert validate(doc) == []
    fb = geo.status()["fallback"]
    assert fb["country"] == "iptocc" and "GeoLite2" in fb["as"] and fb["problems"] == []
    assert geo.status()["memory"]["fallback_table_bytes"] > 5_000_000


def test_bundled_fallback_never_places_non_public_addresses(tmp_path: Path) -> None:
    geo = build(tmp_path)
    doc = enrich(geo, "203.0.113.11", "10.0.0.1")
    assert "geo" not in doc["source"] and "as" not in doc["source"] and "geo" not in doc["destination"]
    assert doc["wireguard"]["geo"]["source"] == {"scope": "documentation"}


def test_bundled_fallback_fills_only_what_no_database_covers(tmp_path: Path, dbs: dict[str, str]) -> None:
    geo = build(tmp_path, asn_db_path=dbs["asn_db_path"])
    doc = enrich(geo, "8.8.8.8")
    assert doc["source"]["geo"]["country_iso_code"] == "US"
    assert "as" not in doc["source"]  # the ASN database is configured and has no entry: no guess
    assert build(tmp_path, fallback="none").fallback is None
    assert "geo" not in enrich(build(tmp_path, fallback="none"), "8.8.8.8")["source"]


def test_only_the_configured_sides_are_enriched(tmp_path: Path, dbs: dict[str, str]) -> None:
    geo = build(tmp_path, fields=["destination"], **dbs)
    doc = enrich(geo, "203.0.113.11", "198.51.100.1")
    assert "geo" not in doc["source"] and doc["destination"]["geo"]["country_iso_code"] == "DE"
    assert list(doc["wireguard"]["geo"]) == ["destination"]


def test_events_without_addresses_pass_untouched(tmp_path: Path, dbs: dict[str, str]) -> None:
    geo = build(tmp_path, **dbs)
    doc = enrich(geo)
    assert "wireguard" not in doc
