"""Property tests: any document encodes, within the limit, as valid UTF-8 whose fields read back."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.sinks.syslog.config import SyslogSinkConfig
from wgsiem.sinks.syslog.encoder import SyslogEncoder, sd_escape
from wgsiem.sinks.syslog.payload import encode_cef, encode_leef

from .parse_back import parse_cef, parse_leef

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
MAPPED = [
    "@timestamp",
    "event.action",
    "event.kind",
    "event.id",
    "event.severity",
    "event.risk_score",
    "message",
    "user.name",
    "source.ip",
    "source.port",
    "rule.name",
    "observer.hostname",
    "wireguard.peer.public_key",
]


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = draw(st.dictionaries(st.text(max_size=8), values, max_size=4))
    for path in draw(st.lists(st.sampled_from(MAPPED), max_size=6)):
        node = doc
        *parents, leaf = path.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = draw(st.one_of(scalars, st.sampled_from(["alert", "203.0.113.9", "2001:db8::1"])))
    return doc


configs = st.builds(
    dict,
    format=st.sampled_from(["rfc5424", "rfc3164"]),
    payload=st.sampled_from(["json", "cef", "leef"]),
    max_message_bytes=st.one_of(st.none(), st.integers(480, 4000)),
    utf8_bom=st.sampled_from(["auto", "always", "never"]),
)
_HEADER_5424 = re.compile(rb"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ")


@settings(max_examples=300, deadline=None)
@given(documents(), configs)
def test_any_document_encodes_within_limits(doc: dict[str, Any], options: dict[str, Any]) -> None:
    config = SyslogSinkConfig.model_validate({"type": "syslog", "host": "x", **options})
    encoded = SyslogEncoder(config, hostname="h", procid="1").encode(doc)
    assert len(encoded.message) <= config.effective_max_bytes
    encoded.message.decode("utf-8")  # raises if not valid UTF-8
    if config.format == "rfc5424":
        head = _HEADER_5424.match(encoded.message)
        assert head is not None, encoded.message[:200]
        assert 0 <= int(head.group(1)) <= 191
        for token in head.groups()[1:]:
            assert all(33 <= b <= 126 for b in token)
        assert len(head.group(6)) <= 32  # MSGID


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(), st.text(min_size=1))
def test_cef_values_read_back(user: str, message: str, action: str) -> None:
    doc = {"event": {"action": action}, "user": {"name": user}, "message": message}
    header, ext = parse_cef(encode_cef(doc))
    one_line = action.replace("\r", " ").replace("\n", " ")
    assert header[4] == one_line[:1023]
    if user:
        assert ext["suser"] == user.replace("\r\n", "\n")
    if message:
        assert ext["msg"] == message.replace("\r\n", "\n")


@settings(max_examples=300, deadline=None)
@given(st.text(), st.sampled_from(["\t", "^", "~", "\x01"]))
def test_leef_values_never_split(user: str, delimiter: str) -> None:
    doc = {"event": {"action": "a"}, "user": {"name": user}, "message": "m"}
    _, attrs = parse_leef(encode_leef(doc, delimiter=delimiter))
    assert attrs["msg"] == "m"
    if user:
        assert attrs["usrName"] == user.replace(delimiter, " ").replace("\r", " ").replace("\n", " ")


@given(st.text())
def test_sd_escape_reads_back(value: str) -> None:
    escaped = sd_escape(value)
    assert re.sub(r'\\(["\\\]])', r"\1", escaped) == value
    assert re.search(r'(?<!\\)(\\\\)*["\]]', escaped) is None
