"""Configuration of the ``splunk_hec`` sink."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from wgsiem.sinks.outbox.config import OutboxConfig

__all__ = ["SplunkHecSinkConfig"]


class SplunkHecSinkConfig(BaseModel):
    """``type: splunk_hec`` — send events to a Splunk HTTP Event Collector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["splunk_hec"]
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable delivery buffer.")
