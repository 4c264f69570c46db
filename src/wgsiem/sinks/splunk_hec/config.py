"""Configuration of the ``splunk_hec`` sink."""

from __future__ import annotations

import re
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from wgsiem.sinks.outbox.config import OutboxConfig

__all__ = ["SplunkHecSinkConfig"]

# Splunk index names: lowercase letters, digits, '_' and '-', not starting with '_' or '-' (indexes.conf).
_INDEX = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


class SplunkHecSinkConfig(BaseModel):
    """``type: splunk_hec`` — send events to a Splunk HTTP Event Collector."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["splunk_hec"]
    endpoint: str = Field(
        description="HEC base URL, scheme://host:port (e.g. https://splunk.example.net:8088); the sink "
        "adds /services/collector/event, /ack and /health.",
    )
    token: SecretStr = Field(description="The HEC token (a GUID); sent as `Authorization: Splunk <token>`.")
    index: str | None = Field(
        None,
        description="Target index; default: the token's default index. Must be in the token's allow list.",
    )
    source: str = Field("wgsiem", description="The `source` of every event.")
    host: str | None = Field(
        None,
        description="The `host` of every event; default: the event's observer.hostname (else this host).",
    )
    sourcetype_prefix: str = Field(
        "wireguard",
        description="Sourcetype is `<prefix>:<dataset>` (`wireguard.state` → `wireguard:state`).",
    )
    output_schema: Literal["cim+ecs", "cim", "ecs"] = Field(
        "cim+ecs",
        alias="schema",
        description="Event body (YAML key `schema`): `cim+ecs` (the CIM fields at the top level plus the ECS "
        "document's fields: the Splunk app's data model tags and its ECS-based correlation searches both "
        "work; on the two clashing keys, `user` and `message`, CIM wins), `cim` (the CIM mapping only) or "
        "`ecs` (the ECS document only).",
    )
    indexed_fields: bool = Field(
        True,
        description="Also send `event_id`, `event_dataset`, `event_action` as indexed fields (`fields`), "
        "so `| tstats ... by event_id` and dedup searches work without extracting the body.",
    )
    compression: Literal["gzip", "none"] = Field("gzip", description="Request body compression.")
    gzip_level: int = Field(
        1,
        ge=1,
        le=9,
        description="gzip level, 1 (fastest) … 9 (smallest). 1 by default: on wgsiem's events it already "
        "shrinks requests ~9x at three times the speed of level 6 (~12x); CPU on the gateway is scarcer "
        "than bandwidth to Splunk.",
    )
    max_request_bytes: int = Field(
        1_000_000,
        ge=1024,
        description="Split a delivery into requests of at most this many uncompressed bytes "
        "(Splunk's limits.conf [http_input] max_content_length must be larger).",
    )
    ack: bool = Field(
        False,
        description="Indexer acknowledgement: a request counts as delivered only once "
        "/services/collector/ack "
        "says it was indexed (the token must have acknowledgement enabled; Splunk Enterprise only).",
    )
    channel: str | None = Field(
        None, description="The X-Splunk-Request-Channel GUID; default: a new random GUID per sink start."
    )
    ack_timeout_secs: float = Field(
        120.0, gt=0, description="Not acknowledged within this time → the request's events are sent again."
    )
    ack_poll_interval_secs: float = Field(
        0.5, gt=0, description="First delay between /ack queries (doubles up to 10 s)."
    )
    tls_verify: bool = Field(True, description="Verify the server certificate and host name.")
    tls_ca_file: str | None = Field(None, description="PEM CA bundle to verify the server with.")
    request_timeout_secs: float = Field(30.0, gt=0, description="Timeout of one HTTP request.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable delivery buffer.")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+/?$", v):
            raise ValueError("endpoint must be scheme://host[:port] (http or https), without a path")
        return v.rstrip("/")

    @field_validator("index")
    @classmethod
    def _index(cls, v: str | None) -> str | None:
        if v is not None and not _INDEX.match(v):
            raise ValueError("index: lowercase letters, digits, '_' and '-', not starting with '_' or '-'")
        return v

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                uuid.UUID(v)
            except ValueError:
                raise ValueError(
                    "channel must be a GUID (e.g. 0aeeac95-ac74-4aa9-b30d-6c4c0ac581ba)"
                ) from None
        return v

    @field_validator("token")
    @classmethod
    def _token(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().strip():
            raise ValueError("token must not be empty")
        return v
