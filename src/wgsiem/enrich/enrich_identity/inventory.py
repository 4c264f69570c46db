"""Pure parsing of the identity inventory (YAML or CSV text): who owns which WireGuard public key.

One row per peer key. A bad row never hides the good ones: :func:`parse_inventory` returns every
identity it could read and one :class:`~wgsiem.errors.ParseError` per bad row, with ``file:line`` and
how to fix it; only a file that is no inventory at all raises. Error messages name the column, never
the value: a mistyped ``public_key`` column may hold a private key.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any, Final

from wgsiem.enrich.inventory_rows import Row, csv_rows, load_yaml, mapping_rows
from wgsiem.errors import Location, ParseError

__all__ = ["COLUMNS", "RISK_LEVELS", "Identity", "is_public_key", "parse_inventory"]

COLUMNS: Final = ("public_key", "name", "email", "id", "full_name", "domain", "department", "device", "risk")
"""The inventory's columns; ``public_key`` and at least one of name/email/id are required."""

RISK_LEVELS: Final = ("unknown", "low", "moderate", "medium", "high", "critical")
"""What ``risk`` may say; ``score_risk`` maps them to a number (docs/enrich/risk.md)."""

_TEXT_MAX = 256
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def is_public_key(value: str) -> bool:
    """A base64 WireGuard key: 44 characters decoding to 32 bytes."""
    if len(value) != 44 or not value.endswith("="):
        return False
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a peer key belongs to, as one identity source knows it."""

    public_key: str
    name: str | None = None
    email: str | None = None
    id: str | None = None
    full_name: str | None = None
    domain: str | None = None
    department: str | None = None
    device: str | None = None
    risk: str | None = None
    peer_name: str | None = None  # friendly name from config comments
    sources: tuple[str, ...] = ()  # "inventory", "ldap", "config"
    location: Location | None = field(default=None, compare=False)

    def merged_with(self, lower: Identity) -> Identity:
        """This identity, with gaps filled from ``lower`` (a lower-priority source for the same key)."""
        values = {
            f: getattr(self, f) if getattr(self, f) is not None else getattr(lower, f)
            for f in (*COLUMNS[1:], "peer_name")
        }
        sources = self.sources + tuple(s for s in lower.sources if s not in self.sources)
        return Identity(self.public_key, **values, sources=sources, location=self.location)

    def user_document(self) -> dict[str, Any]:
        """ECS ``user.*``."""
        out: dict[str, Any] = {}
        for f in ("name", "email", "id", "full_name", "domain"):
            v = getattr(self, f)
            if v is not None:
                out[f] = v
        if self.risk is not None:
            out["risk"] = {"static_level": self.risk}
        return out

    def wireguard_document(self) -> dict[str, Any]:
        """``wireguard.user.*``: what ECS has no field for, and the level ``score_risk`` reads."""
        out: dict[str, Any] = {}
        for f in ("department", "device", "risk"):
            v = getattr(self, f)
            if v is not None:
                out[f] = v
        out["sources"] = list(self.sources)
        return out

    def values(self) -> dict[str, str]:
        """Every identifying value by field (``wgsiem privacy reveal`` recomputes pseudonyms over them)."""
        out = {"public_key": self.public_key}
        for f in (*COLUMNS[1:8], "peer_name"):
            v = getattr(self, f)
            if v is not None:
                out[f] = v
        return out


def parse_inventory(text: str, file: str) -> tuple[list[Identity], list[ParseError]]:
    """Identities and one located problem per bad row; raises :class:`ParseError` for a file that
    cannot be read as an inventory at all (not YAML, no CSV header). YAML is chosen by the file's
    extension, else by content (a ``peers:`` mapping or a list); CSV otherwise."""
    rows = _yaml_rows(text, file) if _looks_yaml(text, file) else _csv_rows(text, file)
    out: list[Identity] = []
    problems: list[ParseError] = []
    seen: dict[str, Location] = {}
    for row, loc in rows:
        ident, errs = _row(row, loc)
        if ident is not None and ident.public_key in seen:
            errs = [
                ParseError(
                    f"public_key is already listed at line {seen[ident.public_key].line}",
                    location=loc,
                    fix="keep one row per peer key",
                )
            ]
            ident = None
        problems.extend(errs)
        if ident is not None:
            seen[ident.public_key] = loc
            out.append(ident)
    return out, problems


def _looks_yaml(text: str, file: str) -> bool:
    low = file.lower()
    if low.endswith((".yaml", ".yml")):
        return True
    if low.endswith(".csv"):
        return False
    head = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
    return head.startswith(("peers:", "- ", "---"))


def _row(row: dict[str, Any], loc: Location) -> tuple[Identity | None, list[ParseError]]:
    def bad(what: str, fix: str) -> tuple[None, list[ParseError]]:
        return None, [ParseError(what, location=loc, fix=fix)]

    if "__bad__" in row:
        return bad(str(row["__bad__"]), "write one mapping per peer with the columns " + ", ".join(COLUMNS))
    unknown = sorted(str(k) for k in row if k not in COLUMNS)
    if unknown:
        return bad(f"unknown column(s) {', '.join(unknown)}", "use only " + ", ".join(COLUMNS))
    text: dict[str, str | None] = {}
    for k in COLUMNS:
        v = row.get(k)
        if v is None or (isinstance(v, str) and not v.strip()):
            text[k] = None
        elif isinstance(v, str | int) and not isinstance(v, bool):
            s = str(v).strip()
            if len(s) > _TEXT_MAX:
                return bad(f"{k} is longer than {_TEXT_MAX} characters", f"shorten {k}")
            text[k] = s
        else:
            return bad(f"{k} must be text", f"write {k} as a plain value")
    key = text["public_key"]
    if key is None:
        return bad("public_key is missing", "add the peer's public key (`wg show <iface> peers`)")
    if not is_public_key(key):
        return bad(
            "public_key is not a WireGuard public key (44 base64 characters)",
            "copy the key from `wg show <iface> peers` — never a private key",
        )
    if not (text["name"] or text["email"] or text["id"]):
        return bad("the row names no user", "give at least one of name, email, id")
    if text["email"] is not None and not _EMAIL.match(text["email"]):
        return bad("email is not an address", "write user@domain")
    risk = text["risk"]
    if risk is not None:
        risk = risk.lower()
        if risk not in RISK_LEVELS:
            return bad(f"risk must be one of {', '.join(RISK_LEVELS)}", "use one of those levels")
    return (
        Identity(
            public_key=key,
            name=text["name"],
            email=text["email"],
            id=text["id"],
            full_name=text["full_name"],
            domain=text["domain"],
            department=text["department"],
            device=text["device"],
            risk=risk,
            sources=("inventory",),
            location=loc,
        ),
        [],
    )


def _yaml_rows(text: str, file: str) -> list[Row]:
    doc = load_yaml(text, file)
    if isinstance(doc, dict):
        doc.pop("__line__", None)
        extra = sorted(str(k) for k in doc if k != "peers")
        if extra:
            raise ParseError(
                f"unknown top-level key(s) {', '.join(extra)}",
                location=Location(file, 1),
                fix="put every entry under 'peers:'",
            )
        doc = doc.get("peers")
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise ParseError(
            "the inventory must be a list of peers",
            location=Location(file, 1),
            fix="write 'peers:' followed by '- public_key: …' entries",
        )
    return mapping_rows(doc, file)


def _check_header(header: list[str], loc: Location) -> None:
    if "public_key" not in header:
        raise ParseError(
            "the CSV header must name the columns",
            location=loc,
            fix=f"start the file with a header row such as {','.join(COLUMNS)}",
        )


def _csv_rows(text: str, file: str) -> list[Row]:
    return csv_rows(text, file, _check_header, strip=False)
