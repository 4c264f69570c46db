"""Configuration of the ``syslog`` sink."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wgsiem.sinks.outbox.config import OutboxConfig

__all__ = ["FACILITIES", "SyslogSinkConfig", "TlsConfig"]

FACILITIES: dict[str, int] = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    "ntp": 12,
    "security": 13,
    "console": 14,
    "solaris-cron": 15,
    **{f"local{i}": 16 + i for i in range(8)},
}
"""RFC 5424 §6.2.1 facility names (as rsyslog spells them) → code."""

_STREAM_DEFAULT_MAX_BYTES = 8096
"""rsyslog's default ``maxMessageSize``: a longer message is split or cut by the receiver anyway."""
_UDP_DEFAULT_MAX_BYTES = 2048
"""RFC 5426 §3.2: receivers SHOULD accept 2048 octets; larger datagrams risk IP fragmentation loss."""
_RFC3164_MAX_BYTES = 1024
"""RFC 3164 §4.1: "The total length of the packet MUST be 1024 bytes or less"."""


class TlsConfig(BaseModel):
    """RFC 5425 transport security: the server is verified against ``ca_file`` (or the system store)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: str | None = Field(
        None,
        description="PEM file of the CA(s) that signed the receiver's certificate; default: system store.",
    )
    cert_file: str | None = Field(None, description="PEM client certificate, for receivers that require one.")
    key_file: str | None = Field(None, description="PEM private key of cert_file (never logged).")
    server_name: str | None = Field(
        None, description="Name checked against the receiver's certificate; default: `host`."
    )
    verify: bool = Field(
        True, description="Verify the receiver's certificate and name. Turning this off is for labs only."
    )

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file must be given together")
        return self


class SyslogSinkConfig(BaseModel):
    """``type: syslog`` — send RFC 5424 / RFC 3164 syslog with JSON, CEF or LEEF payloads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["syslog"]
    host: str = Field(description="Receiver's address or name (rsyslog, syslog-ng, a SIEM collector).")
    port: int | None = Field(
        None, ge=1, le=65535, description="Receiver's port; default 514 (udp, tcp) or 6514 (tls, RFC 5425)."
    )
    transport: Literal["udp", "tcp", "tls"] = Field(
        "tcp", description="udp: one message per datagram (no delivery guarantee); tcp; tls (RFC 5425)."
    )
    framing: Literal["octet_counting", "lf"] = Field(
        "octet_counting",
        description="Stream framing (RFC 6587): `octet_counting` (`LEN SP MSG`, safe for any payload) or "
        "`lf` (non-transparent, LF-terminated; LFs inside a message become spaces). tls always uses "
        "octet counting (RFC 5425 §4.3).",
    )
    format: Literal["rfc5424", "rfc3164"] = Field(
        "rfc5424", description="Syslog header: RFC 5424 (structured data) or legacy BSD RFC 3164."
    )
    payload: Literal["json", "cef", "leef"] = Field(
        "json", description="MSG part: the ECS document as JSON, ArcSight CEF, or QRadar LEEF 2.0."
    )
    facility: str = Field(
        "local0", description="Facility name (`local0` … `local7`, `daemon`, `security` …)."
    )
    app_name: str = Field("wgsiem", description="RFC 5424 APP-NAME / RFC 3164 TAG.")
    hostname: str | None = Field(
        None, description="HOSTNAME field; default: the event's `observer.hostname`, else this host's name."
    )
    sd_id: str = Field(
        "wgsiem@32473",
        description="RFC 5424 SD-ID of the structured-data element, `name@<PEN>`; 32473 is the "
        "documentation PEN (RFC 5612): put your organisation's PEN here.",
    )
    structured_data: bool = Field(True, description="RFC 5424: add the SD element with the key fields.")
    utf8_bom: Literal["auto", "always", "never"] = Field(
        "auto",
        description="RFC 5424 MSG: `auto` prefixes the UTF-8 BOM only when the payload is not pure ASCII "
        "(pure ASCII is valid MSG-ANY); `always`; `never` (receivers that keep the BOM in the text).",
    )
    leef_delimiter: str = Field(
        "\t", min_length=1, max_length=1, description="LEEF 2.0 attribute delimiter (one character)."
    )
    max_message_bytes: int | None = Field(
        None,
        ge=480,
        le=65507,
        description="Longest message sent, in bytes; a longer one has its MSG part cut at a character "
        "boundary and is counted as truncated. Default: 1024 for rfc3164 (RFC 3164 §4.1), 2048 over udp "
        "(RFC 5426), 8096 over tcp/tls (rsyslog's default maxMessageSize).",
    )
    connect_timeout_secs: float = Field(5.0, gt=0, description="TCP/TLS connect and handshake timeout.")
    write_timeout_secs: float = Field(30.0, gt=0, description="Time a batch may wait on a full socket.")
    reconnect_initial_backoff_secs: float = Field(0.5, gt=0, description="First wait after a failed connect.")
    reconnect_max_backoff_secs: float = Field(30.0, gt=0, description="Reconnect wait cap (doubling).")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="Used when transport is tls.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable delivery buffer.")

    @model_validator(mode="after")
    def _check(self) -> SyslogSinkConfig:
        problems: list[str] = []
        if self.facility not in FACILITIES:
            problems.append(f"facility {self.facility!r} is not one of {', '.join(FACILITIES)}")
        name, _, pen = self.sd_id.partition("@")
        if not name or not pen.isdigit() or not _sd_name_ok(self.sd_id):
            problems.append(f"sd_id {self.sd_id!r} must be name@<PEN digits>, ≤32 printable chars")
        if self.leef_delimiter in "=| " or self.leef_delimiter in "\r\n":
            problems.append("leef_delimiter must not be `=`, `|`, a space or a line break")
        if not self.app_name or not _printusascii(self.app_name) or len(self.app_name) > 48:
            problems.append("app_name must be 1 to 48 printable ASCII characters without spaces")
        if self.transport == "udp" and self.max_message_bytes and self.max_message_bytes > 65507:
            problems.append("max_message_bytes over udp is at most 65507")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def effective_port(self) -> int:
        return self.port or (6514 if self.transport == "tls" else 514)

    @property
    def effective_framing(self) -> str:
        return "octet_counting" if self.transport == "tls" else self.framing

    @property
    def effective_max_bytes(self) -> int:
        if self.max_message_bytes is not None:
            return self.max_message_bytes
        if self.format == "rfc3164":
            return _RFC3164_MAX_BYTES
        return _UDP_DEFAULT_MAX_BYTES if self.transport == "udp" else _STREAM_DEFAULT_MAX_BYTES


def _printusascii(text: str) -> bool:
    return all(33 <= ord(c) <= 126 for c in text)


def _sd_name_ok(text: str) -> bool:
    return 1 <= len(text) <= 32 and _printusascii(text) and not any(c in text for c in '="]')
