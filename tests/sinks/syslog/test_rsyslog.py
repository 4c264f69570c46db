"""Component tests: a real rsyslogd receives what the deliverer sends and writes what it parsed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from wgsiem.errors import WgsiemError
from wgsiem.sinks.outbox.contract import Pending, RetryableDeliveryError
from wgsiem.sinks.syslog.config import SyslogSinkConfig
from wgsiem.sinks.syslog.sink import SyslogDeliverer

from .parse_back import parse_cef, parse_leef
from .rsyslog import Rsyslog

pytestmark = pytest.mark.component

SESSION_SD = {
    "id": "208cfb9e4abcc723d2cc63795d3414b8",
    "kind": "event",
    "dataset": "wireguard.state",
    "action": "session-started",
    "outcome": "success",
    "riskScore": "64",
    "interface": "wgt1kn00g0",
    "peer": "6+X9n790jRQmcLxCblbVdur7ac0Cu+h7F/KwHsvlCyw=",
    "srcIp": "203.0.113.12",
    "srcPort": "33730",
    "dstPort": "51820",
}
ALERT_SD = {
    "id": "436e2f9fbb4066182a2836ea97b15355",
    "kind": "alert",
    "dataset": "wireguard.detect",
    "action": "wireguard_unallowed_source_ip",
    "severity": "47",
    "riskScore": "47",
    "interface": "wg0",
    "srcIp": "203.0.113.7",
    "srcPort": "51820",
    "ruleId": "5731ad8c-888c-4bf0-9fe9-2669305d0ce4",
}
SESSION_CEF_HEADER = ["0", "wgsiem", "wgsiem", "0.1.0", "session-started", "session-started", "1"]
SESSION_CEF_EXT = {
    "rt": "1795631974000",
    "externalId": "208cfb9e4abcc723d2cc63795d3414b8",
    "act": "session-started",
    "cat": "wireguard.state",
    "outcome": "success",
    "src": "203.0.113.12",
    "spt": "33730",
    "dpt": "51820",
    "proto": "UDP",
    "dvchost": "gw-test",
    "deviceInboundInterface": "wgt1kn00g0",
    "in": "212",
    "out": "188",
    "cs1": "6+X9n790jRQmcLxCblbVdur7ac0Cu+h7F/KwHsvlCyw=",
    "cs1Label": "wgPeerPublicKey",
    "cs3": "16d4410eca9ca217e2fa805265edc940",
    "cs3Label": "wgSessionId",
    "cfp1": "64",
    "cfp1Label": "riskScore",
}
SESSION_LEEF_ATTRS = {
    "devTime": "1795631974000",
    "cat": "wireguard.state",
    "sev": "1",
    "src": "203.0.113.12",
    "srcPort": "33730",
    "dstPort": "51820",
    "proto": "udp",
    "srcBytes": "212",
    "dstBytes": "188",
    "eventId": "208cfb9e4abcc723d2cc63795d3414b8",
    "action": "session-started",
    "outcome": "success",
    "observerHostName": "gw-test",
    "wgInterface": "wgt1kn00g0",
    "wgPeerPublicKey": "6+X9n790jRQmcLxCblbVdur7ac0Cu+h7F/KwHsvlCyw=",
    "wgSessionId": "16d4410eca9ca217e2fa805265edc940",
    "riskScore": "64",
}
ALERT_NAME = "WireGuard peer sent packets from a source address outside its AllowedIPs"
ALERT_CEF_HEADER = ["0", "wgsiem", "wgsiem", "0.1.0", "wireguard_unallowed_source_ip", ALERT_NAME, "5"]


def _config(rsyslog: Rsyslog, transport: str, **kw: Any) -> SyslogSinkConfig:
    tls = {}
    if transport == "tls":
        t = rsyslog.tls
        tls = {"ca_file": str(t.ca), "cert_file": str(t.client_cert), "key_file": str(t.client_key)}
        tls["server_name"] = "localhost"
    return SyslogSinkConfig.model_validate(
        {
            "type": "syslog",
            "host": "127.0.0.1",
            "port": rsyslog.ports[transport],
            "transport": transport,
            "tls": tls,
            "max_message_bytes": 16000,
            **kw,
        }
    )


def _pending(docs: list[dict[str, Any]]) -> list[Pending]:
    return [Pending(n, d["event"]["id"], d) for n, d in enumerate(docs)]


def _send(config: SyslogSinkConfig, docs: list[dict[str, Any]]) -> SyslogDeliverer:
    async def run() -> SyslogDeliverer:
        deliverer = SyslogDeliverer(config, hostname="testhost", procid="4242")
        await deliverer.start()
        await deliverer.health_check()
        report = await deliverer.deliver(_pending(docs))
        assert report.rejected == {} and report.retry == []
        await deliverer.close()
        return deliverer

    return asyncio.run(run())


def _msg(record: dict[str, Any], fmt: str) -> str:
    # rsyslog keeps the space after an RFC 3164 "TAG:" in %msg%
    return record["msg"][1:] if fmt == "rfc3164" else record["msg"]


def _by_action(records: list[dict[str, Any]], fmt: str, payload: str) -> dict[str, dict[str, Any]]:
    out = {}
    for record in records:
        text = _msg(record, fmt)
        if payload == "json":
            action = json.loads(text)["event"]["action"]
        elif payload == "cef":
            action = parse_cef(text)[0][4]
        else:
            action = parse_leef(text)[0][4]
        out[action] = record
    return out


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("fmt", ["rfc5424", "rfc3164"])
@pytest.mark.parametrize("payload", ["json", "cef", "leef"])
def test_rsyslog_parses_every_field(
    rsyslog: Rsyslog, events: list[dict[str, Any]], transport: str, fmt: str, payload: str
) -> None:
    since = rsyslog.mark(transport)
    _send(_config(rsyslog, transport, format=fmt, payload=payload), events)
    got = _by_action(rsyslog.records(transport, since, len(events)), fmt, payload)

    session, alert = got["session-started"], got["wireguard_unallowed_source_ip"]
    assert (session["pri"], alert["pri"]) == ("134", "132")  # local0.info, local0.warning
    for record in got.values():
        assert record["app_name"] == "wgsiem"
        assert record["procid"] == "4242"
    assert got["identity-login"]["hostname"] == "gw-1"
    assert session["hostname"] == "gw-test"
    if fmt == "rfc5424":
        assert session["timestamp"] == "2026-11-25T18:39:34.000Z"
        assert session["msgid"] == "session-started"
        assert session["sd"] == {"wgsiem@32473": SESSION_SD}
        assert alert["msgid"] == "wireguard_unallowed_source_ip"
        assert alert["sd"] == {"wgsiem@32473": ALERT_SD}
    else:
        assert session["timestamp"].endswith("-11-25T18:39:34+00:00")  # RFC 3164 has no year
        assert session["msgid"] == "-"
        assert session["structured_data"] == "-"

    by_id = {d["event"]["action"]: d for d in events}
    if payload == "json":
        for action, record in got.items():
            assert json.loads(_msg(record, fmt)) == by_id[action]
    elif payload == "cef":
        header, ext = parse_cef(_msg(session, fmt))
        assert (header, ext) == (SESSION_CEF_HEADER, SESSION_CEF_EXT)
        header, ext = parse_cef(_msg(alert, fmt))
        assert header == ALERT_CEF_HEADER
        assert ext["cs2"] == "5731ad8c-888c-4bf0-9fe9-2669305d0ce4"
        assert ext["reason"] == by_id["wireguard_unallowed_source_ip"]["event"]["reason"]
        assert ext["msg"] == by_id["wireguard_unallowed_source_ip"]["message"]
        _, ext = parse_cef(_msg(got["identity-login"], fmt))
        assert (ext["c6a2"], ext["c6a2Label"]) == ("2001:db8:1::20", "Source IPv6 Address")
        assert "src" not in ext
    else:
        header, attrs = parse_leef(_msg(session, fmt))
        assert header == ["LEEF:2.0", "wgsiem", "wgsiem", "0.1.0", "session-started", "x09"]
        assert attrs == SESSION_LEEF_ATTRS
        _, attrs = parse_leef(_msg(alert, fmt))
        assert (attrs["sev"], attrs["ruleId"]) == ("5", "5731ad8c-888c-4bf0-9fe9-2669305d0ce4")


def test_lf_framing_over_tcp(rsyslog: Rsyslog, events: list[dict[str, Any]]) -> None:
    since = rsyslog.mark("tcp")
    _send(_config(rsyslog, "tcp", framing="lf", payload="cef"), events)
    got = _by_action(rsyslog.records("tcp", since, len(events)), "rfc5424", "cef")
    assert parse_cef(got["session-started"]["msg"]) == (SESSION_CEF_HEADER, SESSION_CEF_EXT)


def test_escaping_survives_rsyslog(rsyslog: Rsyslog, events: list[dict[str, Any]]) -> None:
    nasty = 'a "quoted" ] \\ back|pipe = eq\nline2 ünï'
    doc = {**events[0], "message": nasty, "user": {"name": nasty}}
    doc["event"] = {**doc["event"], "action": "act ion"}
    for payload in ("cef", "leef"):
        since = rsyslog.mark("tcp")
        _send(_config(rsyslog, "tcp", payload=payload), [doc])
        (record,) = rsyslog.records("tcp", since, 1)
        assert record["sd"]["wgsiem@32473"]["user"] == nasty
        assert record["sd"]["wgsiem@32473"]["action"] == "act ion"
        assert record["msgid"] == "act_ion"
        text = record["msg"]
        assert text.startswith("\ufeff")  # non-ASCII payload: MSG-UTF8 with its BOM
        if payload == "cef":
            header, ext = parse_cef(text[1:])
            assert header[5] == nasty.replace("\n", " ")
            assert (ext["suser"], ext["msg"]) == (nasty, nasty)
        else:
            _, attrs = parse_leef(text[1:])
            assert attrs["usrName"] == nasty.replace("\n", " ")


def test_default_udp_limit_truncates_and_counts(rsyslog: Rsyslog, events: list[dict[str, Any]]) -> None:
    config = _config(rsyslog, "udp", max_message_bytes=None)
    since = rsyslog.mark("udp")
    deliverer = _send(config, events[:1])
    (record,) = rsyslog.records("udp", since, 1)
    assert deliverer.status()["messages_truncated"] == 1
    assert record["sd"] == {"wgsiem@32473": SESSION_SD}  # header and SD kept whole
    assert record["msg"].startswith('{"@timestamp":"2026-11-25T18:39:34.000Z"')


def test_tls_rejects_a_receiver_signed_by_another_ca(rsyslog: Rsyslog) -> None:
    config = _config(rsyslog, "tls")
    config = config.model_copy(
        update={"tls": config.tls.model_copy(update={"ca_file": str(rsyslog.tls.other_ca)})}
    )

    async def run() -> None:
        deliverer = SyslogDeliverer(config, hostname="h")
        with pytest.raises(WgsiemError) as err:
            await deliverer.health_check()
        assert "certificate" in str(err.value) and "tls.ca_file" in str(err.value)

    asyncio.run(run())


def test_receiver_restart_reconnects(own_rsyslog: Rsyslog, events: list[dict[str, Any]]) -> None:
    config = _config(own_rsyslog, "tcp", reconnect_initial_backoff_secs=0.05, reconnect_max_backoff_secs=0.2)

    async def run() -> None:
        deliverer = SyslogDeliverer(config, hostname="h")
        await deliverer.health_check()
        await deliverer.deliver(_pending(events[:1]))
        own_rsyslog.records("tcp", 0, 1)
        await asyncio.to_thread(own_rsyslog.stop)
        # the receiver's FIN is noticed before writing: the batch is refused, not lost in a dead socket
        with pytest.raises(RetryableDeliveryError):
            await deliverer.deliver(_pending(events[1:2]))
        await asyncio.to_thread(own_rsyslog.start)
        for _ in range(200):  # bounded: the outbox would do this retrying
            try:
                await deliverer.deliver(_pending(events[1:2]))
                break
            except RetryableDeliveryError as exc:
                await asyncio.sleep(exc.retry_after_secs or 0.05)
        assert deliverer.status()["connects"] == 2
        await deliverer.close()

    asyncio.run(run())
    records = own_rsyslog.records("tcp", 0, 2)
    assert [r["msgid"] for r in records] == ["session-started", "interface-added"]
