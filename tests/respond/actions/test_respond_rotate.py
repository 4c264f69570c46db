"""RotatePeerKeys in the lab: the client given the new config reconnects, the old key cannot, and the
new private key is in nothing wgsiem keeps or prints."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from wgsiem.lab.runtime import Lab
from wgsiem.lab.traffic import send_udp
from wgsiem.respond.actions.base import ActionContext, ActionResult, Target
from wgsiem.respond.actions.common import find_peer_spans, live_interface
from wgsiem.respond.actions.rotate import RotatePeerKeys

from .support import client_handshake, fresh_client_session, run, wait_for

pytestmark = pytest.mark.component

LabCtx = Callable[..., tuple[Lab, ActionContext]]

HOOK = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(sys.stdin.read())"


def settings_for(lab: Lab, i: int) -> dict[str, Any]:
    plan = lab.spec.client(i)
    return {
        "public_endpoints": {lab.gateway_interface: plan.endpoint},
        "client_allowed_ips": {lab.gateway_interface: [str(n) for n in plan.gateway_allowed_ips]},
    }


def apply_client_config(lab: Lab, i: int, config: str, tmp: Path) -> None:
    """What the provisioning system does on the client: install the new config (wg part of it)."""
    wg_only = "".join(ln + "\n" for ln in config.splitlines() if not ln.startswith(("Address", "DNS")))
    path = tmp / "client.conf"
    path.write_text(wg_only)
    path.chmod(0o600)
    lab.wg(lab.client_namespace(i), "setconf", lab.client_interface(i), str(path))
    path.unlink()


def handshake_with_gateway(lab: Lab, i: int, key: str) -> int:
    live = run(live_interface_of(lab))
    peer = live.peers.get(key)
    gw_ip = str(lab.spec.gateway().tunnel_address.ip)
    send_udp(lab.client_namespace(i), gw_ip, 0)
    return peer.latest_handshake if peer else 0


async def live_interface_of(lab: Lab) -> Any:
    from wgsiem.respond.executors import LocalExecutor

    return await live_interface(LocalExecutor(lab.gateway_namespace), lab.gateway_interface)


def value_of(config: str, key: str) -> str:
    return next(ln.split("=", 1)[1].strip() for ln in config.splitlines() if ln.startswith(key))


def test_rotate_with_a_command_hook(
    lab_ctx: LabCtx, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "delivered.conf"
    lab, ctx = lab_ctx(clients=2)
    ctx.settings.update(settings_for(lab, 1))
    ctx.settings["provisioning"] = {"type": "command", "argv": [sys.executable, "-c", HOOK, str(out)]}
    lab.connect(1)
    old = lab.client_public_key(1)
    conf = Path(ctx.settings["config_files"][lab.gateway_interface])
    before = conf.read_bytes()
    action = RotatePeerKeys()
    plan = run(
        action.plan(
            Target(interface=lab.gateway_interface, peer_public_key=old), {"new_preshared_key": True}, ctx
        )
    )
    res = run(action.apply(plan, ctx))
    assert res.ok and res.verified, res.error
    new = res.details["new_public_key"]
    config = out.read_text()
    private, psk = value_of(config, "PrivateKey"), value_of(config, "PresharedKey")
    # server side: old key gone, new key with the same allowed IPs and the new PSK, file swapped in place
    live = run(live_interface_of(lab))
    assert old not in live.peers and live.peers[new].allowed_ips == ("10.222.0.11/32", "10.222.100.0/24")
    assert live.psks[new] == psk
    after = conf.read_bytes()
    assert not find_peer_spans(after, old) and find_peer_spans(after, new)
    assert (
        after.replace(new.encode(), old.encode()).replace(b"PresharedKey = " + psk.encode() + b"\n", b"")
        == before
    )
    # the client with the new config reconnects
    apply_client_config(lab, 1, config, tmp_path)
    wait_for(lambda: handshake_with_gateway(lab, 1, new), 30, "a handshake with the new key")
    # the old key cannot: the client back on its old private key gets no handshake
    old_key_file = lab.state_dir / "keys" / f"{lab.client_interface(1)}.key"
    lab.wg(lab.client_namespace(1), "set", lab.client_interface(1), "private-key", str(old_key_file))
    fresh_client_session(lab, 1)  # the lab's own peer entry: old key, no PSK
    gw_ip = str(lab.spec.gateway().tunnel_address.ip)
    for _ in range(14):
        send_udp(lab.client_namespace(1), gw_ip, 0)
        assert client_handshake(lab, 1) == 0
        asyncio.run(asyncio.sleep(0.5))
    # the new private key and PSK are nowhere wgsiem keeps or prints
    captured = capfd.readouterr()
    kept = [repr(plan), repr(res), str(res.undo), caplog.text, captured.out, captured.err]
    kept += [
        p.read_text(errors="replace")
        for p in (tmp_path / "state").rglob("*")
        if p.is_file() and "peers.json" not in p.name
    ]
    assert not any(private in t for t in kept)
    assert not any(s in t for s in lab.secrets() for t in (repr(plan), repr(res), str(res.undo), caplog.text))
    assert not (tmp_path / "state" / "tmp").exists() or not any((tmp_path / "state" / "tmp").iterdir())


def test_rotate_with_a_webhook_hook_and_undo(lab_ctx: LabCtx) -> None:
    received: list[dict[str, Any]] = []

    async def scenario(lab: Lab, ctx: ActionContext) -> tuple[ActionResult, ActionResult, ActionResult]:
        async def hook(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != "Bearer s3cret-token":
                return web.Response(status=401)
            received.append(await request.json())
            return web.Response(status=201)

        app = web.Application()
        app.router.add_post("/provision", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            action = RotatePeerKeys()
            key = lab.client_public_key(2)
            ctx.settings["provisioning"] = {
                "type": "webhook",
                "url": f"http://127.0.0.1:{port}/provision",
                "headers": {"Authorization": "Bearer wrong"},
            }
            plan = await action.plan(Target(interface=lab.gateway_interface, peer_public_key=key), {}, ctx)
            refused = await action.apply(plan, ctx)
            ctx.settings["provisioning"]["headers"] = {"Authorization": "Bearer s3cret-token"}
            res = await action.apply(plan, ctx)
            assert res.undo is not None
            undone = await action.undo(res.undo, ctx)
            return refused, res, undone
        finally:
            await runner.cleanup()

    lab, ctx = lab_ctx(clients=2)
    ctx.settings.update(settings_for(lab, 2))
    key = lab.client_public_key(2)
    conf = Path(ctx.settings["config_files"][lab.gateway_interface])
    before = conf.read_bytes()
    psk_before = run(live_interface_of(lab)).psks[key]
    refused, res, undone = run(scenario(lab, ctx))
    # a hook that refuses: rolled back, nothing changed, the token is not in the error
    assert not refused.ok and "rolled back" in refused.summary and "401" in (refused.error or "")
    assert "s3cret" not in repr(refused)
    assert res.ok and res.verified, res.error
    [body] = received
    assert body["old_public_key"] == key and body["new_public_key"] == res.details["new_public_key"]
    assert value_of(body["client_config"], "PresharedKey") == psk_before  # PSK policy kept
    assert value_of(body["client_config"], "Endpoint") == lab.spec.client(2).endpoint
    assert undone.ok and undone.verified, undone.summary
    assert conf.read_bytes() == before
    live = run(live_interface_of(lab))
    assert (
        key in live.peers and res.details["new_public_key"] not in live.peers and live.psks[key] == psk_before
    )
    assert lab.connect(2).last_handshake_sec > 0


def test_the_ansible_hook_runs_a_real_playbook_with_the_config_and_leaves_no_secret_behind(
    tmp_path: Path,
) -> None:
    """``ansible-playbook`` (ansible-core, a dev dependency) delivers the client config from its 0600
    extra-vars file; the file is gone afterwards and the key is in neither ansible's output nor the
    result (``no_log`` in the playbook keeps it out of ansible's own output)."""
    from wgsiem.respond.actions.rotate import AnsibleHook, _run_hook
    from wgsiem.respond.executors import LocalExecutor

    ansible = Path(sys.executable).with_name("ansible-playbook")
    out = tmp_path / "delivered" / "client.conf"
    playbook = tmp_path / "deliver.yml"
    playbook.write_text(
        f"""- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: deliver the new client config
      no_log: true
      ansible.builtin.copy:
        content: "{{{{ wgsiem_client_config }}}}"
        dest: {out}
        mode: "0600"
"""
    )
    (tmp_path / "delivered").mkdir()
    secret = "gIvQ6jGfBWuBcs0DJ8m0Ug2tUSTqG1oSHqXcJOP6yWs="  # a made-up private key
    config = f"[Interface]\nPrivateKey = {secret}\nAddress = 10.222.0.12/32\n"
    hook = AnsibleHook(
        type="ansible", playbook=str(playbook), ansible_playbook=str(ansible), timeout_secs=120
    )
    ctx = ActionContext(
        executor=LocalExecutor(),
        dry_run=False,
        state_dir=tmp_path / "state",
        case_dir=tmp_path,
        hostname="gw",
    )
    said = run(_run_hook(hook, ctx, config, {"interface": "wg0", "new_public_key": "x"}, [secret]))
    assert said.endswith("exited 0") and secret not in said
    assert out.read_text() == config and oct(out.stat().st_mode & 0o777) == "0o600"
    assert not list((tmp_path / "state" / "tmp").iterdir())  # the extra-vars file was removed


def test_a_failing_ansible_hook_reports_without_the_secret(tmp_path: Path) -> None:
    from wgsiem.respond.actions.rotate import AnsibleHook, _run_hook
    from wgsiem.respond.executors import LocalExecutor

    playbook = tmp_path / "fail.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        '    - ansible.builtin.fail:\n        msg: "refused {{ wgsiem_client_config }}"\n'
    )
    secret = "gIvQ6jGfBWuBcs0DJ8m0Ug2tUSTqG1oSHqXcJOP6yWs="
    hook = AnsibleHook(
        type="ansible",
        playbook=str(playbook),
        ansible_playbook=str(Path(sys.executable).with_name("ansible-playbook")),
        timeout_secs=120,
    )
    ctx = ActionContext(
        executor=LocalExecutor(),
        dry_run=False,
        state_dir=tmp_path / "state",
        case_dir=tmp_path,
        hostname="gw",
    )
    with pytest.raises(Exception) as ei:
        run(_run_hook(hook, ctx, f"PrivateKey = {secret}\n", {}, [secret]))
    assert "exited with" in str(ei.value) and secret not in str(ei.value)
    assert not list((tmp_path / "state" / "tmp").iterdir())
