"""The bundled fallback: country and AS organization with no database to download.

Chosen after comparing what PyPI ships (see docs/enrich/geo.md):

* **country** — ``iptocc``: the five Regional Internet Registries' delegation files, compiled into a
  Rust extension (1.8 MB wheel, IPv4 and IPv6, ~100 ns a lookup, MIT/Apache-2.0, data refreshed with
  every release). The country is where the block is *registered*, which agrees with MaxMind for ~95 %
  of IPv4 addresses.
* **AS organization** — the GeoLite2-derived ASN table inside ``geoip2fast`` (the only package on PyPI
  that bundles one, IPv4 and IPv6). Its file holds AS *names*, not numbers — its converter
  (``geoip2dat.py``) replaces MaxMind's ``autonomous_system_number`` with the index of the name — so the
  fallback fills ``as.organization.name`` and never ``as.number`` (re-checked 2026-11-26: no PyPI or
  Debian package bundles IP→AS numbers; numbers need an ASN database such as DB-IP's free ASN Lite at
  ``asn_db_path``; docs/enrich/geo.md "AS numbers"). The table is converted once per machine, in a
  child process, into compact sorted arrays cached under ``$XDG_CACHE_HOME/wgsiem`` (``~/.cache``);
  a process then maps them in milliseconds at ~18 MB, where unpickling the package's file in-process
  costs ~1 s and leaves the process ~200 MB larger (geoip2fast's own loader: ~340 MB).

Either package missing just turns its half off (reported by ``status()``).
"""

from __future__ import annotations

import bisect
import functools
import gzip
import importlib.util
import json
import logging
import os
import pickle
import struct
import subprocess
import sys
from array import array
from pathlib import Path
from typing import Any

__all__ = ["BundledData", "bundled_data"]

log = logging.getLogger(__name__)

_ASN_FILE = "geoip2fast-asn-ipv6.dat.gz"


class _AsTable:
    """Sorted network starts → AS name index, one table per IP version (IPv6 keyed on the top 64 bits)."""

    def __init__(self, starts: array, ends: array, ids: array, names: list[str]) -> None:
        self.starts = starts
        self.ends = ends
        self.ids = ids
        self.names = names

    def find(self, key: int) -> str | None:
        i = bisect.bisect_right(self.starts, key) - 1
        if i < 0 or key > self.ends[i]:
            return None
        name = self.names[self.ids[i]]
        return None if name in ("", "<unknown>") else name

    def nbytes(self) -> int:
        return sum(a.itemsize * len(a) for a in (self.starts, self.ends, self.ids))


def _load_as_tables(path: Path) -> tuple[_AsTable, _AsTable, dict[str, str], str]:
    with gzip.open(path, "rb") as f:
        # The file ships inside an installed package we depend on, not from the network or a user.
        version, info, _total, db = pickle.load(f)
    if version not in (120, 121) or not (info.get("asn") and info.get("country")):
        raise ValueError(f"unexpected geoip2fast data file (version {version}, {info})")
    _mi, _mia, country_names, as_names, _fip, first_ips, _idc, as_ids, _nl, netlens = db
    v4 = (array("Q"), array("Q"), array("I"))
    v6 = (array("Q"), array("Q"), array("I"))
    for chunk_ips, chunk_ids, chunk_lens in zip(first_ips, as_ids, netlens, strict=True):
        for first, aid, plen in zip(chunk_ips, chunk_ids, chunk_lens, strict=True):
            if first < 1 << 32 and plen <= 32:
                v4[0].append(first)
                v4[1].append(first + (1 << (32 - plen)) - 1)
                v4[2].append(aid)
            else:
                hi = first >> 64
                v6[0].append(hi)
                v6[1].append(hi + (1 << (64 - plen)) - 1 if plen <= 64 else hi)
                v6[2].append(aid)
    names = {}
    for item in country_names:
        code, _, name = item.partition(":")
        if len(code) == 2 and code.isalpha():
            names[code] = name
    return _AsTable(*v4, as_names), _AsTable(*v6, as_names), names, str(info.get("info", ""))


_MAGIC = b"WGSIEM-AS-1\n"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wgsiem"


def _cache_file(data_file: Path) -> Path:
    st = data_file.stat()
    return cache_dir() / f"bundled-as-{st.st_size}-{st.st_mtime_ns}.bin"


def write_compact(data_file: Path, out: Path) -> None:
    """Convert geoip2fast's table into the compact cache file (run in a child process)."""
    v4, v6, countries, info = _load_as_tables(data_file)
    header = json.dumps(
        {"v4": len(v4.starts), "v6": len(v6.starts), "names": v4.names, "countries": countries, "info": info}
    ).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(_MAGIC + struct.pack("<Q", len(header)) + header)
        for t in (v4, v6):
            for a in (t.starts, t.ends, t.ids):
                f.write(a.tobytes())
    os.replace(tmp, out)


def read_compact(path: Path) -> tuple[_AsTable, _AsTable, dict[str, str], str]:
    raw = path.read_bytes()
    if not raw.startswith(_MAGIC):
        raise ValueError(f"{path} is not a wgsiem AS cache file")
    at = len(_MAGIC)
    (hlen,) = struct.unpack_from("<Q", raw, at)
    at += 8
    header = json.loads(raw[at : at + hlen])
    at += hlen
    tables = []
    for n in (header["v4"], header["v6"]):
        arrays = []
        for code in ("Q", "Q", "I"):
            a = array(code)
            a.frombytes(raw[at : at + n * a.itemsize])
            at += n * a.itemsize
            arrays.append(a)
        tables.append(_AsTable(arrays[0], arrays[1], arrays[2], header["names"]))
    if at != len(raw):
        raise ValueError(f"{path} is truncated or too long")
    return tables[0], tables[1], header["countries"], header["info"]


def _load_cached(data_file: Path) -> tuple[_AsTable, _AsTable, dict[str, str], str]:
    """The compact tables, converting in a child process on first use; in-process if that fails."""
    try:
        cache = _cache_file(data_file)
        if not cache.exists():
            subprocess.run(
                [sys.executable, "-m", "wgsiem.enrich.enrich_geo.fallback", str(data_file), str(cache)],
                check=True,
                timeout=300,
                capture_output=True,
            )
        return read_compact(cache)
    except (OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        log.warning("bundled AS cache unavailable (%s); reading %s in-process", exc, data_file)
        return _load_as_tables(data_file)


class BundledData:
    """Country (iptocc) and AS organization (geoip2fast's table); each may be unavailable."""

    def __init__(self) -> None:
        self.country_source: str | None = None
        self.as_source: str | None = None
        self.problems: list[str] = []
        self._country: Any = None
        self._v4: _AsTable | None = None
        self._v6: _AsTable | None = None
        self.country_names: dict[str, str] = {}
        try:
            import iptocc

            self._country = iptocc.country_code
            self.country_source = "iptocc"
        except ImportError:
            self.problems.append("iptocc is not installed: no bundled country (pip install iptocc)")
        spec = importlib.util.find_spec("geoip2fast")
        if spec is None or not spec.submodule_search_locations:
            self.problems.append("geoip2fast is not installed: no bundled AS names (pip install geoip2fast)")
        else:
            path = Path(next(iter(spec.submodule_search_locations))) / _ASN_FILE
            try:
                self._v4, self._v6, self.country_names, info = _load_cached(path)
                self.as_source = f"geoip2fast ({info})"
            except Exception as exc:
                self.problems.append(f"cannot read {path}: {exc}")
        for p in self.problems:
            log.warning("enrich_geo bundled fallback: %s", p)

    def country(self, ip: str) -> tuple[str, str | None] | None:
        if self._country is None:
            return None
        code = self._country(ip)
        if not code:
            return None
        return code, self.country_names.get(code)

    def as_org(self, packed: int, version: int) -> str | None:
        if version == 4:
            return self._v4.find(packed) if self._v4 is not None else None
        return self._v6.find(packed >> 64) if self._v6 is not None else None

    def nbytes(self) -> int:
        return sum(t.nbytes() for t in (self._v4, self._v6) if t is not None)


@functools.cache
def bundled_data() -> BundledData:
    """Loaded once per process; every ``enrich_geo`` shares it."""
    return BundledData()


if __name__ == "__main__":  # the child process of _load_cached: python -m … DATA_FILE CACHE_FILE
    write_compact(Path(sys.argv[1]), Path(sys.argv[2]))
