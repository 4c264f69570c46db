"""Configuration of the ``wg_state`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from wgsiem.sources.wg_state.reader import DEFAULT_SOCKET_DIRS

__all__ = ["WgStateSourceConfig", "poll_interval_warning"]


class WgStateSourceConfig(BaseModel):
    """Polls the runtime state of WireGuard interfaces and derives peer, session and transfer events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["wg_state"] = "wg_state"
    poll_interval_secs: float = Field(
        5.0, gt=0, le=3600, description="seconds between two reads of the state"
    )
    reader: Literal["auto", "uapi", "dump"] = Field(
        "auto", description="auto: UAPI socket for userspace interfaces, `wg show all dump` for kernel ones"
    )
    interfaces: list[str] = Field(default_factory=list, description="interfaces to watch; empty = all")
    socket_dirs: list[str] = Field(default_factory=lambda: list(DEFAULT_SOCKET_DIRS))
    wg_binary: str = "wg"
    read_timeout_secs: float = Field(30.0, gt=0)
    session_timeout_secs: float = Field(
        180.0, gt=0, description="REJECT_AFTER_TIME: a session is over once its latest handshake is older"
    )
    session_grace_secs: float = Field(15.0, ge=0, description="added to the timeout to absorb poll jitter")
    transfer_interval_secs: float = Field(
        60.0, gt=0, description="how often per-peer byte deltas are emitted"
    )
    state_save_interval_secs: float = Field(30.0, gt=0)
    capture_dir: str | None = Field(
        None,
        description="also write every snapshot read as <unix-ts>.dump here (keys as fingerprints only), "
        "for `wgsiem replay`",
    )
    capture_keyframe_secs: float = Field(
        3600.0, gt=0, description="a full snapshot this often; only changed peers in between"
    )


def poll_interval_warning(config: WgStateSourceConfig) -> str | None:
    """A warning when polls are too far apart to follow sessions (pure; the source logs it).

    A session is over once its latest handshake is older than ``session_timeout_secs`` plus
    ``session_grace_secs``; a peer re-handshakes every 2 minutes while in use. With polls at least that
    far apart, a poll can see the latest handshake already older than the timeout although the peer
    kept its session alive in between (the handshakes between two polls are never seen): the session
    is ended and a new one started on the next poll that sees a newer handshake."""
    expiry = config.session_timeout_secs + config.session_grace_secs
    if config.poll_interval_secs < expiry:
        return None
    return (
        f"wg_state poll_interval_secs ({config.poll_interval_secs:g}) is not below the session timeout "
        f"plus grace ({expiry:g} s): sessions of peers that stay connected will be reported as ended and "
        "restarted between polls; poll more often (the default is 5 s) or raise session_grace_secs"
    )
