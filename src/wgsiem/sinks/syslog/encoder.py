"""ECS document → one syslog message (RFC 5424 or RFC 3164) and its stream framing (RFC 6587). Pure.

Header fields in both RFCs are PRINTUSASCII tokens with no escape: a character outside ``!``…``~``
(a space, a non-ASCII letter) becomes ``_`` and the token is cut to its RFC length (HOSTNAME 255,
APP-NAME 48, PROCID 128, MSGID 32; RFC 3164 TAG 32); an empty token is NILVALUE ``-``.
Structured-data values escape ``"`` ``\\`` ``]`` (RFC 5424 §6.3.3). A message longer than the
configured limit keeps its header and structured data and has its MSG cut at a UTF-8 character
boundary (never inside a CEF/LEEF escape); :attr:`Encoded.truncated` tells the caller to count it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wgsiem import __version__

from .config import FACILITIES, SyslogSinkConfig
from .payload import encode_cef, encode_json, encode_leef, event_time, extract, field, syslog_severity

__all__ = [
    "SD_PARAMS",
    "Encoded",
    "SyslogEncoder",
    "frame",
    "header_token",
    "rfc3164_timestamp",
    "rfc5424_timestamp",
    "sd_escape",
]

BOM = b"\xef\xbb\xbf"
NIL = "-"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

SD_PARAMS: tuple[tuple[str, str], ...] = (
    ("id", "event.id"),
    ("kind", "event.kind"),
    ("dataset", "event.dataset"),
    ("action", "event.action"),
    ("outcome", "event.outcome"),
    ("severity", "event.severity"),
    ("riskScore", "event.risk_score"),
    ("interface", "observer.ingress.interface.name"),
    ("peer", "wireguard.peer.public_key"),
    ("user", "user.name"),
    ("srcIp", "source.ip"),
    ("srcPort", "source.port"),
    ("dstIp", "destination.ip"),
    ("dstPort", "destination.port"),
    ("ruleId", "rule.id"),
)
"""PARAM-NAME → ECS field of the RFC 5424 SD element, in the order written; absent fields are left out."""


@dataclass(frozen=True, slots=True)
class Encoded:
    message: bytes
    """The syslog message, unframed (one UDP datagram, or the MSG of a stream frame)."""
    truncated: bool = False


def header_token(text: str | None, limit: int) -> str:
    """A PRINTUSASCII header token: other characters → ``_``, cut to ``limit``; empty → ``-``."""
    if not text:
        return NIL
    if len(text) <= limit and text.isascii() and text.isprintable() and " " not in text:
        return text
    token = "".join(c if 33 <= ord(c) <= 126 else "_" for c in text[:limit])
    return token or NIL


def sd_escape(value: str) -> str:
    """RFC 5424 PARAM-VALUE: ``\\`` → ``\\\\``, ``"`` → ``\\"``, ``]`` → ``\\]``."""
    if "\\" not in value and '"' not in value and "]" not in value:
        return value
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424_timestamp(at: datetime | None) -> str:
    """RFC 3339 in UTC, milliseconds (microseconds when they carry information); None → ``-``."""
    if at is None:
        return NIL
    at = at.astimezone(UTC)
    base = at.strftime("%Y-%m-%dT%H:%M:%S")
    if at.microsecond % 1000:
        return f"{base}.{at.microsecond:06d}Z"
    return f"{base}.{at.microsecond // 1000:03d}Z"


def rfc3164_timestamp(at: datetime) -> str:
    """``Mmm dd hh:mm:ss`` (day space-padded, English month, UTC: the RFC has no zone, we say UTC)."""
    at = at.astimezone(UTC)
    return f"{_MONTHS[at.month - 1]} {at.day:2d} {at:%H:%M:%S}"


def _scalar(value: Any) -> str | None:
    if type(value) is str:
        return value or None
    if value is None or isinstance(value, Mapping | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) or None


def structured_data(doc: Mapping[str, Any], sd_id: str) -> str:
    params = []
    for name, path in SD_PARAMS:
        value = _scalar(field(doc, path))
        if value is not None:
            params.append(f'{name}="{sd_escape(value)}"')
    return f"[{' '.join([sd_id, *params])}]"


def _cut_utf8(data: bytes, budget: int) -> bytes:
    """The longest prefix of ``data`` within ``budget`` bytes ending on a character boundary and not
    on the escaping backslash of a CEF/SD escape pair."""
    if budget <= 0:
        return b""
    cut = data[:budget]
    while cut and (cut[-1] & 0xC0) == 0x80:  # inside a multi-byte character: back to its start
        cut = cut[:-1]
    if cut and cut[-1] >= 0xC0:  # a lead byte whose continuation was cut off
        cut = cut[:-1]
    trailing = len(cut) - len(cut.rstrip(b"\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut


class SyslogEncoder:
    """Builds messages per the sink's config; ``procid`` and the fallback hostname are given once."""

    def __init__(
        self, config: SyslogSinkConfig, *, hostname: str, procid: str, version: str = __version__
    ) -> None:
        self.config = config
        self.facility = FACILITIES[config.facility]
        self.hostname = hostname
        self.procid = procid
        self.version = version
        self.max_bytes = config.effective_max_bytes

    def payload(self, doc: Mapping[str, Any], facts: Mapping[str, Any] | None = None) -> str:
        kind = self.config.payload
        if kind == "cef":
            return encode_cef(facts if facts is not None else extract(doc), version=self.version)
        if kind == "leef":
            return encode_leef(
                facts if facts is not None else extract(doc),
                delimiter=self.config.leef_delimiter,
                version=self.version,
            )
        return encode_json(doc)

    def _hostname(self, doc: Mapping[str, Any]) -> str:
        name = self.config.hostname or _scalar(field(doc, "observer.hostname")) or self.hostname
        return name

    def encode(self, doc: Mapping[str, Any], *, now: datetime | None = None) -> Encoded:
        """``doc`` as one message; ``now`` stands in for a missing ``@timestamp`` where one is required."""
        facts = extract(doc)
        pri = self.facility * 8 + syslog_severity(facts)
        at = event_time(facts)
        body = self.payload(doc, facts).encode("utf-8", "replace")
        if self.config.format == "rfc3164":
            stamp = rfc3164_timestamp(at or now or datetime.now(UTC))
            host = header_token(self._hostname(facts), 255)
            tag = header_token(self.config.app_name, 32)
            head = f"<{pri}>{stamp} {host} {tag}[{header_token(self.procid, 10)}]: ".encode()
        else:
            sd = NIL
            if self.config.structured_data:
                sd = structured_data(facts, self.config.sd_id)
            msgid = header_token(_scalar(field(facts, "event.action")), 32)
            head = (
                f"<{pri}>1 {rfc5424_timestamp(at)} {header_token(self._hostname(facts), 255)} "
                f"{header_token(self.config.app_name, 48)} {header_token(self.procid, 128)} {msgid} {sd} "
            ).encode("utf-8", "replace")
            bom = self.config.utf8_bom
            if bom == "always" or (bom == "auto" and not body.isascii()):
                head += BOM
        if len(head) + len(body) <= self.max_bytes:
            return Encoded(head + body)
        if len(head) >= self.max_bytes:  # structured data alone too long: cut the whole message
            return Encoded(_cut_utf8(head + body, self.max_bytes), truncated=True)
        return Encoded(head + _cut_utf8(body, self.max_bytes - len(head)), truncated=True)


def frame(message: bytes, framing: str) -> bytes:
    """RFC 6587 stream framing: ``LEN SP MSG`` (octet counting) or ``MSG LF`` (LFs inside → spaces)."""
    if framing == "lf":
        return message.replace(b"\n", b" ") + b"\n"
    return b"%d %b" % (len(message), message)
