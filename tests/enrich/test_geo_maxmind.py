"""enrich_geo against MaxMind's own test databases: every network in their source JSON resolves as
documented (first and last address of each, against the most specific network that holds it)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from tests.enrich.geo_mmdb import build, enrich
from tests.support.ecs import validate

MAXMIND = Path(__file__).resolve().parents[3] / "shared" / "reference" / "maxmind"
if not MAXMIND.exists():  # CI clones main beside a copy of shared/
    MAXMIND = Path.cwd().parent / "shared" / "reference" / "maxmind"

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(key: str) -> Net:
    net = ipaddress.ip_network(key, strict=False)
    # "::1.2.0.0/112" is how MaxMind writes IPv4 networks inside an IPv6 tree
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and int(net.network_address) < 2**32:
        return ipaddress.ip_network(f"{ipaddress.IPv4Address(int(net.network_address))}/{net.prefixlen - 96}")
    return net


def source_json(name: str) -> list[tuple[Net, dict[str, Any]]]:
    rows = json.loads((MAXMIND / f"{name}.source.json").read_text())
    return [(_network(k), v) for row in rows for k, v in row.items()]


def probes(table: list[tuple[Net, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """(address, expected record): first and last address of every network, expected from the most
    specific network of the table that contains the address."""
    out = []
    for net, _ in table:
        for addr in (net.network_address, net.broadcast_address):
            holders = [(n, rec) for n, rec in table if n.version == addr.version and addr in n]
            _, rec = max(holders, key=lambda h: h[0].prefixlen)
            out.append((str(addr), rec))
    return out


def test_every_city_test_network_resolves_as_the_source_json_says(tmp_path: Path) -> None:
    geo = build(tmp_path, city_db_path=str(MAXMIND / "GeoIP2-City-Test.mmdb"), fallback="none")
    cases = probes(source_json("GeoIP2-City-Test"))
    assert len(cases) >= 400
    checked = 0
    for ip, rec in cases:
        doc = enrich(geo, ip)
        g = doc["source"].get("geo", {})
        country = rec.get("country") or rec.get("registered_country")
        if country and country.get("iso_code"):
            assert g["country_iso_code"] == country["iso_code"], ip
            assert g["country_name"] == country["names"]["en"], ip
            checked += 1
        if "city" in rec:
            assert g["city_name"] == rec["city"]["names"]["en"], ip
        if "continent" in rec:
            assert g["continent_code"] == rec["continent"]["code"], ip
        loc = rec.get("location", {})
        if "latitude" in loc:
            lon, lat = g["location"].removeprefix("POINT (").removesuffix(")").split()
            assert (float(lon), float(lat)) == (loc["longitude"], loc["latitude"]), ip
        if "time_zone" in loc:
            assert g["timezone"] == loc["time_zone"], ip
        if rec.get("subdivisions") and country and "iso_code" in rec["subdivisions"][0]:
            assert g["region_iso_code"] == f"{country['iso_code']}-{rec['subdivisions'][0]['iso_code']}"
        if "postal" in rec:
            assert g["postal_code"] == rec["postal"]["code"], ip
        assert validate(doc) == [], ip
    assert checked >= 300


def test_every_asn_test_network_resolves_as_the_source_json_says(tmp_path: Path) -> None:
    geo = build(tmp_path, asn_db_path=str(MAXMIND / "GeoLite2-ASN-Test.mmdb"), fallback="none")
    cases = probes(source_json("GeoLite2-ASN-Test"))
    assert len(cases) >= 1400
    for ip, rec in cases:
        doc = enrich(geo, ip)
        as_ = doc["source"]["as"]
        assert as_.get("number") == rec.get("autonomous_system_number"), ip
        if "autonomous_system_organization" in rec:
            assert as_["organization"]["name"] == rec["autonomous_system_organization"], ip
        assert doc["wireguard"]["geo"]["source"]["databases"] == ["GeoLite2-ASN"]
        assert validate(doc) == [], ip


FLAGS = {
    "is_anonymous": "any",
    "is_anonymous_vpn": "vpn",
    "is_hosting_provider": "hosting",
    "is_public_proxy": "public_proxy",
    "is_residential_proxy": "residential_proxy",
    "is_tor_exit_node": "tor",
}


def test_every_anonymous_ip_test_network_is_marked_as_the_source_json_says(tmp_path: Path) -> None:
    geo = build(
        tmp_path, anonymous_ip_db_path=str(MAXMIND / "GeoIP2-Anonymous-IP-Test.mmdb"), fallback="none"
    )
    cases = probes(source_json("GeoIP2-Anonymous-IP-Test"))
    assert len(cases) >= 20
    for ip, rec in cases:
        doc = enrich(geo, ip)
        expected = {FLAGS[k]: True for k, v in rec.items() if v is True}
        assert doc["wireguard"]["geo"]["source"].get("anonymizer") == expected, ip


def test_an_address_outside_every_network_gets_no_place(tmp_path: Path) -> None:
    geo = build(
        tmp_path,
        city_db_path=str(MAXMIND / "GeoIP2-City-Test.mmdb"),
        asn_db_path=str(MAXMIND / "GeoLite2-ASN-Test.mmdb"),
        fallback="none",
    )
    doc = enrich(geo, "8.8.8.8")  # not in MaxMind's test data
    assert "geo" not in doc["source"] and "as" not in doc["source"]
    assert doc["wireguard"]["geo"]["source"] == {"scope": "global"}


@pytest.mark.parametrize("name", ["GeoLite2-City-Test", "GeoLite2-Country-Test"])
def test_the_geolite_test_databases_open_and_answer_for_their_first_network(
    tmp_path: Path, name: str
) -> None:
    import maxminddb

    key = "city_db_path" if "City" in name else "country_db_path"
    path = MAXMIND / f"{name}.mmdb"
    geo = build(tmp_path, **{key: str(path)}, fallback="none")
    with maxminddb.open_database(str(path)) as reader:
        net, rec = next((n, r) for n, r in reader if isinstance(r, dict) and r.get("country"))
    doc = enrich(geo, str(net.network_address))
    assert doc["source"]["geo"]["country_iso_code"] == rec["country"]["iso_code"]
