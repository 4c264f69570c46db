"""SshExecutor against a real OpenSSH server started in the lab's gateway namespace.

The server listens on the namespace's loopback; the test reaches it with a socket opened inside
that namespace (``setns`` in a worker thread), handed to asyncssh through ``sock_factory``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wgsiem.lab.runtime import Lab
from wgsiem.respond.actions.base import ActionContext, Target
from wgsiem.respond.actions.block import BlockEndpoint
from wgsiem.respond.executors import ExecutorError, LocalExecutor, SshExecutor

from .ssh_lab import PORT, SSHD, fingerprint, keygen, netns_socket, start_sshd
from .support import run

pytestmark = pytest.mark.component


@pytest.fixture
def sshd(make_lab: Callable[..., Lab], tmp_path: Path) -> Iterator[tuple[Lab, Path]]:
    if not os.path.exists(SSHD):
        pytest.skip("openssh-server is not installed")
    lab = make_lab(clients=1)
    d = tmp_path / "ssh"
    d.mkdir()
    keygen(d / "host")
    keygen(d / "client")
    keygen(d / "other_host")
    shutil.copy(d / "client.pub", d / "authorized_keys")
    (d / "sshd_config").write_text(
        f"Port {PORT}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "AllowTcpForwarding no\nX11Forwarding no\nSubsystem sftp internal-sftp\n"
    )
    with start_sshd(lab.gateway_namespace, d / "sshd_config", d / "sshd.log"):
        yield lab, d


def executor(lab: Lab, d: Path, **pin: object) -> SshExecutor:
    return SshExecutor(
        "127.0.0.1",
        port=PORT,
        username="root",
        client_key=d / "client",
        sock_factory=lambda: netns_socket(lab.gateway_namespace, PORT),
        **pin,  # type: ignore[arg-type]
    )


def test_pinned_host_key_accepted_other_key_refused_and_a_block_applied_over_ssh(
    sshd: tuple[Lab, Path], tmp_path: Path
) -> None:
    lab, d = sshd
    # a different pinned key: refused, nothing run
    wrong = executor(lab, d, host_key_sha256=fingerprint(d / "other_host.pub"))
    with pytest.raises(ExecutorError, match="SSH connection refused: Host key is not trusted"):
        run(wrong.run(["wg", "show"]))
    known = tmp_path / "known_hosts"
    known.write_text(f"127.0.0.1 {(d / 'other_host.pub').read_text()}")
    with pytest.raises(ExecutorError, match="SSH connection refused: Host key is not trusted"):
        run(executor(lab, d, known_hosts=known).run(["wg", "show"]))
    # the right key, by fingerprint and by known_hosts
    known.write_text(f"[127.0.0.1]:{PORT} {(d / 'host.pub').read_text()}")
    assert run(executor(lab, d, known_hosts=known).run(["nft", "-v"])).stdout.startswith(b"nftables")

    async def scenario() -> tuple[bool, bool, bytes, int | None]:
        ex = executor(lab, d, host_key_sha256=fingerprint(d / "host.pub"))
        try:
            ctx = ActionContext(ex, False, tmp_path / "state", tmp_path / "case", "gw-ssh")
            action = BlockEndpoint()
            plan = await action.plan(
                Target(interface=lab.gateway_interface, endpoint_ip="198.51.100.99"), {"ttl_secs": 300}, ctx
            )
            res = await action.apply(plan, ctx)
            listing = (
                await LocalExecutor(lab.gateway_namespace).run(
                    ["nft", "list", "set", "inet", "wgsiem", "blocked4"]
                )
            ).stdout
            conf = str(tmp_path / "remote.conf")
            Path(conf).write_text("x")
            os.chmod(conf, 0o640)
            await ex.write_file(conf, b"[Interface]\n", mode=0o640)
            mode = await ex.file_mode(conf)
            return res.ok, res.verified, listing, mode
        finally:
            await ex.close()

    ok, verified, listing, mode = run(scenario())
    assert ok and verified and b"198.51.100.99" in listing
    assert mode == 0o640 and (tmp_path / "remote.conf").read_bytes() == b"[Interface]\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".remote")] == []
    run(LocalExecutor(lab.gateway_namespace).run(["nft", "delete", "table", "inet", "wgsiem"], check=False))
