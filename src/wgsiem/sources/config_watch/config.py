"""Configuration of the ``config_watch`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from wgsiem.sources.wg_state.reader import DEFAULT_SOCKET_DIRS

__all__ = ["ConfigWatchSourceConfig"]


class ConfigWatchSourceConfig(BaseModel):
    """Watches WireGuard configuration files (inotify) and reports every change and any drift between
    a file and its running interface."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["config_watch"] = "config_watch"
    paths: list[str] = Field(
        default_factory=lambda: ["/etc/wireguard/*.conf"],
        min_length=1,
        description="globs or directories (a directory means `<dir>/*.conf`); the interface name is the "
        "file name without its extension, as wg-quick takes it",
    )
    debounce_ms: int = Field(
        300, ge=10, le=60_000, description="changes within this window are handled as one (editor saves)"
    )
    rescan_interval_secs: float = Field(
        300.0, gt=0, description="full rescan besides inotify (directories created later, missed events)"
    )
    drift_check_interval_secs: float = Field(
        30.0, gt=0, description="seconds between two comparisons of every file with its running interface"
    )
    drift_grace_secs: float = Field(
        10.0, ge=0, description="a difference is reported only once it has lasted this long"
    )
    drift_endpoints: bool = Field(
        True, description="report a peer whose running endpoint differs from an IP endpoint in the file"
    )
    live_read: Literal["off", "auto", "uapi", "dump"] = Field(
        "off",
        description="off: compare with the peers the wg_state sources publish; otherwise read the "
        "interface on demand (as wg_state's reader mode), which also compares keys, PSKs and ports",
    )
    socket_dirs: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SOCKET_DIRS), description="UAPI socket dirs for live_read"
    )
    wg_binary: str = Field("wg", description="`wg` used by live_read for kernel interfaces")
    read_timeout_secs: float = Field(30.0, gt=0, description="timeout of one live read")
    max_file_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="larger files are not read (counted as an error)"
    )
