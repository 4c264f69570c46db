"""Configuration of the ``score_risk`` transform."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["ScoreRiskConfig"]


class ScoreRiskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["score_risk"] = "score_risk"
