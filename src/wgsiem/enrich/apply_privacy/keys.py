"""Pseudonymization keys: a key file with one ``<key id> <base64 secret>`` per line, newest first.

Rotation is a new first line; older lines stay so ``wgsiem privacy reveal`` can still map pseudonyms
made with them (each pseudonym and each event names its key id). The file must be readable by its
owner only, secrets are held as :class:`~pydantic.SecretStr`, and no error ever quotes a line — only
its number.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from wgsiem.errors import ConfigError, Location

__all__ = ["KeyRing", "PrivacyKey", "load_keys", "new_key_line", "parse_keys"]

KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class PrivacyKey:
    id: str
    secret: SecretStr

    def __repr__(self) -> str:
        return f"PrivacyKey(id={self.id!r}, secret=<secret>)"

    def digest(self, value: str) -> str:
        """HMAC-SHA256(secret, value) in hex."""
        raw = base64.b64decode(self.secret.get_secret_value())
        return hmac.new(raw, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def hasher(self) -> hmac.HMAC:
        """A keyed HMAC state to ``copy()`` per value (saves re-keying on the hot path)."""
        return hmac.new(base64.b64decode(self.secret.get_secret_value()), digestmod=hashlib.sha256)


@dataclass(frozen=True, slots=True)
class KeyRing:
    keys: tuple[PrivacyKey, ...]
    active: PrivacyKey

    def get(self, key_id: str) -> PrivacyKey | None:
        return next((k for k in self.keys if k.id == key_id), None)


def parse_keys(text: str, file: str) -> tuple[PrivacyKey, ...]:
    """Pure: the keys of a key file, in file order. Raises :class:`ConfigError` listing every bad line."""
    keys: list[PrivacyKey] = []
    problems: list[ConfigError] = []
    ids: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split()
        if len(parts) != 2:
            problems.append(
                ConfigError("key line is not '<key id> <base64 secret>'", location=Location(file, n))
            )
            continue
        kid, b64 = parts
        if not KEY_ID.match(kid):
            problems.append(
                ConfigError(
                    "bad key id",
                    location=Location(file, n),
                    fix="use 1-32 characters of letters, digits, '_', '.', '-'",
                )
            )
            continue
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) < MIN_SECRET_BYTES:
            problems.append(
                ConfigError(
                    f"key {kid}: the secret is not base64 of at least {MIN_SECRET_BYTES} bytes",
                    location=Location(file, n),
                    fix="make one with `wgsiem privacy new-key`",
                )
            )
            continue
        if kid in ids:
            problems.append(ConfigError(f"key id {kid} repeats line {ids[kid]}", location=Location(file, n)))
            continue
        ids[kid] = n
        keys.append(PrivacyKey(kid, SecretStr(b64)))
    if problems:
        raise ConfigError("bad privacy key file", problems=list(problems))
    if not keys:
        raise ConfigError(
            "the privacy key file holds no key",
            location=Location(file),
            fix="add one with `wgsiem privacy new-key --key-file FILE --id ID`",
        )
    return tuple(keys)


def check_mode(path: Path) -> None:
    """Refuse a key file that group or others could read or write."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the privacy key file ({exc.strerror})",
            location=Location(str(path)),
            fix="create it with `wgsiem privacy new-key` or correct key_file",
        ) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the privacy key file is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o})",
            location=Location(str(path)),
            fix=f"chmod 600 {path}",
        )


def load_keys(path: str | Path, active_key_id: str | None = None) -> KeyRing:
    """The key ring from ``path`` (mode checked); the active key is ``active_key_id`` or the first."""
    p = Path(path)
    check_mode(p)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ConfigError("cannot read the privacy key file as text", location=Location(str(p))) from None
    keys = parse_keys(text, str(p))
    active = keys[0]
    if active_key_id is not None:
        found = next((k for k in keys if k.id == active_key_id), None)
        if found is None:
            raise ConfigError(
                f"active_key_id {active_key_id} is not in the key file",
                location=Location(str(p)),
                fix="add that key or correct active_key_id",
            )
        active = found
    return KeyRing(keys, active)


def new_key_line(key_id: str) -> str:
    """A fresh key line: 32 random bytes."""
    if not KEY_ID.match(key_id):
        raise ConfigError("bad key id", fix="use 1-32 characters of letters, digits, '_', '.', '-'")
    return f"{key_id} {base64.b64encode(secrets.token_bytes(32)).decode()}\n"
