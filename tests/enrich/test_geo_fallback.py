"""The bundled fallback's AS table: converted once in a child process, cached, read back identical."""

from __future__ import annotations

import importlib.util
import ipaddress
import random
from pathlib import Path

import pytest

from wgsiem.enrich.enrich_geo import fallback


def data_file() -> Path:
    spec = importlib.util.find_spec("geoip2fast")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "geoip2fast-asn-ipv6.dat.gz"


def test_cached_tables_equal_the_package_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    v4, v6, countries, info = fallback._load_cached(data_file())  # child process writes the cache
    (cache,) = (tmp_path / "wgsiem").iterdir()
    assert cache.name.startswith("bundled-as-") and "GeoLite2" in info
    direct4, direct6, direct_countries, _ = fallback._load_as_tables(data_file())
    assert (v4.starts, v4.ends, v4.ids) == (direct4.starts, direct4.ends, direct4.ids)
    assert (v6.starts, v6.ends, v6.ids) == (direct6.starts, direct6.ends, direct6.ids)
    assert countries == direct_countries and countries["US"] == "United States"
    rnd = random.Random(5)
    for _ in range(2000):
        a = ipaddress.IPv4Address(rnd.getrandbits(32))
        assert v4.find(int(a)) == direct4.find(int(a))
    assert v4.find(int(ipaddress.IPv4Address("8.8.8.8"))) == "GOOGLE"
    assert v6.find(int(ipaddress.IPv6Address("2001:4860:4860::8888")) >> 64) == "GOOGLE"


def test_a_damaged_cache_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "c.bin"
    fallback.write_compact(data_file(), out)
    out.write_bytes(out.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated"):
        fallback.read_compact(out)
    out.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a wgsiem AS cache file"):
        fallback.read_compact(out)
