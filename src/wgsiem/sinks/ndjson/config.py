"""Configuration of the NDJSON sink: one ECS document per line, to a file or stdout.

Size-based rotation exists so an unattended host cannot fill its disk; ``max_files`` bounds the total
footprint to about ``max_bytes * max_files``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["STDOUT", "NdjsonSinkConfig"]

STDOUT = "-"
"""The ``path`` that means standard output (no rotation, no fsync: a pipe has neither)."""


class NdjsonSinkConfig(BaseModel):
    """``type: ndjson`` — append ECS documents as newline-delimited JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["ndjson"]
    path: str = Field(min_length=1, description='File to append to; "-" writes to standard output.')
    max_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1,
        description="Rotate before the active file would grow past this size.",
    )
    max_files: int = Field(
        default=5,
        ge=1,
        description="Files kept in total, the active one included (file, file.1 … file.N-1).",
    )
    output_schema: Literal["ecs", "cim", "ocsf"] = Field(
        default="ecs",
        alias="schema",
        description="Schema of the written documents (YAML key `schema`): ecs (as produced), cim (Splunk "
        "CIM) or ocsf (OCSF 1.x); see docs/schema.md.",
    )
