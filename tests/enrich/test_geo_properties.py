"""Any document shape goes through geo and assets without an exception; bad addresses are counted."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.enrich.geo_mmdb import build, context, envelope, write_asn, write_city
from wgsiem.enrich.enrich_assets.config import EnrichAssetsConfig
from wgsiem.enrich.enrich_assets.transform import EnrichAssets
from wgsiem.enrich.enrich_geo.scope import parse_ip
from wgsiem.enrich.enrich_geo.transform import EnrichGeo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "enrich"

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.ip_addresses().map(str),
    st.lists(st.ip_addresses().map(str), max_size=2),
)
_side = st.one_of(_leaf, st.dictionaries(st.sampled_from(["ip", "geo", "as", "port"]), _leaf, max_size=3))
_doc = st.dictionaries(
    st.sampled_from(["source", "destination", "observer", "wireguard", "event"]),
    st.one_of(_side, st.dictionaries(st.sampled_from(["hostname", "ip", "geo", "asset"]), _leaf)),
    max_size=5,
)


@pytest.fixture(scope="module")
def transforms(tmp_path_factory: pytest.TempPathFactory) -> tuple[EnrichGeo, EnrichAssets]:
    d = tmp_path_factory.mktemp("props")
    geo = build(d, city_db_path=str(write_city(d / "c.mmdb")), asn_db_path=str(write_asn(d / "a.mmdb")))
    shutil.copy(FIXTURES / "assets.yaml", d / "assets.yaml")
    assets = EnrichAssets(
        "assets",
        EnrichAssetsConfig(inventory_path=str(d / "assets.yaml"), fields=["source", "destination"]),
        context(d, "assets", "enrich_assets"),
    )
    return geo, assets


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_doc)
def test_any_document_passes_and_every_bad_address_is_counted(
    transforms: tuple[EnrichGeo, EnrichAssets], doc: dict[str, Any]
) -> None:
    geo, assets = transforms
    bad = 0
    for side in ("source", "destination"):
        part = doc.get(side)
        if isinstance(part, dict) and part.get("ip"):
            ip = part["ip"]
            try:
                ok = isinstance(ip, str) and bool(parse_ip(ip))
            except ValueError:
                ok = False
            bad += not ok
    before = geo.invalid_addresses
    out = assets(geo(envelope(doc)))
    assert out is not None
    assert geo.invalid_addresses - before == bad
