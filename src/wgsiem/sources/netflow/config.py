"""Configuration of the ``netflow`` source."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["NetflowSourceConfig"]


class NetflowSourceConfig(BaseModel):
    """A UDP collector for NetFlow v5, v9 and IPFIX; one event per flow record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["netflow"] = "netflow"
    listen_address: str = Field(
        "127.0.0.1",
        description="address to receive export datagrams on; 0.0.0.0 / :: for remote exporters "
        "(then restrict allowed_exporters)",
    )
    listen_port: int = Field(2055, ge=0, le=65535, description="UDP port (0 = any free port)")
    allowed_exporters: list[str] = Field(
        default_factory=list,
        description="exporter addresses or CIDRs accepted; empty = any. Others are dropped and counted",
    )
    receive_buffer_bytes: int = Field(
        4 * 1024 * 1024, ge=65536, description="SO_RCVBUF asked of the kernel, to ride out bursts"
    )
    queue_max_datagrams: int = Field(
        10_000, gt=0, description="datagrams waiting to be decoded; more are dropped (reason queue_full)"
    )
    batch_max_datagrams: int = Field(256, gt=0, description="datagrams decoded into one emitted batch")
    template_timeout_secs: float = Field(
        1800.0,
        gt=0,
        description="a v9/IPFIX template not refreshed for this long is forgotten (RFC 7011 §8.4); "
        "at least 3x the exporter's template refresh interval",
    )
    max_templates: int = Field(10_000, gt=0, description="templates kept over all exporters")
    max_templates_per_domain: int = Field(
        512, gt=0, description="templates kept per (exporter, observation domain / source id)"
    )
    max_domains: int = Field(1024, gt=0, description="(exporter, observation domain) pairs kept")
    sampling: Literal["scale", "record"] = Field(
        "scale",
        description="scale: multiply bytes/packets by the exporter's sampling interval (estimates of the "
        "real traffic; raw counts kept under wireguard.flow.sampling); record: keep the raw counts",
    )
    peer_interface: str | None = Field(
        None,
        description="attribute tunnel addresses only to peers of this WireGuard interface "
        "(default: any interface, or the flow's interfaceName when it names one)",
    )

    @field_validator("allowed_exporters")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for item in v:
            ipaddress.ip_network(item, strict=False)  # raises ValueError with the bad item
        return v
