"""Configuration of the ``kernel_log`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["KernelLogSourceConfig"]


class KernelLogSourceConfig(BaseModel):
    """WireGuard kernel messages (and ``wg-quick`` unit output) from journald and/or log files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["kernel_log"] = "kernel_log"
    journal: bool = Field(
        True,
        description="follow the systemd journal through `journalctl -o json --follow` (kernel messages "
        "and the `wg-quick` identifier); off on hosts without journald",
    )
    journalctl: str = Field("journalctl", description="the journalctl binary")
    journal_directory: str | None = Field(
        None,
        description="read journal files from this directory (`--directory`) instead of the system journal",
    )
    journal_files: list[str] = Field(
        default_factory=list, description="read these journal files (`--file`) instead of the system journal"
    )
    journal_since_now: bool = Field(
        True,
        description="with no saved cursor, start at the end of the journal (true) or at its oldest entry",
    )
    files: list[str] = Field(
        default_factory=list,
        description="text logs to tail: kern.log, syslog, messages, saved `dmesg` / `dmesg -T` output",
    )
    files_from_start: bool = Field(
        False, description="a file seen for the first time is read from its start (true) or its end"
    )
    poll_interval_secs: float = Field(
        0.5, gt=0, le=60, description="how often the tailed files are checked for new lines or rotation"
    )
    max_line_bytes: int = Field(
        65536, ge=256, description="longer lines are cut there and counted (drop reason `line_too_long`)"
    )
    batch_max_events: int = Field(1000, ge=1, description="events per emit at most")
    timezone: str | None = Field(
        None,
        description="IANA zone of timestamps written without an offset (RFC 3164, `dmesg -T`); "
        "default: this host's local zone",
    )
    year: int | None = Field(
        None,
        ge=1970,
        le=9999,
        description="year of RFC 3164 timestamps (which have none); default: inferred from the file's "
        "modification time (a date after it by more than a day belongs to the year before)",
    )
    boot_time_epoch: float | None = Field(
        None,
        description="boot time (epoch seconds) for plain `dmesg` lines that carry only seconds since boot; "
        "default: this host's boot time from /proc/stat for live files, and for replay the file's "
        "modification time minus its last uptime",
    )
    peer_map_max_entries: int = Field(
        65536, ge=16, description="bound on the persisted kernel `peer N` → public key map"
    )
    state_save_interval_secs: float = Field(10.0, gt=0, description="how often positions are persisted")
