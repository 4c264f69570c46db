"""Configuration of the ``elasticsearch`` sink (Elasticsearch 8/9 or OpenSearch 2/3)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from wgsiem.sinks.outbox.config import OutboxConfig

__all__ = ["ElasticsearchInstallConfig", "ElasticsearchSinkConfig"]

# A data stream namespace: lowercase, no '-', '\', '/', '*', '?', '"', '<', '>', '|', ',', '#', ':' or
# space, at most 100 bytes (Elastic's data stream naming scheme).
_NAMESPACE = re.compile(r"^[a-z0-9_.]{1,100}$")
_FINGERPRINT = re.compile(r"^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$")


class ElasticsearchInstallConfig(BaseModel):
    """What the sink installs (create or overwrite) at start, before it delivers anything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: bool = Field(
        False,
        description="Put the component and composable index templates for logs-wireguard.*-* "
        "(ECS mappings for every field wgsiem emits).",
    )
    ilm: bool = Field(
        False, description="Put the ILM policy `wgsiem-logs` (Elasticsearch only; OpenSearch uses ISM)."
    )
    pipeline: bool = Field(
        False,
        description="Put the ingest pipeline `wgsiem-wg-dump` that parses raw `wg show all dump` lines.",
    )
    retention_days: int = Field(
        180, ge=1, le=3650, description="ILM: delete backing indices this many days after rollover."
    )
    rollover_max_age_days: int = Field(1, ge=1, description="ILM: roll over daily at most this often.")
    rollover_max_primary_shard_size_gb: int = Field(
        50, ge=1, description="ILM: roll over when a primary shard reaches this size, in GB."
    )


class ElasticsearchSinkConfig(BaseModel):
    """``type: elasticsearch`` — bulk-index ECS documents into Elasticsearch or OpenSearch data streams."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["elasticsearch"]
    distribution: Literal["elasticsearch", "opensearch"] = Field(
        "elasticsearch",
        description="Which client to use: `elasticsearch` (official client, checks the product header) "
        "or `opensearch` (opensearch-py).",
    )
    hosts: list[str] = Field(
        default_factory=lambda: ["https://localhost:9200"],
        min_length=1,
        description="Node URLs (scheme://host:port); requests are spread over them.",
    )
    namespace: str = Field(
        "default",
        description="Data stream namespace: documents go to logs-wireguard.<dataset>-<namespace>.",
    )
    api_key: SecretStr | None = Field(
        None, description="Elasticsearch API key, the base64 `encoded` form (Authorization: ApiKey …)."
    )
    username: str | None = Field(None, description="Basic authentication user.")
    password: SecretStr | None = Field(None, description="Basic authentication password.")
    bearer_token: SecretStr | None = Field(None, description="OAuth2/JWT token (Authorization: Bearer …).")
    ca_file: str | None = Field(None, description="PEM file of the CA that signed the cluster's certificate.")
    ca_fingerprint_sha256: str | None = Field(
        None,
        description="Pin the server certificate by its SHA-256 fingerprint (hex, colons optional) — "
        "what Elasticsearch prints at first start.",
    )
    verify_certs: bool = Field(
        True, description="Verify the server certificate (never disable in production)."
    )
    request_timeout_secs: float = Field(30.0, gt=0, description="Timeout of one HTTP request.")
    max_request_bytes: int = Field(
        10 * 1024 * 1024,
        ge=64 * 1024,
        description="Split a batch into several _bulk requests above this body size (bytes); keep it "
        "below the cluster's http.max_content_length (100 MB by default).",
    )
    pipeline: str | None = Field(None, description="Ingest pipeline to run on every document (optional).")
    install: ElasticsearchInstallConfig = Field(
        default_factory=ElasticsearchInstallConfig, description="Templates, ILM and pipeline to install."
    )
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable delivery buffer.")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not _NAMESPACE.match(value):
            raise ValueError(
                "a data stream namespace is 1–100 characters of lowercase letters, digits, '_' and '.' "
                "(no '-')"
            )
        return value

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not re.match(r"^https?://[^/\s]+(/.*)?$", host):
                raise ValueError(f"{host!r}: a host is a URL such as https://es1.example:9200")
        return value

    @field_validator("ca_fingerprint_sha256")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not _FINGERPRINT.match(value.strip()):
            raise ValueError("a SHA-256 fingerprint is 32 bytes in hex (64 digits, colons optional)")
        return value.strip() if value is not None else None

    @model_validator(mode="after")
    def _auth(self) -> ElasticsearchSinkConfig:
        methods = [
            name
            for name, present in (
                ("api_key", self.api_key is not None),
                ("username/password", self.username is not None or self.password is not None),
                ("bearer_token", self.bearer_token is not None),
            )
            if present
        ]
        if len(methods) > 1:
            raise ValueError(f"choose one authentication method, not {' and '.join(methods)}")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic authentication needs both username and password")
        if self.distribution == "opensearch" and (self.api_key is not None or self.bearer_token is not None):
            raise ValueError("opensearch: use username/password (API keys and bearer tokens are Elastic's)")
        if self.distribution == "opensearch" and self.install.ilm:
            raise ValueError("opensearch has no ILM: set install.ilm false and configure an ISM policy")
        return self

    @property
    def uses_tls(self) -> bool:
        return any(h.startswith("https://") for h in self.hosts)
