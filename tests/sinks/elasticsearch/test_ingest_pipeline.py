"""The ``wgsiem-wg-dump`` ingest pipeline, run through a MODEL of its processors (``ingest_model.py``)
over the real ``wg show all dump`` captures in ``tests/fixtures/wg/`` — there is no Elasticsearch here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.ecs import validate
from wgsiem.sinks.elasticsearch.ingest import dump_pipeline
from wgsiem.sources.wg_state.dump_parser import parse_dump, parse_dump_peer
from wgsiem.sources.wg_state.records import Fingerprinter

from .contract_server import check_pipeline
from .ingest_model import run_pipeline

WG = Path(__file__).resolve().parents[2] / "fixtures" / "wg"
DUMPS = sorted(WG.glob("dump_*.txt"))
PIPELINE = dump_pipeline()


def ingest(line: str) -> dict:
    return run_pipeline(PIPELINE, {"@timestamp": "2026-11-25T16:09:04.000Z", "message": line})


def lines() -> list[str]:
    return [line for p in DUMPS for line in p.read_text().splitlines() if line]


def secrets() -> set[str]:
    """Every private and preshared key in the captures."""
    out = set()
    for line in lines():
        cols = line.split("\t")
        if len(cols) == 5:
            out.add(cols[1])
        elif cols[2] != "(none)":
            out.add(cols[2])
    return out


def test_the_pipeline_has_the_documented_request_shape() -> None:
    assert check_pipeline(PIPELINE) == []


def test_an_ipv6_peer_line_exactly() -> None:
    line = (WG / "dump_ipv6.txt").read_text().splitlines()[2]
    assert ingest(line) == {
        "@timestamp": "2026-11-25T16:09:04.000Z",
        "event": {
            "kind": "state",
            "module": "wireguard",
            "dataset": "wireguard.dump",
            "category": ["configuration"],
            "type": ["info"],
            "action": "dump-peer",
        },
        "observer": {"type": "vpn", "vendor": "WireGuard", "ingress": {"interface": {"name": "wgfx6g0"}}},
        "network": {"protocol": "wireguard", "transport": "udp"},
        "wireguard": {
            "interface": {"name": "wgfx6g0"},
            "peer": {
                "public_key": "5dW9U122tU9yPl4P4Op5XlegyWunv1leC7I4gYhpzzI=",
                "preshared_key": {"present": True},
                "endpoint": "[2001:db8:1::12]:37227",
                "allowed_ips": ["10.222.0.12/32"],
                "latest_handshake": "2026-11-25T16:04:43.000Z",
                "rx_bytes": 3412,
                "tx_bytes": 2012,
                "persistent_keepalive_secs": 0,
            },
        },
        "source": {"ip": "2001:db8:1::12", "port": 37227, "address": "2001:db8:1::12"},
    }


def test_an_interface_line_exactly_without_the_private_key() -> None:
    line = (WG / "dump_ipv6.txt").read_text().splitlines()[0]
    assert ingest(line) == {
        "@timestamp": "2026-11-25T16:09:04.000Z",
        "event": {
            "kind": "state",
            "module": "wireguard",
            "dataset": "wireguard.dump",
            "category": ["configuration"],
            "type": ["info"],
            "action": "dump-interface",
        },
        "observer": {"type": "vpn", "vendor": "WireGuard", "ingress": {"interface": {"name": "wgfx6g0"}}},
        "network": {"protocol": "wireguard", "transport": "udp"},
        "wireguard": {
            "interface": {
                "name": "wgfx6g0",
                "public_key": "/hASvkAii8ag6Ka+T9YoeWId6lIks3X8ECkaSzUNnzU=",
                "listen_port": 51820,
            }
        },
    }


def test_a_never_connected_peer_has_no_endpoint_handshake_or_source() -> None:
    line = next(ln for ln in (WG / "dump_3_peers.txt").read_text().splitlines() if "\t(none)\t(none)\t" in ln)
    doc = ingest(line)
    assert "source" not in doc
    assert set(doc["wireguard"]["peer"]) == {
        "public_key",
        "preshared_key",
        "allowed_ips",
        "rx_bytes",
        "tx_bytes",
        "persistent_keepalive_secs",
    }


def test_every_captured_line_agrees_with_wgsiems_own_dump_parser() -> None:
    fp = Fingerprinter(b"0123456789abcdef")
    for path in DUMPS:
        parsed = parse_dump(path.read_bytes(), fp)
        assert parsed.errors == []
        for line in path.read_text().splitlines():
            doc = ingest(line)
            assert "error" not in doc, (line, doc)
            name = doc["wireguard"]["interface"]["name"]
            snapshot = parsed.interfaces[name]
            if doc["event"]["action"] == "dump-interface":
                assert doc["wireguard"]["interface"]["public_key"] == snapshot.info.public_key
                assert doc["wireguard"]["interface"]["listen_port"] == snapshot.info.listen_port
                continue
            wg = doc["wireguard"]["peer"]
            peers = [parse_dump_peer(raw, fp) for raw in snapshot.peers.values()]
            peer = next(p for p in peers if p.public_key == wg["public_key"])
            assert wg.get("endpoint") == peer.endpoint
            assert tuple(wg.get("allowed_ips", ())) == peer.allowed_ips
            assert wg["rx_bytes"] == peer.rx_bytes and wg["tx_bytes"] == peer.tx_bytes
            assert wg["persistent_keepalive_secs"] == peer.persistent_keepalive
            assert wg["preshared_key"]["present"] == peer.preshared_key_present
            if peer.latest_handshake:
                when = datetime.fromtimestamp(peer.latest_handshake, UTC)
                assert wg["latest_handshake"] == when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            else:
                assert "latest_handshake" not in wg
            assert validate(doc) == [], (line, validate(doc))


def test_no_private_or_preshared_key_survives() -> None:
    keys = secrets()
    assert len(keys) >= 5
    text = json.dumps([ingest(line) for line in lines()])
    for key in keys:
        assert key not in text


def test_a_line_that_does_not_parse_is_an_error_without_its_text() -> None:
    # an interface line cut short: still holds a private key, matches neither pattern
    cols = (WG / "dump_3_peers.txt").read_text().splitlines()[0].split("\t")
    line = "\t".join(cols[:3])
    doc = ingest(line)
    assert doc["event"] == {"kind": "pipeline_error"}
    assert doc["error"]["message"].startswith("Unable to find match for dissect pattern")
    assert cols[1] not in orjson.dumps(doc).decode()
    assert "message" not in doc


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=50), st.sampled_from(["(none)", "off", "0", "0x1", "1.2.3.4:5", "[::1]:7"])
        ),
        min_size=1,
        max_size=11,
    )
)
def test_arbitrary_lines_never_break_the_pipeline_and_never_keep_the_text(cols: list[str]) -> None:
    line = "\t".join(cols)
    doc = ingest(line)
    assert "message" not in doc and "_wgdump" not in doc
    if doc["event"]["kind"] == "pipeline_error":
        assert set(doc) == {"@timestamp", "event", "error"} | ({"wireguard"} & set(doc)) | (
            {"observer", "network", "source"} & set(doc)
        )
