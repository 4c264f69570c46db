"""Unit tests of the RFC 5424 / RFC 3164 messages and RFC 6587 framing: exact bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wgsiem.sinks.syslog.config import SyslogSinkConfig
from wgsiem.sinks.syslog.encoder import (
    SyslogEncoder,
    frame,
    header_token,
    rfc3164_timestamp,
    rfc5424_timestamp,
    sd_escape,
)

SESSION_5424_HEAD = (
    "<134>1 2026-11-25T18:39:34.000Z gw-test wgsiem 42 session-started [wgsiem@32473 "
    'id="208cfb9e4abcc723d2cc63795d3414b8" kind="event" dataset="wireguard.state" action="session-started" '
    'outcome="success" riskScore="64" interface="wgt1kn00g0" '
    'peer="6+X9n790jRQmcLxCblbVdur7ac0Cu+h7F/KwHsvlCyw=" '
    'srcIp="203.0.113.12" srcPort="33730" dstPort="51820"] '
)


def _encoder(**kw: Any) -> SyslogEncoder:
    config = SyslogSinkConfig.model_validate({"type": "syslog", "host": "x", **kw})
    return SyslogEncoder(config, hostname="fallback", procid="42", version="0.1.0")


def test_rfc5424_of_a_real_event(events: list[dict[str, Any]]) -> None:
    message = _encoder(payload="leef", leef_delimiter="^").encode(events[0]).message.decode()
    assert message.startswith(SESSION_5424_HEAD + "LEEF:2.0|wgsiem|wgsiem|0.1.0|session-started|^|devTime=")


def test_rfc3164_of_a_real_alert(events: list[dict[str, Any]]) -> None:
    message = _encoder(format="rfc3164", payload="cef", facility="security").encode(events[-1]).message
    assert message.startswith(b"<108>Nov 24 16:00:00 gw-test wgsiem[42]: CEF:0|wgsiem|")  # 13*8+4


def test_pen_and_facility_are_configurable(events: list[dict[str, Any]]) -> None:
    message = _encoder(sd_id="acme@99999", facility="local7").encode(events[0]).message
    assert message.startswith(b"<190>1 ") and b"[acme@99999 id=" in message


def test_hostname_falls_back_and_can_be_forced() -> None:
    doc = {"@timestamp": "2026-01-02T03:04:05Z", "event": {"action": "a"}}
    assert b" fallback wgsiem 42 a " in _encoder().encode(doc).message
    assert b" gw9 wgsiem 42 a " in _encoder(hostname="gw9").encode(doc).message


def test_missing_timestamp_is_nil_in_5424_and_now_in_3164() -> None:
    now = datetime(2026, 3, 5, 7, 8, 9, tzinfo=UTC)
    assert (
        _encoder(structured_data=False).encode({}, now=now).message == b"<134>1 - fallback wgsiem 42 - - {}"
    )
    assert (
        _encoder(format="rfc3164").encode({}, now=now).message
        == b"<134>Mar  5 07:08:09 fallback wgsiem[42]: {}"
    )


def test_header_tokens() -> None:
    assert header_token("session started ü", 32) == "session_started__"
    assert header_token("x" * 40, 32) == "x" * 32
    assert header_token("", 32) == "-"
    assert header_token(None, 32) == "-"


def test_sd_escape() -> None:
    assert sd_escape('a"b\\c]d') == 'a\\"b\\\\c\\]d'


def test_timestamps() -> None:
    assert rfc5424_timestamp(datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)) == "2026-01-02T03:04:05.123Z"
    assert (
        rfc5424_timestamp(datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)) == "2026-01-02T03:04:05.123456Z"
    )
    assert rfc3164_timestamp(datetime(2026, 11, 5, 3, 4, 5, tzinfo=UTC)) == "Nov  5 03:04:05"


def test_bom_only_for_non_ascii_payloads() -> None:
    doc = {"event": {"action": "a"}, "message": "ascii"}
    assert b"\xef\xbb\xbf" not in _encoder().encode(doc).message
    always = _encoder(utf8_bom="always").encode(doc).message
    assert always.endswith(b'"a"] \xef\xbb\xbf{"event":{"action":"a"},"message":"ascii"}')
    doc["message"] = "ünï"
    assert b"] \xef\xbb\xbf{" in _encoder().encode(doc).message
    assert b"\xef\xbb\xbf" not in _encoder(utf8_bom="never").encode(doc).message
    assert b"\xef\xbb\xbf" not in _encoder(format="rfc3164").encode(doc).message


def test_truncation_keeps_header_and_cuts_on_a_character(events: list[dict[str, Any]]) -> None:
    doc = {**events[0], "message": "é" * 2000}
    encoded = _encoder(max_message_bytes=1000).encode(doc)
    assert encoded.truncated
    assert len(encoded.message) <= 1000 and len(encoded.message) >= 998
    assert encoded.message.startswith(SESSION_5424_HEAD.encode())
    encoded.message.decode("utf-8")  # still valid UTF-8
    assert not _encoder().encode(events[0]).truncated


def test_truncation_never_ends_on_a_lone_escape() -> None:
    doc = {"event": {"action": "a"}, "user": {"name": "\\" * 3000}}
    for limit in (600, 601):
        message = _encoder(payload="cef", structured_data=False, max_message_bytes=limit).encode(doc).message
        body = message.split(b"suser=", 1)[1]
        assert len(body) % 2 == 0


def test_rfc3164_default_limit_is_1024(events: list[dict[str, Any]]) -> None:
    encoded = _encoder(format="rfc3164").encode(events[0])
    assert encoded.truncated and len(encoded.message) <= 1024


def test_framing() -> None:
    assert frame(b"<13>1 - - - - - - hi", "octet_counting") == b"20 <13>1 - - - - - - hi"
    assert frame(b"a\nb", "lf") == b"a b\n"
