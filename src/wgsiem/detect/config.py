"""Configuration of the ``detect`` stage (the detection engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DetectConfig"]


class DetectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["detect"] = "detect"
    builtin_rules: bool = Field(True, description="load the rules shipped in wgsiem/detect/rules")
    rule_dirs: list[Path] = Field(
        default_factory=list,
        description="extra directories of rule files (*.yaml / *.yml, searched recursively)",
    )
    disabled_rules: list[str] = Field(default_factory=list, description="rule ids or names not to run")
    throttle_window_secs: float = Field(
        300.0,
        ge=0,
        description="after an alert, further matches of the same rule and entity within this many seconds "
        "of event time are suppressed (counted on the next alert); 0 alerts on every match",
    )
    max_entities: int = Field(
        100_000, ge=1, description="bound on the (rule, entity) throttle table; least recently used go first"
    )
    max_event_ids: int = Field(
        100_000, ge=1, description="bound on the evidence ids remembered for deduplication of replays"
    )
