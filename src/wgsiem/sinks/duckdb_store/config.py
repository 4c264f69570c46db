"""Configuration of the embedded DuckDB store (events, sessions and peers for the CLI and web UI)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DuckdbStoreConfig"]


class DuckdbStoreConfig(BaseModel):
    """``type: duckdb`` — keep a queryable history on the host itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["duckdb"]
    path: str = Field(min_length=1, description="Database file; created (mode 0640) if missing.")
    retention_days: int = Field(
        default=30,
        ge=1,
        description="Events, closed sessions and removed peers older than this are deleted.",
    )
