"""Configuration of the ``host`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["HostSourceConfig"]


class HostSourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["host"] = "host"
