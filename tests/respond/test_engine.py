"""The engine's governance with fake actions: approvals, deny, dry-run, kill switch, allow-list,
rate limits, dedup, rollback, undo, and that no secret reaches the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from wgsiem.respond.audit import verify
from wgsiem.respond.engine import Engine, set_kill_switch
from wgsiem.respond.governance import DecisionError, decide

from . import fakes
from .harness import audit_records, fake_state, make_engine

KEY = "UV0ZLZMjrlNYkdmY/4KSw6terGfy0VACCBJ8fYPrMGw="


@pytest.fixture(autouse=True)
def _fakes() -> Iterator[None]:
    fakes.install()
    yield
    fakes.uninstall()


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def events(engine: Engine) -> list[str]:
    return [f"{r['kind']}:{r.get('event')}" for r in audit_records(engine)]


def test_tier1_runs_automatically(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    pids = run(eng.handle_alert(fakes.alert()))
    assert len(pids) == 1
    assert eng.store.proposal(pids[0])["status"] == "done"
    assert fake_state(tmp_path)["blocked"] == ["203.0.113.7"]
    assert events(eng) == [
        "proposal:proposed",
        "decision:auto-approved",
        "action:action-started",
        "result:action-succeeded",
        "result:run-done",
    ]
    eng.close()
    assert verify(eng.paths.audit).ok


def test_tier2_waits_for_approval_then_runs(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    a = fakes.alert(rule="wireguard_unallowed_source_ip", playbook="peer-spoofing", peer=KEY)
    (pid,) = run(eng.handle_alert(a))
    row = eng.store.proposal(pid)
    assert (row["status"], row["requires_approval"]) == ("pending", 1)
    assert "tier 2" in row["why"]
    run(eng.tick())
    assert fake_state(tmp_path)["revoked"] == []  # nothing happens until approved
    decide(eng.store, eng.audit, pid, "approve", "os:alice", "confirmed with the peer's owner")
    run(eng.tick())
    assert eng.store.proposal(pid)["status"] == "done"
    assert fake_state(tmp_path)["revoked"] == [KEY]
    dec = [r for r in audit_records(eng) if r["kind"] == "decision"]
    assert [(d["actor"], d["reason"]) for d in dec] == [("os:alice", "confirmed with the peer's owner")]
    eng.close()


def test_deny_records_reason_and_runs_nothing(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    (pid,) = run(eng.handle_alert(fakes.alert(rule="wireguard_unallowed_source_ip", playbook="x", peer=KEY)))
    decide(eng.store, eng.audit, pid, "deny", "os:bob", "known container host, false positive")
    run(eng.tick())
    assert eng.store.proposal(pid)["status"] == "denied"
    assert eng.store.decisions(pid)[0]["reason"] == "known container host, false positive"
    assert fake_state(tmp_path)["revoked"] == []
    rec = next(r for r in audit_records(eng) if r["kind"] == "decision")
    assert (rec["event"], rec["actor"], rec["reason"]) == (
        "denied",
        "os:bob",
        "known container host, false positive",
    )
    with pytest.raises(DecisionError) as err:
        decide(eng.store, eng.audit, pid, "approve", "os:bob", "changed my mind")
    assert err.value.status == 409
    eng.close()


def test_decision_needs_reason_and_known_proposal(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    with pytest.raises(DecisionError) as err:
        decide(eng.store, eng.audit, "p-nope", "approve", "os:a", "why")
    assert err.value.status == 404
    with pytest.raises(DecisionError):
        decide(eng.store, eng.audit, "p-nope", "approve", "os:a", "  ")
    eng.close()


def test_dry_run_plans_and_audits_but_changes_nothing(tmp_path: Path) -> None:
    eng = make_engine(tmp_path, dry_run=True)
    (pid,) = run(eng.handle_alert(fakes.alert()))
    assert eng.store.proposal(pid)["status"] == "dry_run"
    assert fake_state(tmp_path) == {"blocked": [], "revoked": [], "log": []}
    assert events(eng) == ["proposal:proposed", "decision:auto-approved", "policy:dry-run"]
    assert audit_records(eng)[2]["plans"][0]["summary"] == "block 203.0.113.7"
    eng.close()


def test_kill_switch_stops_at_once_and_is_audited(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    set_kill_switch(eng.paths, eng.audit, True, "os:alice", "incident bridge decided")
    (pid,) = run(eng.handle_alert(fakes.alert()))
    assert eng.store.proposal(pid)["status"] == "killed"
    assert fake_state(tmp_path)["blocked"] == []
    set_kill_switch(eng.paths, eng.audit, False, "os:alice", "resume")
    (pid2,) = run(eng.handle_alert(fakes.alert(alert_id="a2", ip="203.0.113.8")))
    assert eng.store.proposal(pid2)["status"] == "done"
    ev = events(eng)
    assert ev[0] == "policy:kill-switch-on" and "policy:kill-switch" in ev and "policy:kill-switch-off" in ev
    eng.close()


def test_kill_switch_between_steps(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)

    async def scenario() -> str | None:
        task = asyncio.create_task(eng.handle_alert(fakes.alert(playbook="gated-resume")))
        while "gate-entered" not in fake_state(tmp_path)["log"]:
            await asyncio.sleep(0.01)
        set_kill_switch(eng.paths, eng.audit, True, "os:alice", "stop now")
        (tmp_path / "gate").touch()
        (pid,) = await task
        return eng.store.proposal(pid)["status"]

    assert run(scenario()) == "killed"
    assert fake_state(tmp_path)["revoked"] == []  # step 3 never ran
    eng.close()


def test_allow_list_blocks_the_proposal(tmp_path: Path) -> None:
    eng = make_engine(tmp_path, allow_list={"cidrs": ["203.0.113.0/28"], "peer_public_keys": [KEY]})
    (pid,) = run(eng.handle_alert(fakes.alert(ip="203.0.113.7")))
    assert eng.store.proposal(pid)["status"] == "blocked"
    (pid2,) = run(eng.handle_alert(fakes.alert(alert_id="a2", ip="203.0.113.99")))
    assert eng.store.proposal(pid2)["status"] == "done"
    assert fake_state(tmp_path)["blocked"] == ["203.0.113.99"]
    pol = [r for r in audit_records(eng) if r.get("event") == "allow-listed"]
    assert pol[0]["reason"] == "address 203.0.113.7 is inside allow-listed 203.0.113.0/28"
    eng.close()


def test_more_than_n_peers_needs_approval_even_for_never(tmp_path: Path) -> None:
    eng = make_engine(tmp_path, policy={"approval_peer_threshold": 1})
    pb = eng.playbooks["gated-resume"].model_copy(
        update={
            "steps": [eng.playbooks["revoke"].steps[0].model_copy(update={"params": {"peers": ["k1", "k2"]}})]
        }
    )
    pid, new = run(eng.propose(pb, fakes.alert(), origin="test", actor="t"))
    row = eng.store.proposal(pid)
    assert new and row["status"] == "pending" and row["why"] == "touches 2 peers (more than 1)"
    eng.close()


def test_rate_limit_per_entity(tmp_path: Path) -> None:
    eng = make_engine(tmp_path, rate_limits={"per_entity_per_hour": 2})
    statuses = [
        eng.store.proposal(run(eng.handle_alert(fakes.alert(alert_id=f"a{i}")))[0])["status"]
        for i in range(3)
    ]
    assert statuses == ["done", "done", "rate_limited"]
    rec = next(r for r in audit_records(eng) if r.get("event") == "rate-limited")
    assert rec["reason"] == "entity source.ip=203.0.113.7 reached 2 executions per hour"
    eng.close()


def test_rate_limit_global(tmp_path: Path) -> None:
    eng = make_engine(tmp_path, rate_limits={"global_per_hour": 1})
    first = run(eng.handle_alert(fakes.alert(alert_id="a1", ip="203.0.113.1")))[0]
    second = run(eng.handle_alert(fakes.alert(alert_id="a2", ip="203.0.113.2")))[0]
    assert [eng.store.proposal(p)["status"] for p in (first, second)] == ["done", "rate_limited"]
    eng.close()


def test_one_proposal_per_alert_playbook_entity(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    p1 = run(eng.handle_alert(fakes.alert()))
    p2 = run(eng.handle_alert(fakes.alert()))
    assert p1 == p2
    assert len(eng.store.proposals()) == 1
    assert fake_state(tmp_path)["log"] == ["block 203.0.113.7"]
    assert eng.counters["duplicate_proposals"] == 1
    eng.close()


def test_failed_step_rolls_back_completed_steps(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    (pid,) = run(eng.handle_alert(fakes.alert(playbook="chain")))
    assert eng.store.proposal(pid)["status"] == "rolled_back"
    assert fake_state(tmp_path)["log"] == ["block 203.0.113.7", "throttle-attempt", "unblock 203.0.113.7"]
    assert [a["status"] for a in eng.store.actions_of(pid)] == ["undone", "failed"]
    assert "undo:undo-started" in events(eng)
    eng.close()


def test_a_failing_step_is_retried_within_its_bound_then_reported_and_rolled_back(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    (pid,) = run(eng.handle_alert(fakes.alert(playbook="chain-retry")))
    assert fake_state(tmp_path)["log"] == [
        "block 203.0.113.7",
        "throttle-attempt",
        "throttle-attempt",
        "throttle-attempt",
        "unblock 203.0.113.7",
    ]
    assert eng.store.proposal(pid)["status"] == "rolled_back"
    failed = [r for r in audit_records(eng) if r.get("event") == "action-failed"]
    assert len(failed) == 1 and failed[0]["error"] == "simulated failure"
    eng.close()


def test_undo_reverses_and_is_audited(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    (pid,) = run(eng.handle_alert(fakes.alert()))
    aid = f"{pid}.1"
    res = run(eng.undo_action(aid, "os:alice", "false positive"))
    assert res["ok"] is True
    assert fake_state(tmp_path)["blocked"] == []
    assert eng.store.action_row(aid)["status"] == "undone"
    again = run(eng.undo_action(aid, "os:alice", "twice"))
    assert again["ok"] is False
    undo = [r for r in audit_records(eng) if r["kind"] == "undo"]
    assert [(u["actor"], u["reason"], u["action_id"]) for u in undo] == [("os:alice", "false positive", aid)]
    eng.close()


def test_undo_request_served_by_poll(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    (pid,) = run(eng.handle_alert(fakes.alert()))
    rid = eng.store.request_undo(f"{pid}.1", "os:carol", "lift it")
    run(eng.tick())
    assert eng.store.undo_request(rid)["status"] == "done"
    assert fake_state(tmp_path)["blocked"] == []
    eng.close()


def test_pending_proposal_expires(tmp_path: Path) -> None:
    eng = make_engine(tmp_path, policy={"approval_ttl_secs": 0.01})
    (pid,) = run(eng.handle_alert(fakes.alert(rule="wireguard_unallowed_source_ip", playbook="x", peer=KEY)))
    import time

    time.sleep(0.02)
    run(eng.tick())
    assert eng.store.proposal(pid)["status"] == "expired"
    eng.close()


def test_no_secret_in_audit_log_events_or_state(tmp_path: Path) -> None:
    eng = make_engine(tmp_path, policy={"auto_max_tier": 2})
    pb = eng.playbooks["rotate"]
    pid, _ = run(eng.propose(pb, fakes.alert(peer=KEY), origin="test", actor="t"))
    run(eng.execute(pid))
    assert eng.store.proposal(pid)["status"] == "done"
    eng.close()
    from wgsiem.respond.events import record_to_ecs

    log = eng.paths.audit.read_text()
    assert fakes.SECRET not in log
    assert "[redacted]" in log
    for rec in audit_records(eng):
        assert fakes.SECRET not in str(record_to_ecs(rec, "gw"))
    assert verify(eng.paths.audit).ok


def test_file_modes(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    run(eng.handle_alert(fakes.alert()))
    eng.close()
    assert eng.paths.db.stat().st_mode & 0o777 == 0o600
    assert eng.paths.audit.stat().st_mode & 0o777 == 0o600


def test_executor_from_config() -> None:
    from wgsiem.respond.config import ExecutorConfig
    from wgsiem.respond.engine import build_executor

    local = build_executor(ExecutorConfig(netns="wgsiem-x-gw"))
    assert local.name == "netns:wgsiem-x-gw"
    ssh = build_executor(
        ExecutorConfig(
            type="ssh",
            host="192.0.2.5",
            user="wgsiem",
            client_key_path=Path("/k"),
            host_key_sha256="SHA256:abc",
        )
    )
    assert (type(ssh).__name__, ssh.host, ssh.username) == ("SshExecutor", "192.0.2.5", "wgsiem")
    from wgsiem.errors import WgsiemError

    with pytest.raises(WgsiemError):
        build_executor(ExecutorConfig(type="ssh", host="192.0.2.5"))
