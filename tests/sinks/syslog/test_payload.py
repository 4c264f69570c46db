"""Unit tests of the CEF / LEEF / JSON payloads: exact output for real documents, escaping, severity."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wgsiem.sinks.syslog.payload import (
    cef_escape_extension,
    cef_escape_header,
    cef_severity,
    encode_cef,
    encode_json,
    encode_leef,
    leef_delimiter_field,
    syslog_severity,
)

from .parse_back import parse_cef, parse_leef

ALERT_CEF = (
    "CEF:0|wgsiem|wgsiem|0.1.0|wireguard_unallowed_source_ip|"
    "WireGuard peer sent packets from a source address outside its AllowedIPs|5|"
    "rt=1764000000000 externalId=436e2f9fbb4066182a2836ea97b15355 act=wireguard_unallowed_source_ip "
    "cat=wireguard.detect src=203.0.113.7 spt=51820 proto=UDP dvchost=gw-test deviceInboundInterface=wg0 "
    "cs2=5731ad8c-888c-4bf0-9fe9-2669305d0ce4 cs2Label=ruleId cfp1=47 cfp1Label=riskScore "
    "reason=WireGuard peer sent packets from a source address outside its AllowedIPs: "
    "source.ip\\=203.0.113.7 "
    "msg=WireGuard peer sent packets from a source address outside its AllowedIPs (source.ip\\=203.0.113.7)"
)
ALERT_LEEF = (
    "LEEF:2.0|wgsiem|wgsiem|0.1.0|wireguard_unallowed_source_ip|^|devTime=1764000000000^"
    "cat=wireguard.detect^sev=5^src=203.0.113.7^srcPort=51820^proto=udp^"
    "eventId=436e2f9fbb4066182a2836ea97b15355^action=wireguard_unallowed_source_ip^"
    "observerHostName=gw-test^wgInterface=wg0^riskScore=47^ruleId=5731ad8c-888c-4bf0-9fe9-2669305d0ce4^"
    "reason=WireGuard peer sent packets from a source address outside its AllowedIPs: source.ip=203.0.113.7^"
    "msg=WireGuard peer sent packets from a source address outside its AllowedIPs (source.ip=203.0.113.7)"
)


def _alert(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in events if d["event"]["kind"] == "alert")


def test_cef_of_a_real_alert(events: list[dict[str, Any]]) -> None:
    assert encode_cef(_alert(events)) == ALERT_CEF


def test_leef_of_a_real_alert(events: list[dict[str, Any]]) -> None:
    assert encode_leef(_alert(events), delimiter="^") == ALERT_LEEF


def test_json_is_the_document(events: list[dict[str, Any]]) -> None:
    for doc in events:
        assert json.loads(encode_json(doc)) == doc


def test_cef_header_escaping_per_standard() -> None:
    # the standard's own example: "detected a \| in message"
    assert cef_escape_header("detected a | in message") == "detected a \\| in message"
    assert cef_escape_header("a\\b|c") == "a\\\\b\\|c"
    assert cef_escape_header("x=y") == "x=y"  # equal signs in the header need no escaping
    assert cef_escape_header("two\nlines") == "two lines"


def test_cef_extension_escaping_per_standard() -> None:
    assert cef_escape_extension("blocked a = dst") == "blocked a \\= dst"
    assert cef_escape_extension("a | b") == "a | b"  # pipes in the extension are not escaped
    assert cef_escape_extension("c:\\dir") == "c:\\\\dir"
    assert cef_escape_extension("l1\nl2\rl3\r\nl4") == "l1\\nl2\\rl3\\nl4"


def test_ipv6_uses_c6a_keys_not_src(events: list[dict[str, Any]]) -> None:
    login = next(d for d in events if d["event"]["action"] == "identity-login")
    _, ext = parse_cef(encode_cef(login))
    assert (ext["c6a2"], ext["c6a2Label"]) == ("2001:db8:1::20", "Source IPv6 Address")
    assert "src" not in ext


def test_absent_fields_are_left_out() -> None:
    header, ext = parse_cef(encode_cef({"event": {"action": "x"}}))
    assert header == ["0", "wgsiem", "wgsiem", "0.1.0", "x", "x", "1"]
    assert ext == {"act": "x"}


def test_leef_delimiter_field() -> None:
    assert leef_delimiter_field("\t") == "x09"
    assert leef_delimiter_field("^") == "^"


def test_leef_replaces_what_it_cannot_escape() -> None:
    doc = {"event": {"action": "a|b"}, "user": {"name": "x\ty^z\nw"}}
    header, attrs = parse_leef(encode_leef(doc))
    assert header[4] == "a/b"
    assert attrs["usrName"] == "x y^z w"


@pytest.mark.parametrize(
    ("event", "syslog", "cef"),
    [
        ({"kind": "event", "risk_score": 99}, 6, 1),  # not an alert: informational whatever its risk
        ({"kind": "alert", "severity": 99}, 2, 10),  # sigma critical
        ({"kind": "alert", "severity": 73}, 3, 7),  # high
        ({"kind": "alert", "severity": 47}, 4, 5),  # medium
        ({"kind": "alert", "severity": 21}, 5, 2),  # low
        ({"kind": "alert", "severity": 1}, 5, 0),  # informational rule
        ({"kind": "alert", "risk_score": 91.5}, 2, 9),  # no severity: the risk score
        ({"kind": "alert"}, 4, 5),  # unscored alert
    ],
)
def test_severity_mapping(event: dict[str, Any], syslog: int, cef: int) -> None:
    assert (syslog_severity({"event": event}), cef_severity({"event": event})) == (syslog, cef)


def _flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_extract_reads_every_field_the_mappings_use(events: list[dict[str, Any]]) -> None:
    """If a table used a field missing from the extraction list, the full flattening would differ."""
    from wgsiem.sinks.syslog.encoder import structured_data
    from wgsiem.sinks.syslog.payload import Facts, extract

    for doc in events:
        full = Facts(_flatten(doc))
        assert encode_cef(extract(doc)) == encode_cef(full)
        assert encode_leef(extract(doc)) == encode_leef(full)
        assert structured_data(extract(doc), "x@1") == structured_data(full, "x@1")
        assert syslog_severity(extract(doc)) == syslog_severity(full)


def test_flat_dotted_keys_are_read_too() -> None:
    from wgsiem.sinks.syslog.payload import extract

    assert extract({"source.ip": "192.0.2.1", "event": {"action": "a"}}) == {
        "source.ip": "192.0.2.1",
        "event.action": "a",
    }
