"""Context records → ECS documents: exact shape, valid ECS, deterministic ids, peer attribution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.sources.context.helpers import ALICE_KEY, FIXTURES, lab_like_directory, make_source
from tests.support.ecs import validate
from wgsiem.sources.context.parser import parse_body


def docs_of(tmp: Path, name: str, kind: str | None = None, **cfg: Any) -> list[dict[str, Any]]:
    src = make_source(tmp, lab_like_directory(), **cfg)
    records, errors = parse_body((FIXTURES / name).read_bytes(), kind, name)
    assert errors == []
    return [e.data for r in records for e in src.process(r.record, 0.0)]


def without_created(doc: dict[str, Any]) -> dict[str, Any]:
    doc = orjson.loads(orjson.dumps(doc))
    del doc["event"]["created"]
    return doc


def test_identity_mfa_over_the_tunnel_exact_document(tmp_path: Path) -> None:
    doc = docs_of(tmp_path, "identity.ndjson", "identity")[0]
    assert without_created(doc) == {
        "@timestamp": "2026-11-25T09:14:03.221Z",
        "ecs": {"version": "9.5.0-dev"},
        "event": {
            "id": doc["event"]["id"],
            "kind": "event",
            "category": ["authentication"],
            "type": ["info"],
            "action": "identity-mfa",
            "dataset": "wireguard.context",
            "module": "wireguard",
            "outcome": "success",
            "provider": "okta",
        },
        "agent": {"type": "wgsiem", "version": doc["agent"]["version"]},
        "observer": {"hostname": "gw-1"},
        "user": {"name": "alice", "domain": "example.org"},
        "source": {"ip": "10.222.0.11", "address": "10.222.0.11"},
        "related": {"user": ["alice"], "ip": ["10.222.0.11"]},
        "wireguard": {
            "context": {"kind": "identity", "provider": "okta", "factor": "push", "id": "okta-evt-0001"},
            "peer": {
                "public_key": ALICE_KEY,
                "interface": "wg0",
                "attributed_by": "tunnel_ip",
                "address": "10.222.0.11",
            },
        },
    }


def test_identity_failure_from_an_endpoint_and_login_with_offset_time(tmp_path: Path) -> None:
    _, failure, login, logout = docs_of(tmp_path, "identity.ndjson", "identity")
    assert failure["event"]["outcome"] == "failure"
    assert failure["event"]["reason"] == "INVALID_CREDENTIALS"
    assert failure["wireguard"]["peer"]["attributed_by"] == "endpoint"
    assert login["@timestamp"] == "2026-11-25T08:20:00.000Z"  # +01:00 converted to UTC
    assert login["event"]["type"] == ["start"]
    assert "peer" not in login["wireguard"]  # nobody's address: attribution unknown, said by absence
    assert (logout["event"]["action"], logout["event"]["type"]) == ("identity-logout", ["end"])


def test_edr_alert(tmp_path: Path) -> None:
    doc = docs_of(tmp_path, "edr.ndjson", "edr")[0]
    assert doc["event"]["kind"] == "alert"
    assert doc["event"]["category"] == ["intrusion_detection"]
    assert (doc["event"]["severity"], doc["event"]["risk_score"]) == (73, 73.0)
    assert doc["host"] == {"name": "laptop-alice", "ip": ["10.222.0.11"]}
    assert doc["rule"] == {
        "name": "Credential dumping via LSASS access",
        "id": "CS-1042",
        "description": "lsass.exe memory read by an unsigned process",
    }
    assert doc["user"] == {"name": "alice"}
    assert doc["wireguard"]["peer"]["public_key"] == ALICE_KEY


def test_change_ticket_is_state_with_its_window(tmp_path: Path) -> None:
    doc = docs_of(tmp_path, "change.ndjson", "change")[0]
    assert doc["event"]["kind"] == "state"
    assert doc["event"]["category"] == ["configuration"]
    assert (doc["event"]["start"], doc["event"]["end"]) == (
        "2026-11-25T20:00:00.000Z",
        "2026-11-25T22:00:00.000Z",
    )
    assert doc["wireguard"]["change"] == {
        "id": "CHG0031337",
        "approval": "approved",
        "requester": "dave",
        "window": {"start": "2026-11-25T20:00:00.000Z", "end": "2026-11-25T22:00:00.000Z"},
        "hosts": ["gw-1"],
        "peers": [ALICE_KEY],
        "assets": ["CI0042"],
        "title": "Rotate gateway peer key for laptop-alice",
        "peer_interfaces": {ALICE_KEY: "wg0"},
    }


def test_ansible_first_run_real_capture(tmp_path: Path) -> None:
    docs = docs_of(tmp_path, "ansible_json_callback_first_run.json")
    got = [
        (
            d["event"]["action"],
            d["wireguard"]["config_run"].get("task", {}).get("name"),
            d["event"]["type"],
            d["event"]["outcome"],
        )
        for d in docs
    ]
    assert got == [
        ("config-task", "write wg0 drop-in", ["change"], "success"),
        ("config-task", "reload wireguard", ["change"], "success"),
        ("config-task", "check a file that is missing", ["change"], "failure"),
        ("config-run", None, ["change"], "success"),  # ignore_errors: the host did not fail
    ]
    failed = docs[2]
    assert failed["message"] == "non-zero return code"
    assert failed["wireguard"]["config_run"]["task"]["module"] == "ansible.builtin.command"
    assert docs[3]["wireguard"]["config_run"]["stats"] == {
        "changed": 3, "failures": 0, "ignored": 1, "ok": 4, "rescued": 0, "skipped": 1, "unreachable": 0
    }  # fmt: skip
    assert docs[0]["@timestamp"] == "2026-11-25T17:53:05.651Z"  # the task's own end time
    blob = orjson.dumps(docs).decode()
    assert "invocation" not in blob and "ansible-tmp" not in blob and "checksum" not in blob


def test_ansible_rerun_and_failed_host(tmp_path: Path) -> None:
    rerun = docs_of(tmp_path, "ansible_json_callback_rerun.json")
    assert "write wg0 drop-in" not in [
        d["wireguard"]["config_run"].get("task", {}).get("name") for d in rerun
    ]
    everything = docs_of(tmp_path, "ansible_json_callback_rerun.json", ansible_unchanged_tasks=True)
    assert len(everything) == len(rerun) + 2  # ping and the unchanged copy; skipped stays out
    failed = docs_of(tmp_path, "ansible_json_callback_failed_compact.json")
    assert [(d["event"]["action"], d["event"]["outcome"]) for d in failed] == [
        ("config-task", "success"),
        ("config-task", "failure"),
        ("config-run", "failure"),
    ]


def test_every_document_is_valid_ecs_and_ids_are_stable(tmp_path: Path) -> None:
    names = [
        ("identity.ndjson", "identity"),
        ("edr.ndjson", "edr"),
        ("change.ndjson", "change"),
        ("ansible_json_callback_first_run.json", None),
        ("ansible_json_callback_rerun.json", None),
        ("ansible_json_callback_failed_compact.json", None),
    ]
    docs = [d for n, k in names for d in docs_of(tmp_path, n, k)]
    assert [p for d in docs for p in validate(d)] == []
    again = [d for n, k in names for d in docs_of(tmp_path / "again", n, k)]
    ids = [d["event"]["id"] for d in docs]
    assert ids == [d["event"]["id"] for d in again]
    assert len(set(ids)) == len(ids)
