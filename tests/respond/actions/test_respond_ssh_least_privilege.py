"""The least-privilege SSH recipe, exercised for real: OpenSSH in the lab's gateway namespace, a
throw-away non-root account, the shipped sudoers fragment, ``Match User`` block and ``wgsiem-gate``
(``contrib/ssh/``, installed by ``ssh_lab.least_privilege_sshd`` as docs/respond/actions.md says).

What must hold: the response actions work through it (block, throttle, revoke, its undo and rotate —
the last three also replace the config file over SFTP); whatever else the account asks for is refused by the
gate even with the client-side allow-list out of the way, and by sudo even with the gate out of the
way; the account has no shell, no pty, no forwarding, and no nftables access of its own.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import asyncssh
import pytest

from wgsiem.lab.runtime import Lab
from wgsiem.respond.actions.base import ActionContext, Target
from wgsiem.respond.actions.block import BlockEndpoint
from wgsiem.respond.actions.common import live_interface
from wgsiem.respond.actions.revoke import RevokePeer
from wgsiem.respond.actions.rotate import RotatePeerKeys
from wgsiem.respond.actions.throttle import ThrottlePeer
from wgsiem.respond.executors import ExecutorError, LocalExecutor, SshExecutor

from .ssh_lab import ATTEMPTS, PORT, SSHD, Account, least_privilege_sshd, netns_socket
from .support import gateway_config, run

pytestmark = pytest.mark.component

REFUSED = b"wgsiem-gate: refused"
HOOK = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(sys.stdin.read())"  # provisioning


def output(*streams: bytes | str | None) -> bytes:
    """stdout/stderr of an asyncssh process run with ``encoding=None`` (bytes), joined."""
    return b"".join(s.encode() if isinstance(s, str) else (s or b"") for s in streams)


@pytest.fixture
def account(make_lab: Callable[..., Lab]) -> Iterator[Account]:
    if not os.path.exists(SSHD):
        pytest.skip("openssh-server is not installed")
    for tool in ("sudo", "visudo", "useradd", "runuser"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install sudo)")
    lab = make_lab(clients=1)
    with least_privilege_sshd(lab) as acc:
        yield acc
        run(
            LocalExecutor(lab.gateway_namespace).run(
                ["nft", "delete", "table", "inet", "wgsiem"], check=False
            )
        )


def ruleset(lab: Lab) -> bytes:
    return run(LocalExecutor(lab.gateway_namespace).run(["nft", "list", "ruleset"])).stdout


async def raw_connection(acc: Account) -> asyncssh.SSHClientConnection:
    """A plain asyncssh login as the account: no client-side allow-list, no sudo prefix."""
    sock = await asyncio.to_thread(netns_socket, acc.lab.gateway_namespace, PORT)
    pinned = acc.host_key_sha256

    class Pinned(asyncssh.SSHClient):
        def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
            return bool(key.get_fingerprint("sha256") == pinned)

    return await asyncssh.connect(
        "127.0.0.1",
        port=PORT,
        sock=sock,
        username=acc.user,
        client_keys=[str(acc.client_key)],
        client_factory=Pinned,
        known_hosts=([], [], []),
        agent_path=None,
        config=None,
    )


def test_block_throttle_revoke_and_rotate_work_through_the_gate_and_sudo(
    account: Account, tmp_path: Path
) -> None:
    lab = account.lab
    conf_dir = account.dir / "wireguard"  # as the recipe sets up /etc/wireguard: setgid, group-writable
    conf_dir.mkdir()
    shutil.chown(conf_dir, "root", account.user)
    os.chmod(conf_dir, 0o2770)
    conf = conf_dir / f"{lab.gateway_interface}.conf"
    original = gateway_config(lab)
    conf.write_bytes(original)
    shutil.chown(conf, "root", account.user)
    os.chmod(conf, 0o660)
    lab.connect(1)
    key = lab.client_public_key(1)
    local = LocalExecutor(lab.gateway_namespace)

    async def scenario() -> None:
        ex = account.executor()
        ctx = ActionContext(
            ex,
            False,
            account.dir / "state",
            account.dir / "case",
            "gw-ssh",
            {"config_files": {lab.gateway_interface: str(conf)}},
        )
        try:
            block = BlockEndpoint()
            plan = await block.plan(
                Target(interface=lab.gateway_interface, endpoint_ip="198.51.100.99"), {"ttl_secs": 300}, ctx
            )
            res = await block.apply(plan, ctx)
            assert res.ok and res.verified, res.error
            listing = (await local.run(["nft", "list", "set", "inet", "wgsiem", "blocked4"])).stdout
            assert b"198.51.100.99" in listing

            throttle = ThrottlePeer()
            tplan = await throttle.plan(
                Target(endpoint_ip="2001:db8::7"),
                {"ttl_secs": 120, "rate_kbytes_per_sec": 32, "listen_ports": [51820]},
                ctx,
            )
            tres = await throttle.apply(tplan, ctx)
            assert tres.ok and tres.verified, tres.error
            assert (
                b"2001:db8::7"
                in (await local.run(["nft", "list", "set", "inet", "wgsiem", "thr6_r32"])).stdout
            )

            assert res.undo is not None
            assert (await block.undo(res.undo, ctx)).verified
            listing = (await local.run(["nft", "list", "set", "inet", "wgsiem", "blocked4"])).stdout
            assert b"198.51.100.99" not in listing

            # revoke: `wg set … remove` through sudo, the file replaced over SFTP by the account
            revoke = RevokePeer()
            rplan = await revoke.plan(Target(interface=lab.gateway_interface, peer_public_key=key), {}, ctx)
            rres = await revoke.apply(rplan, ctx)
            assert rres.ok and rres.verified, rres.error
            assert key not in (await live_interface(local, lab.gateway_interface)).peers
            assert key.encode() not in conf.read_bytes()
            assert rres.undo is not None
            # undo: the PSK goes on stdin through the gate to `wg set … preshared-key /dev/stdin`
            undone = await revoke.undo(rres.undo, ctx)
            assert undone.ok and undone.verified, undone.summary
            live = await live_interface(local, lab.gateway_interface)
            assert key in live.peers and live.peers[key].has_psk == rres.undo["peers"][0]["has_psk"]
        finally:
            await ex.close()

    run(scenario())
    assert conf.read_bytes() == original
    # replaced by the account over SFTP: its file now (only root gives files away), group and mode kept
    st = conf.stat()
    assert (st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)) == (account.uid, account.gid, oct(0o660))
    assert lab.connect(1).last_handshake_sec > 0

    # rotate: the old key out and the new one in, one `wg set`, the new PSK on stdin through the gate
    delivered = tmp_path / "delivered.conf"  # holds the new private key: root-only tmp_path
    plan_of_client = lab.spec.client(1)

    async def rotate() -> tuple[bool, bool, str | None, str]:
        ex = account.executor()
        ctx = ActionContext(
            ex,
            False,
            account.dir / "state",
            account.dir / "case",
            "gw-ssh",
            {
                "config_files": {lab.gateway_interface: str(conf)},
                "public_endpoints": {lab.gateway_interface: plan_of_client.endpoint},
                "provisioning": {"type": "command", "argv": [sys.executable, "-c", HOOK, str(delivered)]},
            },
        )
        try:
            action = RotatePeerKeys()
            plan = await action.plan(
                Target(interface=lab.gateway_interface, peer_public_key=key), {"new_preshared_key": True}, ctx
            )
            res = await action.apply(plan, ctx)
            return res.ok, res.verified, res.error, str(res.details.get("new_public_key"))
        finally:
            await ex.close()

    ok, verified, error, new = run(rotate())
    assert ok and verified, error
    live = run(live_interface(local, lab.gateway_interface))
    assert key not in live.peers and live.peers[new].has_psk
    psk = next(
        ln.split("=", 1)[1].strip() for ln in delivered.read_text().splitlines() if ln.startswith("Preshared")
    )
    assert live.psks[new] == psk and new.encode() in conf.read_bytes()
    assert psk not in (account.dir / "sshd.log").read_text()


def test_the_gate_refuses_everything_else_even_without_the_client_allow_list(account: Account) -> None:
    lab = account.lab
    canary = account.dir / "canary"
    before = ruleset(lab)
    key = lab.client_public_key(1)

    async def scenario() -> list[tuple[str, int | None, bytes]]:
        conn = await raw_connection(account)
        out = []
        try:
            for command, stdin in ATTEMPTS:
                cmd = command.format(canary=canary, key=key)
                proc = await conn.run(cmd, input=stdin, encoding=None, check=False)
                out.append((cmd, proc.exit_status, output(proc.stdout, proc.stderr)))
            # the gate lets the real thing through on the same connection (so the refusals are its own)
            ok = await conn.run(f"sudo -n wg show {lab.gateway_interface} listen-port", encoding=None)
            out.append(("allowed", ok.exit_status, output(ok.stdout)))
        finally:
            conn.close()
            await conn.wait_closed()
        return out

    results = run(scenario())
    *refusals, allowed = results
    wrong = [(cmd, rc, text) for cmd, rc, text in refusals if rc != 126 or REFUSED not in text]
    assert wrong == []
    assert allowed[1] == 0 and allowed[2].strip().isdigit()
    assert not canary.exists()
    assert ruleset(lab) == before

    # the same through the executor with its allow-list opened up: the server still says no
    async def through_executor() -> list[str]:
        ex = account.executor(allowed_commands={"wg", "nft", "cat", "sh", "sudo"})
        errors = []
        try:
            for argv in (["nft", "flush", "ruleset"], ["cat", "/etc/shadow"], ["sh", "-c", "id"]):
                with pytest.raises(ExecutorError) as info:
                    await ex.run(argv)
                errors.append(str(info.value))
        finally:
            await ex.close()
        return errors

    errors = run(through_executor())
    assert len(errors) == 3
    assert all("the gateway refused" in e and "wgsiem-gate: refused" in e for e in errors), errors
    assert ruleset(lab) == before


def test_no_shell_no_pty_no_forwarding_and_sftp_within_unix_permissions(account: Account) -> None:
    async def scenario() -> dict[str, object]:
        seen: dict[str, object] = {}
        conn = await raw_connection(account)
        try:
            # a login shell: no command, so the gate refuses; what is typed never reaches a shell
            shell = await conn.create_process(encoding=None)
            shell.stdin.write(b"id\n")
            shell.stdin.write_eof()
            done = await shell.wait(check=False)
            seen["shell"] = (done.exit_status, output(done.stdout, done.stderr))
            # a pty is refused (PermitTTY no)
            try:
                tty = await conn.create_process("sudo -n wg show", term_type="xterm", encoding=None)
                res = await tty.wait(check=False)
                seen["pty"] = ("ran", res.exit_status)
            except asyncssh.ChannelOpenError as exc:
                seen["pty"] = ("refused", exc.reason)
            # forwarding is refused
            try:
                await conn.open_connection("127.0.0.1", PORT)
                seen["forward"] = "opened"
            except asyncssh.ChannelOpenError:
                seen["forward"] = "refused"
            # SFTP: the limited request set, and Unix permissions, decide
            async with conn.start_sftp_client() as sftp:
                seen["home"] = await sftp.exists(".")
                for what, op in (
                    ("shadow", sftp.open("/etc/shadow", "rb")),
                    ("keys", sftp.open(str(account.dir / "authorized_keys"), "ab")),
                    ("gate", sftp.open(str(account.gate), "ab")),
                ):
                    try:
                        async with op:
                            seen[what] = "opened"
                    except asyncssh.SFTPError as exc:
                        seen[what] = type(exc).__name__
                for what, coro in (("listdir", sftp.listdir("/etc")), ("symlink", sftp.symlink("/etc", "x"))):
                    try:
                        await coro
                        seen[what] = "allowed"
                    except asyncssh.SFTPError as exc:
                        seen[what] = type(exc).__name__
        finally:
            conn.close()
            await conn.wait_closed()
        return seen

    seen = run(scenario())
    rc, text = cast(tuple[int, bytes], seen.pop("shell"))
    assert rc == 126 and REFUSED in text and b"uid=" not in text
    assert seen["pty"] == ("refused", "PTY request failed")
    assert seen["forward"] == "refused"
    assert seen["shadow"] == seen["keys"] == seen["gate"] == "SFTPPermissionDenied"
    # /etc is world-readable and the home the account's: these are sftp-server's -p list refusing
    assert seen["listdir"] == seen["symlink"] == "SFTPPermissionDenied"

    # with sftp=no in the gate, SFTP is refused outright
    gate = account.gate.read_text()
    assert gate.count("\nsftp=yes ") == 1
    account.gate.write_text(gate.replace("\nsftp=yes ", "\nsftp=no "))

    async def sftp_off() -> str:
        ex: SshExecutor = account.executor()
        try:
            await ex.read_file("/etc/hostname")
        except ExecutorError as exc:
            return str(exc)
        except asyncssh.Error as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            await ex.close()
        return "read"

    assert "cannot read /etc/hostname" in run(sftp_off())


def test_the_account_has_no_nftables_of_its_own_and_sudo_admits_only_the_listed_commands(
    account: Account,
) -> None:
    lab = account.lab
    before = ruleset(lab)
    plain = account.as_user("/usr/sbin/nft", "list", "ruleset")
    assert plain.returncode != 0 and "Operation not permitted" in plain.stderr
    # the sudo layer alone, the gate bypassed: only the listed command lines run as root
    for argv in (
        ["/usr/sbin/nft", "flush", "ruleset"],
        ["/usr/sbin/nft", "-f", "/etc/shadow"],
        ["/usr/sbin/nft", "-j", "list", "table", "inet", "filter"],
        ["/usr/bin/wg", "showconf", lab.gateway_interface],
        ["/bin/sh", "-c", "id"],
        ["/usr/bin/cat", "/etc/shadow"],
    ):
        res = account.as_user("sudo", "-n", *argv)
        assert res.returncode == 1 and "sudo:" in res.stderr, (argv, res.stderr)
    listed = account.as_user("sudo", "-n", "/usr/sbin/nft", "-j", "list", "ruleset")
    assert listed.returncode == 0 and listed.stdout.startswith('{"nftables"')
    assert ruleset(lab) == before
