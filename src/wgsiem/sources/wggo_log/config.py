"""Configuration of the ``wggo_log`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["WggoLogSourceConfig"]


class WggoLogSourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["wggo_log"] = "wggo_log"
