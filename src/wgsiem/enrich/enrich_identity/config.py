"""Configuration of the ``enrich_identity`` transform."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["EnrichIdentityConfig"]


class EnrichIdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["enrich_identity"] = "enrich_identity"
