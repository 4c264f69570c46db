"""Configuration of the ``webhook`` sink."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from wgsiem.sinks.outbox.config import OutboxConfig

__all__ = ["WebhookSinkConfig"]


class WebhookSinkConfig(BaseModel):
    """``type: webhook`` — POST templated JSON to any HTTP endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["webhook"]
    url: str = Field(description="http:// or https:// URL the events are sent to.")
    method: Literal["POST", "PUT", "PATCH"] = Field("POST", description="HTTP method of each request.")
    mode: Literal["batch", "event"] = Field(
        "batch",
        description="batch: one request per outbox batch, body a JSON array of rendered events; "
        "event: one request per event, body the rendered event.",
    )
    body_template: Any = Field(
        None,
        description="JSON value (YAML mapping/list/string) rendered per event: a string that is exactly "
        '"${field.path}" becomes that field\'s value (any JSON type, null if absent), "${.}" the whole '
        'document, "${a.b}" inside a longer string its text; "$${" is a literal "${". '
        "Unset: the ECS document as is.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra request headers (not secret: they appear in status)."
    )
    auth_header_name: str = Field("Authorization", description="Header carrying auth_header_value.")
    auth_header_value: SecretStr | None = Field(
        None, description='Secret header value, e.g. "Bearer <token>"; never logged or shown.'
    )
    timeout_secs: float = Field(10.0, gt=0, description="Whole-request timeout.")
    tls_ca_file: str | None = Field(None, description="PEM CA bundle to verify the server with.")
    tls_verify: bool = Field(True, description="Verify the server certificate (https).")
    max_concurrent_requests: int = Field(
        8, ge=1, le=256, description="Requests in flight at once in event mode (batch mode sends one)."
    )
    health_check: Literal["none", "head", "get", "options"] = Field(
        "head",
        description="Request made at start to check the endpoint (any HTTP answer below 500 except "
        "401/403/404 passes); none: skip.",
    )
    health_check_url: str | None = Field(None, description="URL for the health check; default: url.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable delivery buffer.")

    @field_validator("url", "health_check_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.lower().startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @model_validator(mode="after")
    def _template_paths(self) -> WebhookSinkConfig:
        from .template import compile_template

        compile_template(self.body_template)  # raises ValueError naming the bad placeholder
        return self
