"""Configuration of the ``context`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["ContextFileConfig", "ContextHttpConfig", "ContextSourceConfig", "Kind"]

Kind = Literal["identity", "edr", "change", "config_run"]


class ContextHttpConfig(BaseModel):
    """``POST /v1/ingest/<kind>`` with ``Authorization: Bearer <token>``; body NDJSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen_address: str = Field("127.0.0.1", description="address to listen on; loopback unless TLS is set")
    listen_port: int = Field(8788, ge=0, le=65535, description="TCP port; 0 = any free port (tests)")
    token: SecretStr = Field(
        description="bearer token senders must present (at least 16 characters); never logged"
    )
    tls_cert_path: str | None = Field(
        None, description="PEM certificate chain; with tls_key_path enables HTTPS"
    )
    tls_key_path: str | None = Field(None, description="PEM private key of tls_cert_path")
    max_body_bytes: int = Field(
        8 * 1024 * 1024, gt=0, description="a larger request body is refused with 413 before it is parsed"
    )
    max_errors_reported: int = Field(100, gt=0, description="per-line errors listed in one response")

    @model_validator(mode="after")
    def _check(self) -> ContextHttpConfig:
        if len(self.token.get_secret_value()) < 16:
            raise ValueError("token must be at least 16 characters (use e.g. `openssl rand -hex 32`)")
        if (self.tls_cert_path is None) != (self.tls_key_path is None):
            raise ValueError("set both tls_cert_path and tls_key_path, or neither")
        return self


class ContextFileConfig(BaseModel):
    """An NDJSON file (or one Ansible JSON-callback document) read once or followed like `tail -F`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="file to read")
    kind: Kind | None = Field(
        None,
        description="kind of every record; none = each record says its own `kind` (or is Ansible output)",
    )
    follow: bool = Field(False, description="keep reading what is appended (rotation and truncation handled)")
    poll_interval_secs: float = Field(1.0, gt=0, le=3600, description="how often a followed file is checked")


class ContextSourceConfig(BaseModel):
    """Identity/MFA, EDR, change-ticket and config-management context over HTTP and from files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["context"] = "context"
    http: ContextHttpConfig | None = Field(None, description="the authenticated ingest endpoint; none = off")
    files: list[ContextFileConfig] = Field(default_factory=list, description="files to ingest")
    ansible_unchanged_tasks: bool = Field(
        False, description="also emit an event for every Ansible task result that was ok and changed nothing"
    )
