"""Configuration of the ``config_watch`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["ConfigWatchSourceConfig"]


class ConfigWatchSourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["config_watch"] = "config_watch"
