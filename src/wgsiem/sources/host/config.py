"""Configuration of the ``host`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["HostSourceConfig"]


class HostSourceConfig(BaseModel):
    """Watches the kernel routing and link tables (rtnetlink) of one network namespace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["host"] = "host"
    namespace: str | None = Field(
        None,
        description="network namespace name (as in `ip netns list`) to watch; none = wgsiem's own namespace",
    )
    interfaces: list[str] = Field(
        default_factory=list,
        description="shell-style patterns of the interfaces whose link, address and route changes are "
        "reported; empty = every WireGuard interface",
    )
    wireguard_interfaces: list[str] = Field(
        default_factory=lambda: ["wg*"],
        description="name patterns treated as WireGuard interfaces besides links of kind `wireguard` and "
        "interfaces the wg_state sources know (wireguard-go's TUN devices have no `wireguard` kind)",
    )
    include_local_table: bool = Field(
        False,
        description="also report routes of the kernel's `local` table (255: one per local address and "
        "broadcast address, noise in most setups)",
    )
    receive_buffer_bytes: int = Field(
        32 * 1024 * 1024,
        ge=65536,
        description="netlink socket receive buffer (set with SO_RCVBUFFORCE, so above net.core.rmem_max "
        "too); a burst larger than this (a full route-table reload) overruns it, which is counted and "
        "followed by a re-read of the tables",
    )
    hijack_severity: int = Field(
        73,
        ge=0,
        le=100,
        description="event.severity and event.risk_score of a route that takes a peer's AllowedIPs "
        "away from its WireGuard interface",
    )
