"""The one YAML configuration file, as typed models. Unknown keys are rejected everywhere."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from wgsiem.detect.config import DetectConfig
from wgsiem.enrich.apply_privacy.config import ApplyPrivacyConfig
from wgsiem.enrich.enrich_assets.config import EnrichAssetsConfig
from wgsiem.enrich.enrich_geo.config import EnrichGeoConfig
from wgsiem.enrich.enrich_identity.config import EnrichIdentityConfig
from wgsiem.enrich.score_risk.config import ScoreRiskConfig
from wgsiem.respond.config import RespondSinkConfig
from wgsiem.sinks.duckdb_store.config import DuckdbStoreConfig
from wgsiem.sinks.elasticsearch.config import ElasticsearchSinkConfig
from wgsiem.sinks.ndjson.config import NdjsonSinkConfig
from wgsiem.sinks.prometheus_exporter.config import PrometheusExporterConfig
from wgsiem.sinks.splunk_hec.config import SplunkHecSinkConfig
from wgsiem.sinks.syslog.config import SyslogSinkConfig
from wgsiem.sinks.webhook.config import WebhookSinkConfig
from wgsiem.sources.config_watch.config import ConfigWatchSourceConfig
from wgsiem.sources.context.config import ContextSourceConfig
from wgsiem.sources.host.config import HostSourceConfig
from wgsiem.sources.kernel_log.config import KernelLogSourceConfig
from wgsiem.sources.netflow.config import NetflowSourceConfig
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wggo_log.config import WggoLogSourceConfig

__all__ = [
    "SINK_CONFIGS",
    "SOURCE_CONFIGS",
    "TRANSFORM_CONFIGS",
    "ApiConfig",
    "Config",
    "PipelineConfig",
    "SinkConfig",
    "SourceConfig",
    "TransformConfig",
]

SOURCE_CONFIGS: tuple[type[BaseModel], ...] = (
    WgStateSourceConfig,
    KernelLogSourceConfig,
    WggoLogSourceConfig,
    ConfigWatchSourceConfig,
    NetflowSourceConfig,
    ContextSourceConfig,
    HostSourceConfig,
)
SINK_CONFIGS: tuple[type[BaseModel], ...] = (
    NdjsonSinkConfig,
    DuckdbStoreConfig,
    PrometheusExporterConfig,
    ElasticsearchSinkConfig,
    SplunkHecSinkConfig,
    SyslogSinkConfig,
    WebhookSinkConfig,
    RespondSinkConfig,
)

TRANSFORM_CONFIGS: tuple[type[BaseModel], ...] = (
    EnrichGeoConfig,
    EnrichIdentityConfig,
    EnrichAssetsConfig,
    ScoreRiskConfig,
    ApplyPrivacyConfig,
    DetectConfig,
)
TransformConfig = Annotated[
    EnrichGeoConfig
    | EnrichIdentityConfig
    | EnrichAssetsConfig
    | ScoreRiskConfig
    | ApplyPrivacyConfig
    | DetectConfig,
    Field(discriminator="type"),
]

SourceConfig = Annotated[
    WgStateSourceConfig
    | KernelLogSourceConfig
    | WggoLogSourceConfig
    | ConfigWatchSourceConfig
    | NetflowSourceConfig
    | ContextSourceConfig
    | HostSourceConfig,
    Field(discriminator="type"),
]
SinkConfig = Annotated[
    NdjsonSinkConfig
    | DuckdbStoreConfig
    | PrometheusExporterConfig
    | ElasticsearchSinkConfig
    | SplunkHecSinkConfig
    | SyslogSinkConfig
    | WebhookSinkConfig
    | RespondSinkConfig,
    Field(discriminator="type"),
]

DEFAULT_STATE_DIR = "/var/lib/wgsiem"


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_max_events: int = Field(10_000, gt=0)
    batch_max_events: int = Field(1_000, gt=0)
    batch_max_wait_secs: float = Field(1.0, gt=0)


class ApiConfig(BaseModel):
    """The local API that ``wgsiem status|peers|sessions|events`` use while ``run`` is running."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    socket_path: str | None = Field(None, description="unix socket; default <state_dir>/api.sock")


def _default_sources() -> dict[str, SourceConfig]:
    return {"wg": WgStateSourceConfig()}


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: str = DEFAULT_STATE_DIR
    hostname: str = Field(default_factory=socket.gethostname)
    sources: dict[str, SourceConfig] = Field(default_factory=_default_sources)
    transforms: dict[str, TransformConfig] = Field(
        default_factory=dict, description="applied to every event in the order written"
    )
    sinks: dict[str, SinkConfig] = Field(default_factory=dict)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)

    @property
    def api_socket(self) -> Path:
        return Path(self.api.socket_path or str(Path(self.state_dir) / "api.sock"))

    def with_default_store(self) -> Config:
        """Add the embedded store when no DuckDB sink is configured (the store backs the CLI)."""
        if any(isinstance(s, DuckdbStoreConfig) for s in self.sinks.values()):
            return self
        sinks = dict(self.sinks)
        sinks["store"] = DuckdbStoreConfig(type="duckdb", path=str(Path(self.state_dir) / "wgsiem.duckdb"))
        return self.model_copy(update={"sinks": sinks})
