"""Configuration of the ``respond`` sink: where playbooks, policy and the audit log live."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["RespondSinkConfig"]


class RespondSinkConfig(BaseModel):
    """``type: respond`` — run response playbooks for the alerts that reach it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["respond"]
