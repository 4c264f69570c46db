"""Configuration of the ``syslog`` sink."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from wgsiem.sinks.outbox.config import OutboxConfig

__all__ = ["SyslogSinkConfig"]


class SyslogSinkConfig(BaseModel):
    """``type: syslog`` — send RFC 5424 / RFC 3164 syslog with JSON, CEF or LEEF payloads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["syslog"]
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable delivery buffer.")
