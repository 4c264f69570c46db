"""Configuration of the ``elasticsearch`` sink."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from wgsiem.sinks.outbox.config import OutboxConfig

__all__ = ["ElasticsearchSinkConfig"]


class ElasticsearchSinkConfig(BaseModel):
    """``type: elasticsearch`` — bulk-index ECS documents into Elasticsearch or OpenSearch data streams."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["elasticsearch"]
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable delivery buffer.")
