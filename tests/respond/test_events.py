"""Audit records as ECS events: the mapping, and the source that tails the log (records written by
another process — the CLI — are emitted too; the position survives a restart)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.support.ecs import validate
from wgsiem.event import Envelope
from wgsiem.respond.audit import AuditLog
from wgsiem.respond.events import RespondEventsSource, record_to_ecs


def _source(tmp: Path) -> RespondEventsSource:
    return RespondEventsSource("respond.events", tmp / "audit.jsonl", tmp / "pos.json", "gw", asyncio.Event())


async def _drain(src: RespondEventsSource) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    async def emit(batch: list[Envelope]) -> None:
        got.extend(e.data for e in batch)

    stop = asyncio.Event()
    stop.set()  # one pass, then return
    await src.run(emit, stop)
    return got


def test_mapping_is_valid_ecs_and_deterministic(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    rec = log.append(
        "result",
        "policy",
        event="action-failed",
        proposal_id="p-1",
        action_id="p-1.1",
        ok=False,
        summary="could not block",
        target={"endpoint_ip": "203.0.113.7"},
        rule_id="r-1",
    )
    log.close()
    doc = record_to_ecs(rec, "gw-test")
    assert validate(doc) == []
    assert doc["event"]["action"] == "response-action-failed"
    assert (doc["event"]["outcome"], doc["event"]["type"], doc["rule"]["id"]) == (
        "failure",
        ["change"],
        "r-1",
    )
    assert doc["wireguard"]["respond"]["audit"] == {"seq": 1, "hash": rec["hash"], "kind": "result"}
    assert record_to_ecs(rec, "gw-test")["event"]["id"] == doc["event"]["id"]


def test_source_emits_new_records_and_keeps_its_position(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("policy", "os:root", event="kill-switch-on", reason="before the source existed")
    src = _source(tmp_path)
    assert asyncio.run(_drain(src)) == []  # history stays in the log; the source starts after it
    log.append("decision", "os:alice", event="approved", proposal_id="p-1", reason="ok")  # e.g. the CLI
    got = asyncio.run(_drain(src))
    assert [d["event"]["action"] for d in got] == ["response-approved"]
    log.append("policy", "policy", event="rate-limited", reason="limit")
    restarted = _source(tmp_path)  # position saved after each emit
    got = asyncio.run(_drain(restarted))
    assert [d["event"]["action"] for d in got] == ["response-rate-limited"]
    assert got[0]["event"]["outcome"] == "failure"
    log.close()
