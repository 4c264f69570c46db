"""Immutable records the ``kernel_log`` parsers produce (no I/O here).

They are ``NamedTuple`` rather than frozen dataclasses: a frozen dataclass pays one
``object.__setattr__`` per field on construction, a tuple none, and the parser builds one record per
WireGuard line (the 200,000 lines/s budget is 5 µs per line).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["DebugPrefix", "Endpoint", "KernelMessage", "LogLine", "WgQuickLine"]


class Endpoint(NamedTuple):
    """A ``%pISpfsc`` endpoint as the kernel printed it: ``1.2.3.4:51820``,
    ``[2001:db8::1]:51820/0%0`` (IPv6 with flow info and scope id) or ``(einval)`` (no endpoint)."""

    text: str
    ip: str | None = None
    port: int | None = None
    flowinfo: int | None = None
    scope_id: int | None = None
    unset: bool = False  # "(einval)": the peer has no endpoint

    @property
    def address(self) -> str | None:
        """``ip:port`` / ``[ip]:port`` as the peer directory writes endpoints (no flow, no scope)."""
        if self.ip is None or self.port is None:
            return None
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


class DebugPrefix(NamedTuple):
    """What dynamic debug's ``+flmt`` flags put before a message: ``[9441] wireguard:func:158:``."""

    thread: str | None = None  # pid, or "intr" for interrupt context
    module: str | None = None
    function: str | None = None
    line: int | None = None


class KernelMessage(NamedTuple):
    """One WireGuard (or ``net_ratelimit``) kernel message, with every number it carries."""

    action: str
    text: str  # the message after "wireguard: " (interface included), as logged
    module: str = "wireguard"  # "wireguard", "amneziawg", or "net_ratelimit" / "kernel"
    interface: str | None = None
    peer_id: int | None = None
    peer_name: str | None = None  # vendor kernels (Keenetic) print a peer name
    endpoint: Endpoint | None = None
    keypair_id: int | None = None
    inner_ip: str | None = None  # unallowed-source-ip: the tunnel source address; no-allowed-ips-match: dst
    nonce: int | None = None
    max_nonce: int | None = None
    attempts: int | None = None
    try_number: int | None = None
    after_secs: int | None = None
    errno: int | None = None
    version: str | None = None  # module-loaded
    ip_version: int | None = None  # socket-create-failed
    suppressed: int | None = None
    direction: str | None = None  # "inbound" / "outbound" for packet messages
    debug: DebugPrefix | None = None


class WgQuickLine(NamedTuple):
    """One line ``wg-quick`` wrote (stderr → journal/syslog), key material already redacted."""

    action: str
    text: str  # the redacted line
    interface: str | None = None
    command: str | None = None  # the redacted command of a "[#] …" line
    program: str | None = None  # first word of the command: ip, wg, resolvconf, nft, …


class LogLine(NamedTuple):
    """A parsed log line: where the message came from, when, and the message."""

    message: KernelMessage | WgQuickLine
    time: float | None  # epoch seconds; None for a bare dmesg line when the boot time is unknown
    uptime: float | None = None  # the kernel's "[  265.694319]" (seconds since boot)
    host: str | None = None
    program: str | None = None  # syslog tag / SYSLOG_IDENTIFIER ("kernel", "wg-quick")
    pid: int | None = None
    priority: int | None = None  # syslog PRI / journal PRIORITY (severity only for the latter)
    line_format: str = "bare"  # rfc3164 | rfc5424 | iso | dmesg | dmesg-T | logread | journal | bare
