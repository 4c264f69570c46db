"""Configuration of the ``respond`` sink: where playbooks, policy and the audit log live.

Everything has a safe default: with only ``type: respond`` the sink runs the built-in playbooks, acts
automatically on tier 1 only, asks for approval for tiers 2–3 and for anything touching more than five
peers, keeps its state and audit log under the service's state directory and serves no HTTP API.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = [
    "AllowListConfig",
    "AuditConfig",
    "ExecutorConfig",
    "PolicyConfig",
    "RateLimitConfig",
    "RespondApiConfig",
    "RespondSinkConfig",
]

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class PolicyConfig(BaseModel):
    """What runs automatically and what waits for a human."""

    model_config = _FROZEN

    auto_max_tier: int = Field(
        1, ge=0, le=3, description="playbooks of this tier or lower run without approval (0: none do)"
    )
    approval_peer_threshold: int = Field(
        5, ge=0, description="a proposal touching more than this many peers always needs approval"
    )
    approval_ttl_secs: float = Field(
        3600.0, gt=0, description="a proposal not approved within this many seconds expires"
    )


class RateLimitConfig(BaseModel):
    """Bounds on executions per sliding hour; a proposal above a bound is recorded, audited, not run."""

    model_config = _FROZEN

    global_per_hour: int = Field(60, ge=0, description="executions of any playbook per hour (0: no limit)")
    per_playbook_per_hour: int = Field(20, ge=0, description="executions of one playbook per hour")
    per_entity_per_hour: int = Field(
        3, ge=0, description="executions against one entity (alert entity or target) per hour"
    )


class AllowListConfig(BaseModel):
    """What no action may ever touch: the management path and critical peers."""

    model_config = _FROZEN

    cidrs: list[str] = Field(
        default_factory=list, description="addresses/networks never blocked or throttled"
    )
    peer_public_keys: list[str] = Field(
        default_factory=list, description="peers never revoked, rotated or throttled"
    )
    interfaces: list[str] = Field(default_factory=list, description="interfaces no action changes")

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for text in v:
            ipaddress.ip_network(text, strict=False)  # raises ValueError → a located config error
        return v


class AuditConfig(BaseModel):
    model_config = _FROZEN

    path: Path | None = Field(None, description="the append-only audit log; default <state_dir>/audit.jsonl")
    head_interval_secs: float = Field(
        10.0, gt=0, description="how often the chain head is written out (always also at stop)"
    )
    external_head_path: Path | None = Field(
        None, description="also write the chain head here (another disk, a mounted WORM share)"
    )


class ExecutorConfig(BaseModel):
    """Where actions run: this host, a network namespace on it, or a remote gateway over SSH."""

    model_config = _FROZEN

    type: Literal["local", "ssh"] = "local"
    netns: str | None = Field(None, description="run commands inside this network namespace (local only)")
    host: str | None = Field(None, description="ssh: the gateway's address")
    port: int = Field(22, ge=1, le=65535, description="ssh: port")
    user: str | None = Field(None, description="ssh: login user")
    known_hosts_path: Path | None = Field(None, description="ssh: pinned host key(s)")
    host_key_sha256: str | None = Field(None, description="ssh: pinned host key fingerprint (SHA256:…)")
    client_key_path: Path | None = Field(None, description="ssh: private key file for the login")
    allowed_commands: list[str] | None = Field(
        None, description="ssh: programs allowed (default: the actions')"
    )
    sudo: bool = Field(False, description="ssh: run each command as `sudo -n`")


class RespondApiConfig(BaseModel):
    """The SOAR API (HTTP, bearer tokens), off unless configured."""

    model_config = _FROZEN

    listen: str = Field("127.0.0.1", description="address to bind; keep it on loopback or a management net")
    port: int = Field(8787, ge=0, le=65535, description="TCP port (0: pick a free one, for tests)")
    tokens: dict[str, SecretStr] = Field(
        default_factory=dict, description="token name (recorded as the actor) → bearer token"
    )


class RespondSinkConfig(BaseModel):
    """``type: respond`` — run response playbooks for the alerts that reach it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["respond"]
    builtin_playbooks: bool = Field(
        True, description="load the playbooks shipped in wgsiem/respond/playbooks"
    )
    playbook_dirs: list[Path] = Field(default_factory=list, description="extra directories of playbook files")
    dry_run: bool = Field(False, description="plan and audit every response but change nothing")
    kill_switch: bool = Field(
        False, description="start with every action stopped (see also the kill-switch file)"
    )
    kill_switch_path: Path | None = Field(
        None, description="while this file exists no action runs; default <state_dir>/respond.kill"
    )
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)
    allow_list: AllowListConfig = Field(default_factory=AllowListConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    api: RespondApiConfig | None = Field(None, description="serve the SOAR API (off when absent)")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="deployment settings handed to actions (config file per interface, nft table, hooks)",
    )
    poll_interval_secs: float = Field(
        0.25, gt=0, description="how often the engine looks for approvals, undo requests and expiries"
    )
    batch_max_wait_secs: float = Field(
        0.02, gt=0, description="how long the sink waits to batch alerts (small: containment is fast)"
    )
    step_timeout_secs: float = Field(60.0, gt=0, description="an action step taking longer fails")
