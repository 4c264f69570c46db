"""ECS documents of wireguard-go lines: exact documents for verbatim captured lines, peer resolution
outcomes, redaction of key-shaped text, ECS validity of every action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.sources.wggo_log.harness import FIX, HOST, fixture_directory, fixture_peers, make_source
from tests.support.ecs import validate
from wgsiem.event import event_id
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo
from wgsiem.sources.wggo_log.catalog import ACTIONS, Classified
from wgsiem.sources.wggo_log.lines import parse_line
from wgsiem.sources.wggo_log.normalize import redact, split_endpoint, to_ecs
from wgsiem.sources.wggo_log.source import WggoRecord

T0 = 1795629168.0  # 2026-11-25T17:52:48Z


def one(source: Any, text: str, at: float = T0, sequence: int = 1, file: str | None = None) -> dict[str, Any]:
    (env,) = source.process(WggoRecord(parse_line(text), sequence, file), at)
    return env.data


def test_handshake_initiation_received_exact(tmp_path: Path) -> None:
    line = "DEBUG: (wgglg0) 2026/11/25 17:52:48 peer(UV0Z…rMGw) - Received handshake initiation"
    assert line in (FIX / "gateway.log").read_text()
    key = fixture_peers()["clients"]["1"]["public_key"]
    doc = one(
        make_source(tmp_path, fixture_directory(), replay=True), line, sequence=53, file="/logs/wgglg0.log"
    )
    assert doc == {
        "@timestamp": "2026-11-25T17:52:48.000Z",
        "ecs": {"version": "9.5.0-dev"},
        "event": {
            "id": event_id("wggo_log", HOST, "wgglg0", line, 0),
            "kind": "event",
            "category": ["network", "authentication"],
            "type": ["start"],
            "action": "handshake-initiation-received",
            "dataset": "wireguard.wggo_log",
            "module": "wireguard",
            "created": "2026-11-25T17:52:48.000Z",
            "sequence": 53,
            "original": line,
        },
        "agent": {"type": "wgsiem", "version": "0.1.0"},
        "observer": {
            "hostname": HOST,
            "type": "vpn",
            "vendor": "WireGuard",
            "product": "wireguard-go",
            "ingress": {"interface": {"name": "wgglg0"}},
        },
        "log": {"level": "debug", "file": {"path": "/logs/wgglg0.log"}},
        "message": "peer(UV0Z…rMGw) - Received handshake initiation",
        "network": {"transport": "udp", "protocol": "wireguard", "direction": "inbound"},
        "wireguard": {
            "log": {"local_time": "2026/11/25 17:52:48", "interface_from": "line"},
            "interface": {"name": "wgglg0"},
            "peer": {"abbreviation": "UV0Z…rMGw", "resolution": "resolved", "public_key": key},
        },
    }
    assert key.startswith("UV0Z") and key[39:43] == "rMGw"


def test_invalid_initiation_exact(tmp_path: Path) -> None:
    line = "DEBUG: (wgglg0) 2026/11/25 17:52:59 Received invalid initiation message from 203.0.113.12:41694"
    assert line in (FIX / "gateway.log").read_text()
    doc = one(make_source(tmp_path, replay=True), line, at=T0 + 11, sequence=62)
    assert doc["event"]["action"] == "invalid-handshake"
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["type"] == ["denied"]
    assert doc["source"] == {"ip": "203.0.113.12", "address": "203.0.113.12", "port": 41694}
    assert doc["related"] == {"ip": ["203.0.113.12"]}
    assert doc["network"]["type"] == "ipv4"
    assert doc["wireguard"]["endpoint"] == {"text": "203.0.113.12:41694"}
    assert "peer" not in doc["wireguard"]
    assert validate(doc) == []


def test_handshake_timeout_fields(tmp_path: Path) -> None:
    line = (
        "DEBUG: (wgglc2) 2026/11/25 17:53:04 peer(yAG3…X2TI) - "
        "Handshake did not complete after 5 seconds, retrying (try 2)"
    )
    assert line in (FIX / "client2.log").read_text()
    doc = one(make_source(tmp_path, fixture_directory(), replay=True), line)
    assert doc["wireguard"]["handshake"] == {"after_secs": 5, "try": 2}
    assert doc["wireguard"]["peer"]["public_key"] == fixture_peers()["gateway"]["public_key"]
    assert doc["event"]["outcome"] == "failure"


def test_uapi_error_is_redacted(tmp_path: Path) -> None:
    line = next(x for x in (FIX / "gateway.log").read_text().splitlines() if "failed to parse line" in x)
    hexkey = line.split('"')[1]
    assert len(hexkey) == 64
    doc = one(make_source(tmp_path, replay=True), line)
    assert doc["event"]["action"] == "uapi-error"
    assert doc["error"] == {"code": "-71", "message": 'failed to parse line "[redacted]"'}
    assert hexkey not in str(doc)
    assert doc["event"]["original"] == line.replace(hexkey, "[redacted]")


def test_redact_shapes() -> None:
    b64 = "UV0ZLZMjrlNYkdmY/4KSw6terGfy0VACCBJ8fYPrMGw="
    assert redact(f"key {b64} x") == "key [redacted] x"
    assert redact("a" * 64) == "[redacted]"
    assert redact("a" * 65) == "a" * 65  # not a key shape
    assert redact("short") == "short"


def test_peer_unknown_and_ambiguous(tmp_path: Path) -> None:
    line = "DEBUG: (wg0) 2026/11/25 17:52:48 peer(AAAA…zzzz) - Sending handshake initiation"
    doc = one(make_source(tmp_path, replay=True), line)
    assert doc["wireguard"]["peer"] == {"abbreviation": "AAAA…zzzz", "resolution": "unknown"}
    k1 = "AAAA" + "B" * 35 + "zzzz="
    k2 = "AAAA" + "C" * 35 + "zzzz="
    d = PeerDirectory()
    d.publish("wg0", [PeerInfo("wg0", k, "192.0.2.1:1", (), None, 0.0) for k in (k1, k2)], at=0.0)
    doc = one(make_source(tmp_path, d, replay=True), line)
    assert doc["wireguard"]["peer"] == {
        "abbreviation": "AAAA…zzzz",
        "resolution": "ambiguous",
        "candidates": [k1, k2],
    }
    # on another interface the same abbreviation is unknown: resolution is per interface
    other = "DEBUG: (wg1) 2026/11/25 17:52:48 peer(AAAA…zzzz) - Sending handshake initiation"
    assert one(make_source(tmp_path, d, replay=True), other)["wireguard"]["peer"]["resolution"] == "unknown"


def test_peer_resolved_with_endpoint(tmp_path: Path) -> None:
    key = "AAAA" + "B" * 35 + "zzzz="
    d = PeerDirectory()
    d.publish("wg0", [PeerInfo("wg0", key, "192.0.2.1:51820", (), None, 0.0)], at=0.0)
    doc = one(
        make_source(tmp_path, d, replay=True), "DEBUG: (wg0) 2026/11/25 17:52:48 peer(AAAA…zzzz) - Stopping"
    )
    assert doc["wireguard"]["peer"] == {
        "abbreviation": "AAAA…zzzz",
        "resolution": "resolved",
        "public_key": key,
        "endpoint": "192.0.2.1:51820",
    }


def test_interface_from_config_and_file_name(tmp_path: Path) -> None:
    line = "DEBUG: 2023/09/22 11:49:25 peer(WgWB…a/gg) - Sending handshake initiation"
    doc = one(make_source(tmp_path, replay=True, interface="wiretap"), line)
    assert doc["observer"]["ingress"]["interface"]["name"] == "wiretap"
    assert doc["wireguard"]["log"]["interface_from"] == "config"
    doc = one(make_source(tmp_path, replay=True, path=str(tmp_path / "wireguard-go-wg7.log")), line)
    assert (doc["wireguard"]["interface"]["name"], doc["wireguard"]["log"]["interface_from"]) == (
        "wg7",
        "file_name",
    )
    doc = one(make_source(tmp_path, replay=True, path=str(tmp_path / "wireguard-go.log")), line)
    assert "interface" not in doc["wireguard"] and "ingress" not in doc["observer"]


def test_identical_lines_in_one_second_get_distinct_stable_ids(tmp_path: Path) -> None:
    line = "ERROR: (wgglg0) 2026/11/25 17:52:48 invalid UAPI operation: bogus=1"
    src = make_source(tmp_path, replay=True)
    a, b = one(src, line), one(src, line)
    assert a["event"]["id"] != b["event"]["id"]
    again = make_source(tmp_path, replay=True)
    assert [one(again, line)["event"]["id"], one(again, line)["event"]["id"]] == [
        a["event"]["id"],
        b["event"]["id"],
    ]


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_is_valid_ecs(action: str) -> None:
    fields: dict[str, tuple[tuple[str, Any], ...]] = {
        "handshake-timeout": (("after_secs", 5), ("try", 2)),
        "cookie-sent": (("endpoint", "[2001:db8::1]:51820"),),
        "device-up": (("state_old", "Down"), ("state_requested", "Up"), ("state_new", "Up")),
        "mtu-updated": (("mtu", 1420), ("mtu_note", " (too large)")),
        "uapi-error": (("code", "-22"), ("error", "bad")),
        "routine-started": (("routine", "decryption worker"), ("worker", 1)),
        "daemon-started": (("version", "0.0.20220316"),),
        "unallowed-source-ip": (("ip_version", 6),),
        "packet-receive-failed": (("receiver", "v4"), ("error", "closed")),
    }
    doc = to_ecs(
        level="debug",
        message="m",
        raw="r",
        local_time="2026/11/25 17:52:48",
        classified=Classified(action, "ABCD", "wxyz", fields.get(action, ())),
        at=T0,
        created=T0,
        event_id="x",
        sequence=1,
        hostname=HOST,
        interface="wg0",
        interface_from="line",
        peer=("resolved", "K", (), "192.0.2.1:1"),
    )
    assert validate(doc) == []


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("203.0.113.12:41694", ("203.0.113.12", 41694)),
        ("[2001:db8::12]:51820", ("2001:db8::12", 51820)),
        ("[fe80::1%3]:51820", ("fe80::1", 51820)),
        ("nonsense", (None, None)),
        ("host:12", (None, None)),
        ("2001:db8::1", (None, None)),
    ],
)
def test_split_endpoint(endpoint: str, expected: tuple[str | None, int | None]) -> None:
    assert split_endpoint(endpoint) == expected
