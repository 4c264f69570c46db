"""AS numbers: the bundled fallback has none to give (geoip2fast keeps AS names only), so it fills
``as.organization.name`` and never guesses ``as.number``; a free ASN database that needs no account
(DB-IP's IP-to-ASN Lite, MaxMind format) at ``asn_db_path`` gives the numbers. See docs/enrich/geo.md
"AS numbers"."""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from pathlib import Path

from tests.enrich.geo_mmdb import _write, build, enrich
from wgsiem.enrich.enrich_geo import fallback


def _geoip2fast_asn_file() -> Path:
    spec = importlib.util.find_spec("geoip2fast")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "geoip2fast-asn-ipv6.dat.gz"


def test_geoip2fast_keeps_an_index_into_its_name_list_not_the_as_number() -> None:
    """Why the fallback has no numbers: geoip2fast's converter (``geoip2dat.py``) numbers AS names as
    it meets them and stores that index per network; the AS number of the MaxMind CSV is dropped."""
    with gzip.open(_geoip2fast_asn_file(), "rb") as f:
        _version, _info, _total, db = pickle.load(f)
    names, id_chunks = db[3], db[7]  # the layout fallback._load_as_tables unpacks
    ids = {i for chunk in id_chunks for i in chunk}
    assert max(ids) < len(names)  # every id points into the name list: dense indices …
    assert len(ids) > 0.95 * len(names)  # … one per distinct name
    assert names[0] == "<unknown>" and "GOOGLE" in names


def test_the_bundled_fallback_gives_the_as_name_and_never_a_number(tmp_path: Path) -> None:
    doc = enrich(build(tmp_path), "8.8.8.8", "2001:4860:4860::8888")
    assert doc["source"]["as"] == {"organization": {"name": "GOOGLE"}}
    assert doc["destination"]["as"] == {"organization": {"name": "GOOGLE"}}
    assert doc["wireguard"]["geo"]["source"]["databases"] == ["bundled:iptocc", "bundled:geoip2fast"]


def test_a_dbip_asn_lite_database_at_asn_db_path_gives_numbers(tmp_path: Path) -> None:
    """DB-IP's free IP-to-ASN Lite ``.mmdb`` (CC BY 4.0, monthly, no account) carries the database
    type ``DBIP-ASN-Lite (compat=GeoLite2-ASN)`` and GeoLite2-ASN's record layout; the ASN reader takes
    it as it is and its number wins over the fallback's name."""
    path = _write(
        tmp_path / "dbip-asn-lite.mmdb",
        "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
        {"8.8.8.0/24": {"autonomous_system_number": 15169, "autonomous_system_organization": "Google LLC"}},
    )
    geo = build(tmp_path, asn_db_path=str(path))
    doc = enrich(geo, "8.8.8.8", "1.1.1.1")
    assert doc["source"]["as"] == {"number": 15169, "organization": {"name": "Google LLC"}}
    assert "DBIP-ASN-Lite (compat=GeoLite2-ASN)" in doc["wireguard"]["geo"]["source"]["databases"]
    assert "as" not in doc["destination"]  # with an ASN database the fallback's AS half stands down
    assert fallback.bundled_data().as_source is not None
