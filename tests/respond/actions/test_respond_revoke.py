"""RevokePeer and DisableUser against the lab's wireguard-go gateway and a real config file."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from wgsiem.lab.runtime import Lab
from wgsiem.respond.actions.base import ActionContext, Target
from wgsiem.respond.actions.common import find_peer_spans, live_interface
from wgsiem.respond.actions.revoke import DisableUser, RevokePeer
from wgsiem.respond.executors import ExecutorError, LocalExecutor

from .support import COMMENTED_HEAD, handshake_fails, run

pytestmark = pytest.mark.component

LabCtx = Callable[..., tuple[Lab, ActionContext]]


def conf_of(ctx: ActionContext, lab: Lab) -> Path:
    return Path(ctx.settings["config_files"][lab.gateway_interface])


def live_keys(lab: Lab) -> set[str]:
    out = lab.wg(lab.gateway_namespace, "show", lab.gateway_interface, "peers")
    return set(out.split())


def test_revoke_removes_live_and_file_keeps_backup_and_undo_reconnects(lab_ctx: LabCtx) -> None:
    lab, ctx = lab_ctx(clients=3)
    for i in (1, 2, 3):
        lab.connect(i)
    key = lab.client_public_key(2)  # client 2 has a preshared key
    conf = conf_of(ctx, lab)
    original = conf.read_bytes()
    action = RevokePeer()
    plan = run(action.plan(Target(interface=lab.gateway_interface, peer_public_key=key), {}, ctx))
    assert plan.affected_peers == (key,) and plan.reversible
    res = run(action.apply(plan, ctx))
    assert res.ok and res.verified, res.error
    # gone from the live interface and the file; the rest of the file is byte-identical
    assert key not in live_keys(lab) and lab.client_public_key(1) in live_keys(lab)
    after = conf.read_bytes()
    ((a, b),) = find_peer_spans(original, key)
    assert after == original[:a] + original[b:]
    assert after.startswith(COMMENTED_HEAD) and b"# Client: peer1" in after and b"# Client: peer3" in after
    assert b"# Client: peer2" not in after
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    # the backup holds the whole original file, owner-only
    assert res.undo is not None
    backup = Path(res.undo["config_backup"])
    assert backup.read_bytes() == original and stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(res.undo["live_backup"]).stat().st_mode) == 0o600
    # the client can no longer handshake
    assert handshake_fails(lab, 2)
    # applying again changes nothing and says so
    again = run(action.apply(plan, ctx))
    assert again.ok and again.details.get("already") and conf.read_bytes() == after
    # nothing secret in what the engine will store
    psk = lab.wg(lab.gateway_namespace, "show", lab.gateway_interface, "preshared-keys")
    secrets = [s for line in psk.splitlines() for s in line.split()[1:] if s != "(none)"] + lab.secrets()
    for text in (repr(plan), repr(res), repr(again)):
        assert not any(s in text for s in secrets)
    # undo: the peer is back live (with its PSK, from the backup) and in the file, byte for byte
    undone = run(action.undo(res.undo, ctx))
    assert undone.ok and undone.verified, undone.summary
    assert conf.read_bytes() == original
    live = run(live_interface(ctx.executor, lab.gateway_interface))
    assert live.peers[key].has_psk and live.peers[key].allowed_ips == ("10.222.0.12/32",)
    assert lab.connect(2).last_handshake_sec > 0
    assert run(action.undo(res.undo, ctx)).ok  # undo is idempotent too


def test_undo_appends_the_section_when_the_file_changed_since(lab_ctx: LabCtx) -> None:
    lab, ctx = lab_ctx(clients=2)
    key = lab.client_public_key(1)
    conf = conf_of(ctx, lab)
    action = RevokePeer()
    res = run(
        action.apply(
            run(action.plan(Target(interface=lab.gateway_interface, peer_public_key=key), {}, ctx)), ctx
        )
    )
    assert res.ok and res.undo is not None
    edited = conf.read_bytes() + b"# an admin's later edit\n"
    conf.write_bytes(edited)
    assert run(action.undo(res.undo, ctx)).verified
    now = conf.read_bytes()
    assert now.startswith(edited) and len(find_peer_spans(now, key)) == 1
    assert key in live_keys(lab)


class FailingWg(LocalExecutor):
    """A gateway whose `wg set` fails (as when wireguard-go dies between the two steps)."""

    async def run(self, argv, *, input=None, timeout_secs=30.0, check=True):  # type: ignore[no-untyped-def]
        if argv[:2] == ["wg", "set"]:
            raise ExecutorError("wg set: Unable to modify interface: No such device")
        return await super().run(argv, input=input, timeout_secs=timeout_secs, check=check)


def test_a_read_only_config_file_fails_before_anything_live_changes(lab_ctx: LabCtx) -> None:
    lab, ctx = lab_ctx(clients=1)
    key = lab.client_public_key(1)
    conf = conf_of(ctx, lab)
    original = conf.read_bytes()
    d = str(conf.parent)
    subprocess.run(["mount", "--bind", d, d], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", d, d], check=True)
        action = RevokePeer()
        res = run(
            action.apply(
                run(action.plan(Target(interface=lab.gateway_interface, peer_public_key=key), {}, ctx)), ctx
            )
        )
    finally:
        subprocess.run(["umount", d], check=True)
    assert not res.ok and res.error and "Read-only file system" in res.error
    assert res.summary.startswith("nothing changed")
    assert key in live_keys(lab) and conf.read_bytes() == original


def test_a_failed_live_removal_puts_the_file_back(lab_ctx: LabCtx) -> None:
    lab, ctx = lab_ctx(clients=1)
    ctx.executor = FailingWg(lab.gateway_namespace)
    key = lab.client_public_key(1)
    conf = conf_of(ctx, lab)
    original = conf.read_bytes()
    action = RevokePeer()
    res = run(
        action.apply(
            run(action.plan(Target(interface=lab.gateway_interface, peer_public_key=key), {}, ctx)), ctx
        )
    )
    assert not res.ok and "config file restored" in res.summary
    assert conf.read_bytes() == original and key in live_keys(lab)


def test_disable_user_revokes_every_peer_of_the_user(lab_ctx: LabCtx) -> None:
    lab, ctx = lab_ctx(clients=3)
    alice = [lab.client_public_key(1), lab.client_public_key(3)]
    ctx.settings["user_peers"] = {
        "alice": [{"interface": lab.gateway_interface, "public_key": k} for k in alice]
    }
    action = DisableUser()
    plan = run(action.plan(Target(user="alice"), {}, ctx))
    assert sorted(plan.affected_peers) == sorted(alice)
    res = run(action.apply(plan, ctx))
    assert res.ok and res.verified, res.error
    assert live_keys(lab) == {lab.client_public_key(2)}
    conf = conf_of(ctx, lab).read_bytes()
    assert all(not find_peer_spans(conf, k) for k in alice) and find_peer_spans(
        conf, lab.client_public_key(2)
    )
    assert res.undo is not None
    assert run(action.undo(res.undo, ctx)).verified
    assert live_keys(lab) == {lab.client_public_key(i) for i in (1, 2, 3)}
    with pytest.raises(Exception, match="no peers known for user bob"):
        run(action.plan(Target(user="bob"), {}, ctx))
    # the enrich_identity inventory: rows whose name, email or id is the user
    inv = Path(ctx.state_dir).parent / "inventory.csv"
    inv.write_text(
        "public_key,name,email,id\n"
        f"{lab.client_public_key(2)},carol,carol@corp.example,emp-7\n"
        f"{lab.client_public_key(3)},dave,carol@corp.example.other,emp-8\n"
    )
    ctx.settings["identity_inventory"] = str(inv)
    plan = run(action.plan(Target(user="carol@corp.example", interface=lab.gateway_interface), {}, ctx))
    assert plan.affected_peers == (lab.client_public_key(2),)
