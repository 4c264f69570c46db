"""Configuration of the ``prometheus_exporter`` sink.

Defaults are chosen for safety on a gateway: listen on loopback only (a scrape target facing the
internet would publish the peer inventory), per-interface labels only (a per-peer label set is one
series per peer and metric — 100,000 peers make 400,000 series), and the port every WireGuard
exporter uses (9586: mdlayher/wireguard_exporter and MindFlavor/prometheus_wireguard_exporter), so
existing scrape configs and firewall rules keep working.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["DEFAULT_PORT", "PrometheusExporterConfig"]

DEFAULT_PORT = 9586
"""The WireGuard exporter port of the Prometheus default port allocations."""


class PrometheusExporterConfig(BaseModel):
    """``type: prometheus_exporter`` — serve ``/metrics`` with WireGuard state and pipeline telemetry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["prometheus_exporter"] = "prometheus_exporter"
    listen_address: str = Field(
        "127.0.0.1",
        min_length=1,
        description='Address to listen on ("127.0.0.1", "::1", "0.0.0.0", "::"). Loopback by default.',
    )
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="TCP port; 0 picks a free one (tests).")
    per_peer_labels: bool = Field(
        False,
        description="Also export one series per peer (labels interface, public_key, and name when "
        "peer_names is set). Off by default: cardinality grows with the peer count.",
    )
    peer_names: dict[str, str] = Field(
        default_factory=dict,
        description="Public key → friendly name, exported as the `name` label of per-peer series.",
    )
    process_metrics: bool = Field(
        True, description="Export the standard process_* and python_info metrics of this process."
    )
    basic_auth_username: str | None = Field(
        None, min_length=1, description="Require HTTP basic auth with this user name."
    )
    basic_auth_password: SecretStr | None = Field(
        None, description="The basic auth password (never logged or exported)."
    )
    tls_cert_path: str | None = Field(
        None, min_length=1, description="PEM certificate (chain): serve HTTPS instead of HTTP."
    )
    tls_key_path: str | None = Field(None, min_length=1, description="PEM private key of tls_cert_path.")

    @model_validator(mode="after")
    def _pairs(self) -> Self:
        problems = []
        if (self.basic_auth_username is None) != (self.basic_auth_password is None):
            problems.append("basic_auth_username and basic_auth_password must be set together")
        if (self.tls_cert_path is None) != (self.tls_key_path is None):
            problems.append("tls_cert_path and tls_key_path must be set together")
        if self.peer_names and not self.per_peer_labels:
            problems.append("peer_names needs per_peer_labels: true (names are per-peer labels)")
        if problems:
            raise ValueError("; ".join(problems))
        return self
