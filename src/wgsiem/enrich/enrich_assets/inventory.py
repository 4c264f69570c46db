"""Pure parsing of the asset inventory (YAML or CSV text) into typed assets and located problems.

A bad row never hides the good ones: :func:`parse_inventory` returns every asset it could read and one
:class:`~wgsiem.errors.ParseError` per bad row, each with ``file:line`` and how to fix it. A file that
cannot be read at all (not YAML, no header) is a single problem and no assets.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass
from typing import Any, Final

from wgsiem.enrich.inventory_rows import Row, csv_rows, load_yaml, mapping_rows
from wgsiem.errors import Location, ParseError

__all__ = ["CRITICALITY_LEVELS", "FIELDS", "Asset", "AssetTable", "parse_inventory"]

CRITICALITY_LEVELS: Final[dict[str, int]] = {
    "low": 1,
    "medium": 2,
    "high": 3,
    "very_high": 4,
    "critical": 5,
}
_LEVEL_NAME = {v: k for k, v in CRITICALITY_LEVELS.items()}
FIELDS: Final = ("cidr", "hostname", "name", "owner", "department", "criticality", "environment", "tags")
_TEXT = ("name", "owner", "department", "environment")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Asset:
    """One inventory row: a network (or single address) or a hostname, and what is known about it."""

    name: str
    network: Network | None
    hostname: str | None
    owner: str | None
    department: str | None
    criticality: int | None
    environment: str | None
    tags: tuple[str, ...]
    location: Location

    def document(self) -> dict[str, Any]:
        """The ``wireguard.asset.<side>`` object (a fresh dict each call)."""
        out: dict[str, Any] = {"name": self.name}
        if self.network is not None:
            out["network"] = str(self.network)
        if self.hostname is not None:
            out["hostname"] = self.hostname
        if self.owner:
            out["owner"] = self.owner
        if self.department:
            out["department"] = self.department
        if self.criticality is not None:
            out["criticality"] = self.criticality
            out["criticality_level"] = _LEVEL_NAME[self.criticality]
        if self.environment:
            out["environment"] = self.environment
        if self.tags:
            out["tags"] = list(self.tags)
        return out


class AssetTable:
    """Longest-prefix match over the networks, exact match over hostnames (case-insensitive)."""

    def __init__(self, assets: list[Asset]) -> None:
        self.assets = assets
        self.by_hostname: dict[str, Asset] = {}
        levels: dict[int, dict[int, dict[int, Asset]]] = {4: {}, 6: {}}
        for a in assets:
            if a.hostname is not None:
                self.by_hostname[a.hostname.lower()] = a
            if a.network is not None:
                n = a.network
                shift = n.max_prefixlen - n.prefixlen
                levels[n.version].setdefault(shift, {})[int(n.network_address) >> shift] = a
        # per version: (shift, {network >> shift: asset}), most specific (smallest shift) first
        self._levels = {v: sorted(by_shift.items()) for v, by_shift in levels.items()}

    def match_ip(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Asset | None:
        value = int(addr)
        for shift, table in self._levels[addr.version]:
            hit = table.get(value >> shift)
            if hit is not None:
                return hit
        return None

    def match_hostname(self, name: str) -> Asset | None:
        return self.by_hostname.get(name.lower())


def _criticality(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int) and 1 <= value <= 5:
        return value
    if isinstance(value, str):
        text = value.strip().lower().replace("-", "_").replace(" ", "_")
        if text.isdigit() and 1 <= int(text) <= 5:
            return int(text)
        if text in CRITICALITY_LEVELS:
            return CRITICALITY_LEVELS[text]
    raise ValueError


def _tags(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        parts = value.replace(";", ",").replace("|", ",").split(",")
        return tuple(p.strip() for p in parts if p.strip())
    if isinstance(value, list) and all(isinstance(t, str | int) for t in value):
        return tuple(str(t).strip() for t in value if str(t).strip())
    raise ValueError


def _row(raw: dict[str, Any], loc: Location, seen: dict[str, Location]) -> tuple[Asset | None, list[str]]:
    """An asset from one row, or the problems (each a 'what — fix' text) that keep it out."""
    problems: list[str] = []
    unknown = sorted(str(k) for k in raw if k not in FIELDS)
    if unknown:
        problems.append(f"unknown column(s) {', '.join(map(str, unknown))} — use only {', '.join(FIELDS)}")
    cidr = raw.get("cidr")
    host = raw.get("hostname")
    cidr = None if cidr in (None, "") else str(cidr).strip()
    host = None if host in (None, "") else str(host).strip()
    network: Network | None = None
    if (cidr is None) == (host is None):
        problems.append("needs exactly one of cidr or hostname — write cidr: 10.0.0.0/24 or hostname: db1")
    elif cidr is not None:
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            hint = ""
            with contextlib.suppress(ValueError):
                hint = f"; did you mean {ipaddress.ip_network(cidr, strict=False)}?"
            problems.append(f"cidr {cidr!r} is not a network ({exc}) — write an address or a CIDR{hint}")
    key = str(network) if network is not None else (f"host:{host.lower()}" if host else None)
    if key is not None and key in seen:
        problems.append(
            f"{key} is already listed at line {seen[key].line} — keep one row per network or host"
        )
    name = raw.get("name")
    if name in (None, ""):
        problems.append("name is missing — give every asset a name")
    crit: int | None = None
    if raw.get("criticality") not in (None, ""):
        try:
            crit = _criticality(raw["criticality"])
        except ValueError:
            problems.append(
                f"criticality {raw['criticality']!r} is not 1–5 or one of {', '.join(CRITICALITY_LEVELS)}"
                " — use a number 1 (low) to 5 (critical) or a level name"
            )
    try:
        tags = _tags(raw.get("tags"))
    except ValueError:
        problems.append("tags must be a list of words or a text separated by ; or , — e.g. database;pci")
        tags = ()
    text: dict[str, str | None] = {}
    for f in _TEXT:
        v = raw.get(f)
        if v is not None and not isinstance(v, str | int | float):
            problems.append(f"{f} must be text, not {type(v).__name__}")
        text[f] = None if v in (None, "") else str(v).strip()
    if problems:
        return None, problems
    if key is not None:
        seen[key] = loc
    asset = Asset(
        name=str(text["name"]),
        network=network,
        hostname=host,
        owner=text["owner"],
        department=text["department"],
        criticality=crit,
        environment=text["environment"].lower() if text["environment"] else None,
        tags=tags,
        location=loc,
    )
    return asset, []


def _yaml_rows(text: str, file: str) -> list[Row]:
    doc = load_yaml(text, file)
    if isinstance(doc, dict):
        doc = doc.get("assets")
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise ParseError(
            "the inventory must be a list of assets",
            location=Location(file, 1),
            fix="write 'assets:' followed by '- cidr: …' entries",
        )
    return mapping_rows(doc, file)


def _check_header(header: list[str], loc: Location) -> None:
    if "name" not in header or not ({"cidr", "hostname"} & set(header)):
        raise ParseError(
            "the CSV header must name the columns",
            location=loc,
            fix=f"start the file with a header row such as {','.join(FIELDS)}",
        )


def _csv_rows(text: str, file: str) -> list[Row]:
    return csv_rows(text, file, _check_header)


def parse_inventory(text: str, file: str) -> tuple[list[Asset], list[ParseError]]:
    """Assets and per-row problems from an inventory; the format follows the file name (.csv or YAML).

    Raises :class:`ParseError` only when the file as a whole cannot be read."""
    rows = _csv_rows(text, file) if file.lower().endswith(".csv") else _yaml_rows(text, file)
    assets: list[Asset] = []
    problems: list[ParseError] = []
    seen: dict[str, Location] = {}
    for raw, loc in rows:
        if "__bad__" in raw:
            problems.append(
                ParseError(
                    f"bad inventory row: {raw['__bad__']}",
                    location=loc,
                    fix="one asset per row, with the header's columns",
                )
            )
            continue
        asset, row_problems = _row(raw, loc, seen)
        if asset is not None:
            assets.append(asset)
        for p in row_problems:
            what, _, fix = p.partition(" — ")
            problems.append(ParseError(f"bad inventory row: {what}", location=loc, fix=fix or None))
    return assets, problems
