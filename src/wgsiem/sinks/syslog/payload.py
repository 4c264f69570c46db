"""ECS document → syslog MSG payload: JSON, ArcSight CEF or QRadar LEEF 2.0 (pure functions).

The CEF and LEEF mappings are tables (:data:`CEF_EXTENSION`, :data:`LEEF_ATTRIBUTES`) so the docs and
the tests read the same thing the encoder does. Escaping follows the CEF Implementation Standard
(``shared/reference/formats/09_cef_leef_syslog.md`` §A): header ``\\`` → ``\\\\`` then ``|`` → ``\\|``;
extension values ``\\`` → ``\\\\``, ``=`` → ``\\=``, CR/LF → ``\\r``/``\\n``. LEEF defines no escape
at all (§B), so a value holding the delimiter or a line break has those replaced by a space, and a
header field holding ``|`` has it replaced by ``/``: lossy, but a QRadar parser never mis-splits.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from wgsiem import __version__

__all__ = [
    "CEF_EXTENSION",
    "LEEF_ATTRIBUTES",
    "PRODUCT",
    "VENDOR",
    "Facts",
    "cef_escape_extension",
    "cef_escape_header",
    "cef_severity",
    "encode_cef",
    "encode_json",
    "encode_leef",
    "event_time",
    "extract",
    "field",
    "leef_delimiter_field",
    "syslog_severity",
]

VENDOR = "wgsiem"
PRODUCT = "wgsiem"

_CEF_HEADER_LIMITS = (63, 63, 31, 1023, 512)
"""deviceVendor, deviceProduct, deviceVersion, deviceEventClassId, name (CEF standard)."""


class Facts(dict[str, Any]):
    """The mapped fields of one document, flat (``"source.ip" → value``), read in one walk.

    Every mapping reads a few dozen fields, several of them twice (SD, CEF/LEEF, severity): walking the
    document once along a prefix tree of the wanted paths costs a fraction of resolving each path from
    the root every time. :func:`field` answers from it directly.
    """

    __slots__ = ()


def field(doc: Mapping[str, Any], path: str) -> Any:
    """``doc["a"]["b"]`` for ``"a.b"`` (ECS nested form), or a flat dotted key; None when absent."""
    if type(doc) is Facts:
        return doc.get(path)
    node: Any = doc.get(path, _MISSING)
    if node is not _MISSING:
        return node
    parts = _SPLIT.get(path)
    if parts is None:
        parts = _SPLIT[path] = tuple(path.split("."))
    node = doc
    for part in parts:
        # hot path: documents are plain dicts (no exceptions, no ABC checks for absent fields)
        if type(node) is not dict and not isinstance(node, Mapping):
            return None
        node = node.get(part, _MISSING)
        if node is _MISSING:
            return None
    return node


_MISSING = object()
_SPLIT: dict[str, tuple[str, ...]] = {}
_Tree = dict[str, Any]


def _tree(paths: list[str]) -> _Tree:
    root: _Tree = {}
    for path in paths:
        node = root
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = path
    return root


def extract(doc: Mapping[str, Any], paths: list[str] | None = None) -> Facts:
    """:class:`Facts` of ``doc`` for ``paths`` (default: every field the syslog mappings read)."""
    tree = _TREE if paths is None else _tree(paths)
    out = Facts()
    stack: list[tuple[Mapping[str, Any], _Tree]] = [(doc, tree)]
    while stack:
        node, sub = stack.pop()
        for key, child in sub.items():
            value = node.get(key)
            if value is None:
                continue
            if type(child) is str:
                out[child] = value
            elif isinstance(value, Mapping):
                stack.append((value, child))
    for key in doc:  # flat dotted keys, as some shippers write them
        if "." in key and key in _WANTED and key not in out:
            out[key] = doc[key]
    return out


def _text(value: Any) -> str | None:
    """A scalar as text (lists joined by commas); None for absent, empty or structured values."""
    if value is None or isinstance(value, Mapping):
        return None
    if isinstance(value, list):
        parts = [t for t in (_text(v) for v in value) if t]
        return ",".join(parts) or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return repr(int(value)) if value.is_integer() else repr(value)
    text = str(value)
    return text or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def event_time(doc: Mapping[str, Any]) -> datetime | None:
    """``@timestamp`` as an aware UTC datetime, or None when absent or not ISO 8601."""
    if type(doc) is Facts:
        if "@at" not in doc:
            doc["@at"] = _parse_time(doc.get("@timestamp"))
        cached: datetime | None = doc["@at"]
        return cached
    return _parse_time(doc.get("@timestamp"))


def _parse_time(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC)


def _alert_score(doc: Mapping[str, Any]) -> float | None:
    """0–100: ``event.severity`` (Elastic's numeric scale), else ``event.risk_score``."""
    for path in ("event.severity", "event.risk_score"):
        value = _number(field(doc, path))
        if value is not None:
            return min(100.0, max(0.0, value))
    return None


def _is_alert(doc: Mapping[str, Any]) -> bool:
    return field(doc, "event.kind") == "alert"


def syslog_severity(doc: Mapping[str, Any]) -> int:
    """RFC 5424 severity: alerts by score (≥90 critical 2, ≥70 error 3, ≥40 warning 4, else notice 5;
    unscored warning 4); every other event informational (6)."""
    if not _is_alert(doc):
        return 6
    score = _alert_score(doc)
    if score is None:
        return 4
    if score >= 90:
        return 2
    if score >= 70:
        return 3
    if score >= 40:
        return 4
    return 5


def cef_severity(doc: Mapping[str, Any]) -> int:
    """CEF 0–10: an alert's score / 10 rounded (unscored 5); other events 1 (Low)."""
    if not _is_alert(doc):
        return 1
    score = _alert_score(doc)
    return 5 if score is None else min(10, max(0, int(score / 10 + 0.5)))


def _epoch_ms(doc: Mapping[str, Any]) -> str | None:
    at = event_time(doc)
    return None if at is None else str(int(at.timestamp() * 1000))


def _ip_version(doc: Mapping[str, Any], path: str) -> int | None:
    value = field(doc, path)
    return _version_of(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=4096)
def _version_of(text: str) -> int | None:
    """Addresses repeat (a peer's endpoint in every event of it): parse each once."""
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return None


def _ipv4(path: str) -> Callable[[Mapping[str, Any]], str | None]:
    return lambda doc: field(doc, path) if _ip_version(doc, path) == 4 else None


def _ipv6(path: str) -> Callable[[Mapping[str, Any]], str | None]:
    return lambda doc: field(doc, path) if _ip_version(doc, path) == 6 else None


def _path(path: str) -> Callable[[Mapping[str, Any]], str | None]:
    return lambda doc: _text(field(doc, path))


def _const(value: str, when: str) -> Callable[[Mapping[str, Any]], str | None]:
    """A label (``cs1Label=…``) present only when the field it labels is."""
    return lambda doc: value if _text(field(doc, when)) is not None else None


def _ipv6_label(value: str, when: str) -> Callable[[Mapping[str, Any]], str | None]:
    return lambda doc: value if _ip_version(doc, when) == 6 else None


def _upper(path: str) -> Callable[[Mapping[str, Any]], str | None]:
    return lambda doc: t.upper() if (t := _text(field(doc, path))) else None


Mapper = Callable[[Mapping[str, Any]], str | None]

CEF_EXTENSION: tuple[tuple[str, str, Mapper], ...] = (
    # (CEF key, ECS source as documented, extractor)
    ("rt", "@timestamp (ms since epoch)", _epoch_ms),
    ("externalId", "event.id", _path("event.id")),
    ("act", "event.action", _path("event.action")),
    ("cat", "event.dataset", _path("event.dataset")),
    ("outcome", "event.outcome", _path("event.outcome")),
    ("src", "source.ip (IPv4)", _ipv4("source.ip")),
    ("c6a2", "source.ip (IPv6)", _ipv6("source.ip")),
    ("c6a2Label", "'Source IPv6 Address'", _ipv6_label("Source IPv6 Address", "source.ip")),
    ("spt", "source.port", _path("source.port")),
    ("dst", "destination.ip (IPv4)", _ipv4("destination.ip")),
    ("c6a3", "destination.ip (IPv6)", _ipv6("destination.ip")),
    ("c6a3Label", "'Destination IPv6 Address'", _ipv6_label("Destination IPv6 Address", "destination.ip")),
    ("dpt", "destination.port", _path("destination.port")),
    ("proto", "network.transport (upper case)", _upper("network.transport")),
    ("suser", "user.name", _path("user.name")),
    ("dvchost", "observer.hostname", _path("observer.hostname")),
    ("deviceInboundInterface", "observer.ingress.interface.name", _path("observer.ingress.interface.name")),
    ("in", "wireguard.peer.rx_bytes", _path("wireguard.peer.rx_bytes")),
    ("out", "wireguard.peer.tx_bytes", _path("wireguard.peer.tx_bytes")),
    ("cs1", "wireguard.peer.public_key", _path("wireguard.peer.public_key")),
    ("cs1Label", "'wgPeerPublicKey'", _const("wgPeerPublicKey", "wireguard.peer.public_key")),
    ("cs2", "rule.id", _path("rule.id")),
    ("cs2Label", "'ruleId'", _const("ruleId", "rule.id")),
    ("cs3", "wireguard.session.id", _path("wireguard.session.id")),
    ("cs3Label", "'wgSessionId'", _const("wgSessionId", "wireguard.session.id")),
    ("cfp1", "event.risk_score", _path("event.risk_score")),
    ("cfp1Label", "'riskScore'", _const("riskScore", "event.risk_score")),
    ("reason", "event.reason", _path("event.reason")),
    ("msg", "message", _path("message")),
)
"""CEF extension keys in the order written; a key whose source is absent is left out."""

LEEF_ATTRIBUTES: tuple[tuple[str, str, Mapper], ...] = (
    ("devTime", "@timestamp (ms since epoch: no devTimeFormat needed)", _epoch_ms),
    ("cat", "event.dataset", _path("event.dataset")),
    ("sev", "severity 1–10 (as CEF, at least 1)", lambda doc: str(max(1, cef_severity(doc)))),
    ("src", "source.ip", _path("source.ip")),
    ("srcPort", "source.port", _path("source.port")),
    ("dst", "destination.ip", _path("destination.ip")),
    ("dstPort", "destination.port", _path("destination.port")),
    ("proto", "network.transport", _path("network.transport")),
    ("usrName", "user.name", _path("user.name")),
    ("srcBytes", "wireguard.peer.rx_bytes", _path("wireguard.peer.rx_bytes")),
    ("dstBytes", "wireguard.peer.tx_bytes", _path("wireguard.peer.tx_bytes")),
    ("eventId", "event.id", _path("event.id")),
    ("action", "event.action", _path("event.action")),
    ("outcome", "event.outcome", _path("event.outcome")),
    ("observerHostName", "observer.hostname", _path("observer.hostname")),
    ("wgInterface", "observer.ingress.interface.name", _path("observer.ingress.interface.name")),
    ("wgPeerPublicKey", "wireguard.peer.public_key", _path("wireguard.peer.public_key")),
    ("wgSessionId", "wireguard.session.id", _path("wireguard.session.id")),
    ("riskScore", "event.risk_score", _path("event.risk_score")),
    ("ruleId", "rule.id", _path("rule.id")),
    ("reason", "event.reason", _path("event.reason")),
    ("msg", "message", _path("message")),
)
"""LEEF 2.0 attributes in the order written (predefined QRadar keys first, then wgsiem's own)."""


_WANTED = [
    "@timestamp",
    "event.id",
    "event.kind",
    "event.action",
    "event.dataset",
    "event.outcome",
    "event.severity",
    "event.risk_score",
    "event.reason",
    "message",
    "rule.id",
    "rule.name",
    "source.ip",
    "source.port",
    "destination.ip",
    "destination.port",
    "network.transport",
    "user.name",
    "observer.hostname",
    "observer.ingress.interface.name",
    "wireguard.peer.public_key",
    "wireguard.peer.rx_bytes",
    "wireguard.peer.tx_bytes",
    "wireguard.session.id",
]
"""Every field a syslog mapping reads (header, SD, CEF, LEEF); a test checks the tables use no other."""
_TREE = _tree(_WANTED)


def encode_json(doc: Mapping[str, Any]) -> str:
    """The ECS document as compact JSON (non-ASCII kept as UTF-8; line breaks escaped by JSON)."""
    return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS).decode()


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def cef_escape_header(text: str) -> str:
    """CEF header field: ``\\`` → ``\\\\`` first, then ``|`` → ``\\|``; line breaks become spaces."""
    return _one_line(text.replace("\\", "\\\\").replace("|", "\\|"))


def cef_escape_extension(text: str) -> str:
    """CEF extension value: ``\\`` → ``\\\\``, ``=`` → ``\\=``, CR/LF → ``\\r``/``\\n``."""
    return (
        text.replace("\\", "\\\\").replace("=", "\\=").replace("\r\n", "\\n").replace("\r", "\\r")
    ).replace("\n", "\\n")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def _signature(doc: Mapping[str, Any]) -> str:
    return _text(field(doc, "event.action")) or _text(field(doc, "event.dataset")) or "unknown"


def _name(doc: Mapping[str, Any]) -> str:
    for path in ("rule.name", "message", "event.reason", "event.action"):
        text = _text(field(doc, path))
        if text:
            return text
    return "wgsiem event"


def encode_cef(doc: Mapping[str, Any], *, version: str = __version__) -> str:
    """``CEF:0|wgsiem|wgsiem|<version>|<event.action>|<name>|<0-10>|<extension>``."""
    if type(doc) is not Facts:
        doc = extract(doc)
    header = [
        cef_escape_header(_cut(part, limit))
        for part, limit in zip(
            (VENDOR, PRODUCT, version, _signature(doc), _name(doc)), _CEF_HEADER_LIMITS, strict=True
        )
    ]
    ext = []
    for key, _, mapper in CEF_EXTENSION:
        value = mapper(doc)
        if value is not None:
            ext.append(f"{key}={cef_escape_extension(value)}")
    return f"CEF:0|{'|'.join(header)}|{cef_severity(doc)}|{' '.join(ext)}"


def leef_delimiter_field(delimiter: str) -> str:
    """The delimiter as written in the header: printable characters as is, others as ``xHH``."""
    return delimiter if 33 <= ord(delimiter) <= 126 else f"x{ord(delimiter):02X}"


def _leef_header(text: str) -> str:
    return _one_line(text.replace("|", "/"))


def encode_leef(doc: Mapping[str, Any], *, delimiter: str = "\t", version: str = __version__) -> str:
    """``LEEF:2.0|wgsiem|wgsiem|<version>|<event.action>|<delimiter>|key=value<delim>…``."""
    if type(doc) is not Facts:
        doc = extract(doc)
    head = "|".join(
        _leef_header(_cut(p, 255)) for p in ("LEEF:2.0", VENDOR, PRODUCT, version, _signature(doc))
    )
    attrs = []
    for key, _, mapper in LEEF_ATTRIBUTES:
        value = mapper(doc)
        if value is not None:
            attrs.append(f"{key}={_one_line(value.replace(delimiter, ' '))}")
    return f"{head}|{leef_delimiter_field(delimiter)}|{delimiter.join(attrs)}"
