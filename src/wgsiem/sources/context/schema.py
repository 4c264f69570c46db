"""The documented record schemas, one pydantic model per kind (see docs/sources/context.md).

Records are strict (``extra="forbid"``): a misspelt field is reported, not silently dropped, because a
SIEM that quietly loses ``result`` counts every failed MFA as nothing. Times must carry a timezone.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    field_validator,
    model_validator,
)

__all__ = [
    "MODELS",
    "AnsibleRun",
    "ChangeTicket",
    "ConfigRun",
    "ContextRecord",
    "EdrAlert",
    "IdentityEvent",
]

NonEmpty = Annotated[str, Field(min_length=1, max_length=1024)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class IdentityEvent(_Record):
    """A sign-in or MFA decision from an identity provider (Okta, Entra ID, Keycloak, Duo, …)."""

    kind: Literal["identity"] = "identity"
    time: AwareDatetime
    provider: NonEmpty
    user: NonEmpty
    result: Literal["success", "failure"]
    action: Literal["login", "mfa", "logout"] = "mfa"
    factor: str | None = Field(None, max_length=64, description="push, totp, webauthn, sms, password, …")
    source_ip: IPvAnyAddress | None = None
    user_domain: str | None = Field(None, max_length=256)
    reason: str | None = Field(None, max_length=1024, description="why it failed, as the provider says")
    user_agent: str | None = Field(None, max_length=2048)
    id: str | None = Field(None, max_length=256, description="the provider's event id")


Severity = Literal["low", "medium", "high", "critical"]


class EdrAlert(_Record):
    """An alert from an endpoint detection and response product."""

    kind: Literal["edr"] = "edr"
    time: AwareDatetime
    vendor: NonEmpty
    host: NonEmpty
    severity: Severity
    rule: NonEmpty
    user: str | None = Field(None, max_length=256)
    host_ip: list[IPvAnyAddress] = Field(default_factory=list)
    rule_id: str | None = Field(None, max_length=256)
    description: str | None = Field(None, max_length=4096)
    id: str | None = Field(None, max_length=256, description="the vendor's alert id")


def _is_wg_key(value: str) -> bool:
    try:
        return len(value) == 44 and len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


class ChangeTicket(_Record):
    """A CMDB change ticket: who may change what, and when."""

    kind: Literal["change"] = "change"
    id: NonEmpty
    time: AwareDatetime = Field(description="when the ticket was created or last updated")
    window_start: AwareDatetime
    window_end: AwareDatetime
    approval: Literal["pending", "approved", "rejected", "cancelled"]
    requester: NonEmpty
    hosts: list[NonEmpty] = Field(default_factory=list)
    peers: list[str] = Field(default_factory=list, description="WireGuard public keys (base64)")
    assets: list[NonEmpty] = Field(default_factory=list, description="CMDB asset ids")
    title: str | None = Field(None, max_length=1024)
    provider: str | None = Field(None, max_length=256, description="the CMDB: servicenow, jira, …")

    @field_validator("peers")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        for i, key in enumerate(v):
            if not _is_wg_key(key):
                raise ValueError(f"peers[{i}] is not a WireGuard public key (44 base64 characters)")
        return v

    @model_validator(mode="after")
    def _window(self) -> ChangeTicket:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        if not (self.hosts or self.peers or self.assets):
            raise ValueError("a change ticket must name at least one of hosts, peers or assets")
        return self


class ConfigRun(_Record):
    """One configuration-management run on one host (Puppet, Salt, Chef, … or a summarised Ansible)."""

    kind: Literal["config_run"] = "config_run"
    time: AwareDatetime = Field(description="when the run ended")
    tool: NonEmpty
    host: NonEmpty
    result: Literal["success", "failure"]
    run_id: NonEmpty
    changed: int = Field(0, ge=0, description="resources changed")
    failed: int = Field(0, ge=0, description="resources failed")
    user: str | None = Field(None, max_length=256)
    start: AwareDatetime | None = None


class AnsibleRun(BaseModel):
    """``ANSIBLE_STDOUT_CALLBACK=json`` output (ansible.posix.json): only what is read is modelled;
    everything else in the document (module arguments, facts) is ignored on purpose, never copied."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    plays: list[dict[str, Any]]
    stats: dict[str, dict[str, int]]


ContextRecord = IdentityEvent | EdrAlert | ChangeTicket | ConfigRun | AnsibleRun

MODELS: dict[str, type[_Record]] = {
    "identity": IdentityEvent,
    "edr": EdrAlert,
    "change": ChangeTicket,
    "config_run": ConfigRun,
}
