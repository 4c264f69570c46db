"""Configuration of the ``enrich_identity`` transform."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["EnrichIdentityConfig", "LdapConfig"]


class LdapConfig(BaseModel):
    """Where peer keys live in a directory: one entry per user, the key in ``key_attribute``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="ldap://host:389 or ldaps://host:636")
    base_dn: str = Field(description="search base, e.g. ou=people,dc=corp,dc=example")
    search_filter: str = Field(
        "(objectClass=inetOrgPerson)", description="LDAP filter selecting user entries"
    )
    key_attribute: str = Field(
        description="attribute holding the user's WireGuard public key(s), one per value (multi-valued)"
    )
    bind_dn: str | None = Field(None, description="DN to bind as; anonymous bind when absent")
    bind_password: SecretStr | None = Field(None, description="bind password (prefer bind_password_file)")
    bind_password_file: str | None = Field(
        None, description="file holding the bind password; must not be readable by group or others"
    )
    start_tls: bool = Field(False, description="upgrade an ldap:// connection with StartTLS")
    attributes: dict[str, str] = Field(
        default_factory=lambda: {
            "name": "uid",
            "email": "mail",
            "id": "employeeNumber",
            "full_name": "cn",
            "department": "departmentNumber",
        },
        description="identity field (name, email, id, full_name, domain, department, device, risk) → "
        "LDAP attribute",
    )
    refresh_interval_secs: float = Field(300.0, gt=0, description="how often the directory is re-read")
    timeout_secs: float = Field(10.0, gt=0, description="connect and search timeout")
    size_limit: int = Field(100_000, gt=0, description="most entries read per refresh")

    @model_validator(mode="after")
    def _one_password(self) -> LdapConfig:
        if self.bind_password is not None and self.bind_password_file is not None:
            raise ValueError("give bind_password or bind_password_file, not both")
        return self


class EnrichIdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["enrich_identity"] = "enrich_identity"
    inventory_path: str | None = Field(
        None,
        description="identity inventory: .yaml/.yml ('peers:' list) or .csv with a header row; one row "
        "per peer key — see docs/enrich/identity.md",
    )
    config_paths: list[str] = Field(
        default_factory=list,
        description="WireGuard config files (globs) whose comments name peers (wg-easy, wg-portal, "
        "wireguard-ui, PiVPN …); read with config_watch's parser",
    )
    config_name_as_user: bool = Field(
        True,
        description="when only config comments know a peer, use its friendly name as user.name",
    )
    ldap: LdapConfig | None = Field(None, description="optional directory lookup (needs ldap3)")
    strict: bool = Field(
        True,
        description="at start, refuse an inventory with bad rows (every problem listed); when false, or "
        "on a reload, bad rows are skipped and counted and the good ones used",
    )
    overwrite_user: bool = Field(
        False,
        description="replace user.* an event already carries (e.g. from an identity provider); by "
        "default only missing user fields are filled",
    )
    tunnel_ip_fields: list[str] = Field(
        default_factory=lambda: ["source.nat.ip", "source.ip", "destination.ip"],
        description="for events without wireguard.peer.public_key: dotted fields tried in order, each "
        "looked up in the peer directory by AllowedIPs (flows)",
    )
    reload_check_interval_secs: float = Field(
        5.0, ge=0, description="how often (at most) the inventory and config files are checked for changes"
    )
