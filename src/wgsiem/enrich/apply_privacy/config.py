"""Configuration of the ``apply_privacy`` transform."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Action", "ApplyPrivacyConfig"]

Action = Literal["pseudonymize", "mask", "drop"]
_FIELD = re.compile(r"^[A-Za-z0-9_@-]+(\.[A-Za-z0-9_@-]+)*$")


def is_ip_field(path: str) -> bool:
    """ECS fields of type ``ip`` (a pseudonym there would make the document invalid)."""
    return path.endswith(".ip") or path == "ip"


class ApplyPrivacyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["apply_privacy"] = "apply_privacy"
    key_file: str | None = Field(
        None,
        description="file of pseudonymization keys, one '<key id> <base64 secret>' per line, newest "
        "first; mode 0600 or stricter; required when a field is pseudonymized",
    )
    active_key_id: str | None = Field(
        None, description="the key used for new pseudonyms; default: the first key in key_file"
    )
    fields: dict[str, Action] = Field(
        min_length=1,
        description="dotted ECS field → pseudonymize | mask | drop; a list value (related.user, "
        "related.ip) is handled entry by entry",
    )
    mask_ipv4_prefix: int = Field(24, ge=0, le=32, description="IPv4 addresses keep this many leading bits")
    mask_ipv6_prefix: int = Field(48, ge=0, le=128, description="IPv6 addresses keep this many leading bits")
    pseudonym_hex_chars: int = Field(
        32, ge=16, le=64, description="hex characters of HMAC-SHA256 kept in a pseudonym (32 = 128 bits)"
    )
    scrub: Literal["substring", "exact", "off"] = Field(
        "substring",
        description="where else an original value is replaced: 'substring' — in every string of the "
        "event (message, related.*, endpoint 'ip:port' …); 'exact' — only where a whole value equals it; "
        "'off' — only in the configured fields",
    )
    scrub_min_chars: int = Field(
        4, ge=1, description="originals shorter than this are scrubbed only where a whole value equals them"
    )

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: dict[str, Action]) -> dict[str, Action]:
        for path, action in v.items():
            if not _FIELD.match(path):
                raise ValueError(f"{path!r} is not a dotted field name such as user.name")
            if path.startswith("wireguard.privacy"):
                raise ValueError("wireguard.privacy.* is written by this transform")
            if action == "pseudonymize" and is_ip_field(path):
                raise ValueError(f"{path} is an ECS ip field: a pseudonym is no address — use mask or drop")
        return v
