"""Configuration of the ``wggo_log`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["WggoLogSourceConfig"]


class WggoLogSourceConfig(BaseModel):
    """wireguard-go's own log (``LOG_LEVEL=debug``/``error``) from a file, the journal, or a process
    wgsiem starts and whose stdout/stderr it reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["wggo_log"] = "wggo_log"
    mode: Literal["file", "journald", "command"] = Field(
        "file",
        description="file: follow `path`; journald: follow the journal (`journal_matches`); command: start "
        "`command` and read its stdout/stderr",
    )
    interface: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_=+.-]{1,15}$",
        description="the WireGuard interface these lines are about, for lines without wireguard-go's "
        "`(iface) ` prefix (embedders); default: the log file's name (`wg0.log`, "
        "`wireguard-go-wg0.log`) or the command's `-f IFACE` argument",
    )
    timezone: str | None = Field(
        None,
        description="IANA zone wireguard-go wrote its local times in (e.g. `Europe/Berlin`); default: "
        "this host's (TZ, then /etc/localtime)",
    )
    # -- file
    path: str | None = Field(None, description="file mode: the log file wireguard-go's stdout goes to")
    from_start: bool = Field(
        False,
        description="file mode, no saved position: read the file from its start (true) or its end",
    )
    poll_interval_secs: float = Field(
        0.25, gt=0, le=60, description="file mode: how often the file is checked for new lines or rotation"
    )
    read_max_bytes: int = Field(
        1 << 20, ge=4096, description="file mode: bytes read per step before the lines are emitted"
    )
    max_line_bytes: int = Field(
        65536, ge=256, description="longer lines are cut there and counted (drop reason `line_too_long`)"
    )
    # -- journald
    journal_matches: list[str] = Field(
        default_factory=lambda: ["_COMM=wireguard-go"],
        description="journald mode: journalctl matches selecting wireguard-go's stdout",
    )
    journalctl: str = Field("journalctl", description="journald mode: the journalctl binary")
    journal_directory: str | None = Field(
        None, description="journald mode: read journal files from this directory (`--directory`)"
    )
    journal_files: list[str] = Field(
        default_factory=list, description="journald mode: read these journal files (`--file`)"
    )
    journal_since_now: bool = Field(
        True, description="journald mode, no saved cursor: start at the end (true) or the oldest entry"
    )
    # -- command
    command: list[str] = Field(
        default_factory=list,
        description='command mode: argv of the daemon, run in the foreground, e.g. ["wireguard-go", "-f", '
        '"wg0"]',
    )
    env: dict[str, str] = Field(
        default_factory=lambda: {"LOG_LEVEL": "debug"},
        description="command mode: environment added to wgsiem's for the daemon (LOG_LEVEL=debug)",
    )
    stop_timeout_secs: float = Field(
        5.0, gt=0, le=120, description="command mode: wait this long after SIGTERM before SIGKILL"
    )
    restart_on_exit: bool = Field(
        True, description="command mode: start the daemon again when it exits on its own"
    )
    restart_delay_secs: float = Field(
        5.0,
        ge=0,
        description="command mode: pause before a restart (doubles up to 60 s while it keeps failing)",
    )
    # -- all modes
    batch_max_events: int = Field(1000, ge=1, description="events per emit at most")
    state_save_interval_secs: float = Field(10.0, gt=0, description="how often the position is persisted")

    @model_validator(mode="after")
    def _mode_needs(self) -> WggoLogSourceConfig:
        problems = []
        # `type: wggo_log` alone is valid (replay builds the default config and needs no path); a live
        # run of it stops at start with the same message
        if self.mode == "file" and not self.path and "mode" in self.model_fields_set:
            problems.append("mode `file` needs `path` (the wireguard-go log file)")
        if self.mode == "command" and not self.command:
            problems.append('mode `command` needs `command`, e.g. ["wireguard-go", "-f", "wg0"]')
        if (
            self.mode == "command"
            and self.command
            and "-f" not in self.command
            and "--foreground" not in (self.command)
        ):
            problems.append("`command` must run wireguard-go in the foreground (`-f`), or its log is lost")
        if self.timezone is not None:
            from zoneinfo import ZoneInfo

            try:
                ZoneInfo(self.timezone)
            except (ValueError, KeyError, OSError):
                problems.append(f"unknown time zone {self.timezone!r} (use an IANA name like Europe/Berlin)")
        if problems:
            raise ValueError("; ".join(problems))
        return self
