"""Configuration of the ``detect`` stage (the detection engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

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
    max_groups: int = Field(
        50_000,
        ge=1,
        description="bound on the groups each correlation rule keeps; least recently used go first",
    )
    detector_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per detector rule name: options overriding the rule file's `wgsiem.options`",
    )
    state: bool = Field(
        True, description="persist correlation windows, detector baselines and the throttle table"
    )
    state_save_interval_secs: float = Field(
        60.0, gt=0, description="how often the state file is rewritten while running (and always at close)"
    )
    lifecycle: bool = Field(
        True, description="record alerts in <state_dir>/alerts.db and honour its suppressions"
    )
    suppression_check_interval_secs: float = Field(
        1.0, gt=0, description="how often the engine looks for suppressions added by `wgsiem alerts suppress`"
    )
