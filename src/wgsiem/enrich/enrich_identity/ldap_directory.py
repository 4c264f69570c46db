"""Identities from an LDAP directory (``ldap3``): each user entry lists its peer keys in one attribute.

A refresh binds, runs one paged search and returns every identity found; a key listed on two entries
is kept from the first and reported. The bind password is a secret: it is read from a file that only
its owner may read, held as :class:`~pydantic.SecretStr`, and scrubbed from any error text.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from wgsiem.errors import ConfigError, Location, WgsiemError

from .config import LdapConfig
from .inventory import COLUMNS, RISK_LEVELS, Identity, is_public_key

__all__ = ["LdapError", "fetch_identities", "identities_from_entries", "read_secret_file"]


class LdapError(WgsiemError):
    """The directory could not be read."""


def read_secret_file(path: str, what: str) -> SecretStr:
    """A secret from a file that group and others cannot read (errors never include its content)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read the file ({exc.strerror})", location=Location(path)) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{what}: the file is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o})",
            location=Location(path),
            fix=f"chmod 600 {path}",
        )
    try:
        return SecretStr(Path(path).read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{what}: cannot read the file as text", location=Location(path)) from None


def identities_from_entries(
    entries: list[tuple[str, dict[str, Any]]], cfg: LdapConfig
) -> tuple[list[Identity], list[WgsiemError]]:
    """Pure: (dn, attributes) search results → identities, one per key value; located problems."""
    out: list[Identity] = []
    problems: list[WgsiemError] = []
    seen: dict[str, str] = {}
    for dn, attrs in entries:
        low = {k.lower(): v for k, v in attrs.items()}

        def first(attr: str, low: dict[str, Any] = low) -> str | None:
            v = low.get(attr.lower())
            if isinstance(v, list):
                v = v[0] if v else None
            if v is None:
                return None
            s = str(v).strip()
            return s or None

        values = {f: first(a) for f, a in cfg.attributes.items() if f in COLUMNS[1:]}
        risk = values.get("risk")
        if risk is not None and risk.lower() not in RISK_LEVELS:
            problems.append(LdapError("unknown risk level; ignored", location=Location(dn)))
            values["risk"] = None
        elif risk is not None:
            values["risk"] = risk.lower()
        keys = low.get(cfg.key_attribute.lower()) or []
        if not isinstance(keys, list):
            keys = [keys]
        for raw in keys:
            key = str(raw).strip()
            if not is_public_key(key):
                problems.append(
                    LdapError(
                        f"{cfg.key_attribute} holds a value that is not a WireGuard public key",
                        location=Location(dn),
                        fix="store the base64 public key (`wg show <iface> peers`), never a private key",
                    )
                )
                continue
            if key in seen:
                problems.append(
                    LdapError(
                        f"the key is also listed on {seen[key]}; kept from there", location=Location(dn)
                    )
                )
                continue
            seen[key] = dn
            out.append(Identity(public_key=key, **values, sources=("ldap",), location=Location(dn)))
    return out, problems


def fetch_identities(cfg: LdapConfig) -> tuple[list[Identity], list[WgsiemError]]:
    """Bind and search the directory (I/O). Raises :class:`LdapError` if it cannot be read."""
    try:
        import ldap3
        from ldap3.core.exceptions import LDAPException
    except ImportError:
        raise ConfigError(
            "enrich_identity: LDAP needs the ldap3 package", fix="pip install 'wgsiem[ldap]' (ldap3)"
        ) from None
    password = cfg.bind_password
    if cfg.bind_password_file is not None:
        password = read_secret_file(cfg.bind_password_file, "enrich_identity: LDAP bind password")
    secret = password.get_secret_value() if password is not None else None

    def scrub(text: str) -> str:
        return text.replace(secret, "<secret>") if secret else text

    attrs = sorted({cfg.key_attribute, *cfg.attributes.values()})
    try:
        server = ldap3.Server(cfg.url, connect_timeout=cfg.timeout_secs, get_info=ldap3.NONE)
        conn = ldap3.Connection(
            server,
            user=cfg.bind_dn,
            password=secret,
            read_only=True,
            receive_timeout=max(1, int(cfg.timeout_secs)),  # ldap3 packs it as a C long
            raise_exceptions=True,
        )
        try:
            conn.open()
            if cfg.start_tls:
                conn.start_tls()
            conn.bind()
            results = conn.extend.standard.paged_search(
                cfg.base_dn,
                cfg.search_filter,
                attributes=attrs,
                paged_size=500,
                generator=True,
            )
            entries: list[tuple[str, dict[str, Any]]] = []
            for r in results:
                if r.get("type") == "searchResEntry":
                    entries.append((r["dn"], dict(r["attributes"])))
                    if len(entries) >= cfg.size_limit:
                        break
        finally:
            conn.unbind()
    except (LDAPException, OSError) as exc:
        raise LdapError(
            f"enrich_identity: LDAP search failed ({type(exc).__name__}: {scrub(str(exc))})",
            location=Location(cfg.url),
            fix="check url, bind_dn, the password file and base_dn",
        ) from None
    return identities_from_entries(entries, cfg)
