"""Configuration of the ``enrich_assets`` transform."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EnrichAssetsConfig"]


class EnrichAssetsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["enrich_assets"] = "enrich_assets"
    inventory_path: str = Field(
        description="the asset inventory: a .yaml/.yml file (list under 'assets:') or a .csv file with a "
        "header row; see docs/enrich/assets.md"
    )
    fields: list[Literal["source", "destination"]] = Field(
        default=["destination"],
        description="which ECS sides are matched by <side>.ip (longest prefix wins)",
    )
    observer: bool = Field(
        True,
        description="also match the gateway itself: by observer.hostname (hostname entries), else by "
        "observer.ip; written to wireguard.asset.observer",
    )
    strict: bool = Field(
        True,
        description="at start, refuse an inventory with bad rows (every problem listed); when false, or "
        "on a reload, bad rows are skipped and counted and the good ones used",
    )
    reload_check_interval_secs: float = Field(
        5.0, ge=0, description="how often (at most) the inventory file is checked for changes"
    )
    cache_max_entries: int = Field(65_536, ge=0, description="LRU cache of matches by address; 0 disables")
