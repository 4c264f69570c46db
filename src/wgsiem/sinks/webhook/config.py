"""Configuration of the ``webhook`` sink."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from wgsiem.sinks.outbox.config import OutboxConfig

__all__ = ["WebhookSinkConfig"]


class WebhookSinkConfig(BaseModel):
    """``type: webhook`` — POST templated JSON to any HTTP endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["webhook"]
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable delivery buffer.")
