"""The engine with the REAL actions (``block_endpoint``, ``revoke_peer``) against the lab gateway:
tier 1 blocks at once and undo lifts it; dry-run changes nothing; tier 2 waits for approval, a denial
changes nothing, an approval revokes the live peer and undo restores it; the audit log verifies."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

from wgsiem.lab.runtime import Lab
from wgsiem.respond.audit import verify
from wgsiem.respond.config import RespondSinkConfig
from wgsiem.respond.engine import Engine
from wgsiem.respond.governance import decide

from . import fakes
from .harness import audit_records
from .lab_support import blocked_elements, drop_table, gateway_peers, outer_ip

pytestmark = [
    pytest.mark.component,
    pytest.mark.skipif(
        importlib.util.find_spec("wgsiem.respond.actions.block") is None
        or importlib.util.find_spec("wgsiem.respond.actions.revoke") is None,
        reason="the real block/revoke actions are not in this tree",
    ),
]

REVOKE_LIVE = """
id: revoke-live
name: Revoke a peer on the live interface
tier: 2
trigger:
  entity: [wireguard.peer.public_key]
steps:
  - action: revoke_peer
    params: {live_only: true}
    on_failure: rollback
"""


def engine(lab: Lab, tmp: Path, **over: object) -> Engine:
    pbdir = tmp / "pb"
    pbdir.mkdir(parents=True, exist_ok=True)
    (pbdir / "revoke-live.yaml").write_text(REVOKE_LIVE)
    data: dict[str, object] = {
        "type": "respond",
        "playbook_dirs": [str(pbdir)],
        "executor": {"type": "local", "netns": lab.gateway_namespace},
    }
    data.update(over)
    return Engine(RespondSinkConfig.model_validate(data), state_dir=tmp / "state", hostname="gw-test")


def flood_alert(lab: Lab, i: int, alert_id: str = "a1") -> dict[str, object]:
    a = fakes.alert(playbook="handshake-abuse", ip=outer_ip(i), severity=73, alert_id=alert_id)
    a["wireguard"]["interface"]["name"] = lab.gateway_interface  # type: ignore[index]
    return a


def test_block_undo_and_dry_run_on_the_lab(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=1)
    try:
        dry = engine(lab, tmp_path / "dry", dry_run=True)
        (pid,) = asyncio.run(dry.handle_alert(flood_alert(lab, 1)))
        assert dry.store.proposal(pid)["status"] == "dry_run"
        assert blocked_elements(lab) == []
        dry.close()

        eng = engine(lab, tmp_path / "live")
        (pid,) = asyncio.run(eng.handle_alert(flood_alert(lab, 1)))
        row = eng.store.proposal(pid)
        assert row["status"] == "done", eng.store.actions_of(pid)
        assert blocked_elements(lab) == [outer_ip(1)]
        res = asyncio.run(eng.undo_action(f"{pid}.1", "os:tester", "false positive"))
        assert res["ok"] and blocked_elements(lab) == []
        eng.close()
        assert verify(eng.paths.audit).ok
        ev = [r.get("event") for r in audit_records(eng)]
        assert ev == [
            "proposed",
            "auto-approved",
            "action-started",
            "action-succeeded",
            "run-done",
            "undo-started",
            "undo-succeeded",
        ]
    finally:
        drop_table(lab)


def test_revoke_waits_for_approval_on_the_lab(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=2)
    lab.connect(1)
    lab.connect(2)
    eng = engine(lab, tmp_path)
    k1, k2 = lab.client_public_key(1), lab.client_public_key(2)

    def alert(i: int, key: str) -> dict[str, object]:
        a = fakes.alert(rule="wireguard_new_peer_used", playbook="revoke-live", peer=key, alert_id=f"r{i}")
        a["wireguard"]["interface"]["name"] = lab.gateway_interface  # type: ignore[index]
        return a

    (p1,) = asyncio.run(eng.handle_alert(alert(1, k1)))
    (p2,) = asyncio.run(eng.handle_alert(alert(2, k2)))
    asyncio.run(eng.tick())
    assert {eng.store.proposal(p)["status"] for p in (p1, p2)} == {"pending"}
    assert {k1, k2} <= gateway_peers(lab)  # nothing happens until approved

    decide(eng.store, eng.audit, p1, "deny", "os:alice", "known device")
    decide(eng.store, eng.audit, p2, "approve", "os:alice", "unknown device, confirmed")
    asyncio.run(eng.tick())
    assert eng.store.proposal(p1)["status"] == "denied"
    assert eng.store.proposal(p2)["status"] == "done", eng.store.actions_of(p2)
    peers = gateway_peers(lab)
    assert k1 in peers and k2 not in peers

    res = asyncio.run(eng.undo_action(f"{p2}.1", "os:alice", "restored after review"))
    assert res["ok"], res
    assert k2 in gateway_peers(lab)
    assert lab.connect(2).last_handshake_sec > 0
    eng.close()
    assert verify(eng.paths.audit).ok
    log = eng.paths.audit.read_text()
    for secret in lab.secrets():
        assert secret not in log
