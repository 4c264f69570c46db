"""Configuration of the ``prometheus_exporter`` sink."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["PrometheusExporterConfig"]


class PrometheusExporterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["prometheus_exporter"] = "prometheus_exporter"
