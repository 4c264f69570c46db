"""The ``apply_privacy`` transform: per-field pseudonymize / mask / drop, then scrub the originals.

Where it runs decides what leaves the machine: as the **last transform on the gateway** (edge) no
original identifier is written by any sink there — the NDJSON file, the local store, a forwarder;
on a **central collector** it protects what that collector stores and forwards, while the gateway's own
outputs keep the originals. Identity enrichment must come *before* it in ``transforms:`` (it needs the
real key and writes the user fields this transform then pseudonymizes).

Each changed event carries ``wireguard.privacy``: ``key_id`` (the key that made its pseudonyms) and
the dotted fields ``pseudonymized``, ``masked``, ``dropped``. See :mod:`.policy` for the operations.
"""

from __future__ import annotations

import functools
from typing import Any

from wgsiem.enrich.base import TransformContext
from wgsiem.errors import ConfigError
from wgsiem.event import Envelope

from .config import ApplyPrivacyConfig
from .keys import KeyRing, load_keys
from .policy import apply_policy, mask_ip, pseudonym, scrub, scrub_text

__all__ = ["ApplyPrivacy"]

_CACHE = 65_536


class ApplyPrivacy:
    """See the module docstring; built as ``ApplyPrivacy(transform_id, config, ctx)``."""

    __name__ = "apply_privacy"

    def __init__(self, transform_id: str, config: ApplyPrivacyConfig, ctx: TransformContext) -> None:
        self.transform_id = transform_id
        self.config = config
        self.ctx = ctx
        self.telemetry = ctx.telemetry
        self.keys: KeyRing | None = None
        needs_key = "pseudonymize" in config.fields.values()
        if needs_key:
            if config.key_file is None:
                raise ConfigError(
                    "apply_privacy: pseudonymize needs key_file",
                    fix="create one with `wgsiem privacy new-key --key-file FILE --id ID` and set key_file",
                )
            self.keys = load_keys(config.key_file, config.active_key_id)
        self.key_id = self.keys.active.id if self.keys is not None else None
        self._policies: list[tuple[tuple[str, ...], str, str]] = [
            (tuple(f.split(".")), f, str(a)) for f, a in config.fields.items()
        ]
        hasher = self.keys.active.hasher() if self.keys is not None else None
        kid, n = self.key_id or "", config.pseudonym_hex_chars

        def pseudo(value: str) -> str:
            return pseudonym(hasher, kid, value, n)

        def mask(value: str) -> str | None:
            return mask_ip(value, config.mask_ipv4_prefix, config.mask_ipv6_prefix)

        self._pseudo = functools.lru_cache(maxsize=_CACHE)(pseudo)
        self._mask = functools.lru_cache(maxsize=_CACHE)(mask)
        self._substring = config.scrub == "substring"
        self._scrub = config.scrub != "off"
        self.events_changed = 0

    def __repr__(self) -> str:
        return f"ApplyPrivacy({self.transform_id!r}, key_id={self.key_id!r})"

    def __call__(self, env: Envelope) -> Envelope:
        data = env.data
        applied = apply_policy(data, self._policies, self._pseudo, self._mask)
        if not applied.replaced and not applied.dropped:
            return env
        if self._scrub and applied.replaced:
            substring, n = self._substring, self.config.scrub_min_chars
            if not scrub_text(data, applied, substring=substring, min_chars=n):
                scrub(data, applied, substring=substring, min_chars=n, skip="privacy")
        if applied.unmaskable:
            self.telemetry.error("NotAnAddress", "mask", "a masked field held no IP address; it was dropped")
        wg = data.get("wireguard")
        if type(wg) is not dict:
            wg = data["wireguard"] = {}
        info: dict[str, Any] = {}
        if applied.pseudonymized:
            info["key_id"] = self.key_id
            info["pseudonymized"] = applied.pseudonymized
        if applied.masked:
            info["masked"] = applied.masked
        if applied.dropped:
            info["dropped"] = applied.dropped
        wg["privacy"] = info
        self.events_changed += 1
        return env

    def status(self) -> dict[str, Any]:
        p, m = self._pseudo.cache_info(), self._mask.cache_info()
        return {
            "key_id": self.key_id,
            "keys": len(self.keys.keys) if self.keys is not None else 0,
            "events_changed": self.events_changed,
            "cache": {"hits": p.hits + m.hits, "misses": p.misses + m.misses},
        }
