"""Configuration of the ``enrich_geo`` transform."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["EnrichGeoConfig"]


class EnrichGeoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["enrich_geo"] = "enrich_geo"
