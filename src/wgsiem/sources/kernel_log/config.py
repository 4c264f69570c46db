"""Configuration of the ``kernel_log`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["KernelLogSourceConfig"]


class KernelLogSourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["kernel_log"] = "kernel_log"
