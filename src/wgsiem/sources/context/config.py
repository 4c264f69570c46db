"""Configuration of the ``context`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["ContextSourceConfig"]


class ContextSourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["context"] = "context"
