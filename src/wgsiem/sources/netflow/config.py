"""Configuration of the ``netflow`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["NetflowSourceConfig"]


class NetflowSourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["netflow"] = "netflow"
