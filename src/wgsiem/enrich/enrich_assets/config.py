"""Configuration of the ``enrich_assets`` transform."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["EnrichAssetsConfig"]


class EnrichAssetsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["enrich_assets"] = "enrich_assets"
