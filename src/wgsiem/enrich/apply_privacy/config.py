"""Configuration of the ``apply_privacy`` transform."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["ApplyPrivacyConfig"]


class ApplyPrivacyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["apply_privacy"] = "apply_privacy"
