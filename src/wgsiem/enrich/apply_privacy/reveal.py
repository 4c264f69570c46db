"""``wgsiem privacy reveal``: which identity values a pseudonym stands for, for a holder of the key.

HMAC cannot be inverted, so reveal recomputes the pseudonym of every identifying value the identity
sources know — inventory rows, WireGuard config comment names, and the users of the LDAP directory
``enrich_identity`` reads — and keeps those that match. The matching is pure (:func:`matches`); the
gathering does the I/O (:func:`gather`) from explicit paths or from the ``enrich_identity`` and
``apply_privacy`` transforms of a wgsiem configuration (:func:`sources_from_config`), so reveal
searches exactly what the pipeline enriched with.

Key secrets stay inside :class:`~wgsiem.enrich.apply_privacy.keys.PrivacyKey`: a match names the key
by its id only, and nothing here formats a secret or the LDAP bind password.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wgsiem.errors import WgsiemError

from .keys import PrivacyKey

if TYPE_CHECKING:
    from wgsiem.config.model import Config
    from wgsiem.enrich.enrich_identity.config import LdapConfig
    from wgsiem.enrich.enrich_identity.inventory import Identity

__all__ = [
    "IdentitySources",
    "Match",
    "Pseudonym",
    "gather",
    "matches",
    "parse_pseudonym",
    "sources_from_config",
]

_PSEUDONYM = re.compile(r"^(?:ps:([A-Za-z0-9_.-]{1,32}):)?([0-9a-f]{16,64})$")


@dataclass(frozen=True, slots=True)
class Pseudonym:
    key_id: str | None
    """The key the pseudonym names (``ps:<key id>:<hex>``); ``None`` for a bare hex: try every key."""
    hex: str


def parse_pseudonym(text: str) -> Pseudonym:
    m = _PSEUDONYM.match(text.strip())
    if m is None:
        raise WgsiemError(
            "not a pseudonym", fix="give the value as written in the event, e.g. ps:k2026a:3f2c…"
        )
    return Pseudonym(m.group(1), m.group(2))


@dataclass(frozen=True, slots=True, order=True)
class Match:
    key_id: str
    field: str
    value: str
    public_key: str
    sources: tuple[str, ...]
    """Where the identity came from: ``inventory``, ``config``, ``ldap`` (merged when several list it)."""


def matches(hex_part: str, keys: Iterable[PrivacyKey], identities: Iterable[Identity]) -> list[Match]:
    """Pure: every (key, field, value, peer) whose pseudonym starts with ``hex_part``, sorted; a value
    several sources list is one match naming all of them."""
    keys = list(keys)
    found: dict[tuple[str, str, str, str], tuple[str, ...]] = {}
    for ident in identities:
        for field, value in ident.values().items():
            for k in keys:
                if k.digest(value).startswith(hex_part):
                    at = (k.id, field, value, ident.public_key)
                    had = found.get(at, ())
                    found[at] = had + tuple(s for s in ident.sources if s not in had)
    return sorted(Match(*at, sources) for at, sources in found.items())


@dataclass(frozen=True, slots=True)
class IdentitySources:
    """What reveal searches: inventories, config globs, LDAP directories; and the key file, if known."""

    inventories: tuple[str, ...] = ()
    config_globs: tuple[str, ...] = ()
    ldap: tuple[LdapConfig, ...] = ()
    key_file: str | None = None

    def __bool__(self) -> bool:
        return bool(self.inventories or self.config_globs or self.ldap)

    def plus(self, other: IdentitySources) -> IdentitySources:
        return IdentitySources(
            self.inventories + other.inventories,
            self.config_globs + other.config_globs,
            self.ldap + other.ldap,
            self.key_file or other.key_file,
        )


def sources_from_config(cfg: Config) -> IdentitySources:
    """Every ``enrich_identity`` transform's inventory, config files and LDAP directory, and the key
    file of the (first) ``apply_privacy`` transform."""
    from wgsiem.enrich.apply_privacy.config import ApplyPrivacyConfig
    from wgsiem.enrich.enrich_identity.config import EnrichIdentityConfig

    out = IdentitySources()
    for t in cfg.transforms.values():
        if isinstance(t, EnrichIdentityConfig):
            out = out.plus(
                IdentitySources(
                    (t.inventory_path,) if t.inventory_path else (),
                    tuple(t.config_paths),
                    (t.ldap,) if t.ldap is not None else (),
                )
            )
        elif isinstance(t, ApplyPrivacyConfig) and t.key_file and out.key_file is None:
            out = out.plus(IdentitySources(key_file=t.key_file))
    return out


def gather(sources: IdentitySources, warn: Callable[[str], None]) -> list[Identity]:
    """Read every source (I/O). Bad rows and entries are passed to ``warn`` and skipped; a source
    that cannot be read at all raises (an LDAP failure is an :class:`LdapError` without the password)."""
    from wgsiem.enrich.enrich_identity.config_comments import read_configs
    from wgsiem.enrich.enrich_identity.directory import load_inventory
    from wgsiem.enrich.enrich_identity.ldap_directory import fetch_identities

    identities: list[Identity] = []
    problems: list[WgsiemError] = []
    for path in sources.inventories:
        found, bad = load_inventory(Path(path))
        identities += found
        problems += bad
    if sources.config_globs:
        found, bad = read_configs(list(sources.config_globs), name_as_user=True)
        identities += found
        problems += bad
    for directory in sources.ldap:
        found, bad = fetch_identities(directory)
        identities += found
        problems += bad
    for p in problems:
        warn(p.render())
    return identities
