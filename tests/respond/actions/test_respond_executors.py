"""LocalExecutor (this host, a network namespace) and SshExecutor's client-side rules."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wgsiem.errors import ConfigError
from wgsiem.respond.executors import ExecutorError, LocalExecutor, SshExecutor, safe_stderr

from .support import run

KEY = "YMnqXHJaIn/XOM39XxlGZIoV6FWIgzXGtXF6ATUb2TA="
SECRET = "gXl5XYZO2wFmbOFxX/Aq4HV8x35eUmmUzmSU1GfTSTU="


def test_run_passes_stdin_and_captures_output() -> None:
    res = run(LocalExecutor().run(["cat"], input=b"hello\n"))
    assert (res.argv, res.returncode, res.stdout, res.stderr) == (("cat",), 0, b"hello\n", b"")


def test_a_failing_command_names_argv_and_stderr_but_not_secrets() -> None:
    script = 'read s; echo "bad key $s for peer $1" >&2; exit 3'  # the secret comes on stdin
    with pytest.raises(ExecutorError) as err:
        run(LocalExecutor().run(["sh", "-c", script, "sh", KEY], input=f"{SECRET}\n".encode()))
    text = str(err.value)
    assert "exited with 3" in text and KEY in text and SECRET not in text and "<key>" in text
    assert run(LocalExecutor().run(["sh", "-c", "exit 4"], check=False)).returncode == 4


def test_timeout_kills_and_reports() -> None:
    with pytest.raises(ExecutorError, match=r"did not finish within 0\.5 s"):
        run(LocalExecutor().run(["sleep", "30"], timeout_secs=0.5))


def test_missing_program() -> None:
    with pytest.raises(ExecutorError, match="is not installed"):
        run(LocalExecutor().run(["no-such-program-wgsiem"]))


def test_netns_prefix_and_name() -> None:
    ex = LocalExecutor("gw1")
    assert ex.name == "netns:gw1" and ex._argv(["nft", "-j", "list", "ruleset"])[:4] == [
        "ip",
        "netns",
        "exec",
        "gw1",
    ]
    assert LocalExecutor().name == "local"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_atomic_write_keeps_owner_and_sets_mode_leaving_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "wg0.conf"
    target.write_bytes(b"old")
    os.chown(target, 1234, 4321)
    ex = LocalExecutor()
    run(ex.write_file(str(target), b"new", mode=0o640))
    st = target.stat()
    assert target.read_bytes() == b"new" and (st.st_uid, st.st_gid) == (1234, 4321)
    assert stat.S_IMODE(st.st_mode) == 0o640 and run(ex.file_mode(str(target))) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["wg0.conf"]
    assert run(ex.file_mode(str(tmp_path / "missing"))) is None
    with pytest.raises(ExecutorError, match="cannot replace"):
        run(ex.write_file(str(tmp_path / "no" / "dir.conf"), b"x", mode=0o600))
    with pytest.raises(ExecutorError, match="cannot read"):
        run(ex.read_file(str(tmp_path / "missing")))


def test_safe_stderr_trims() -> None:
    assert len(safe_stderr(b"x" * 5000, [])) == 601


def test_ssh_requires_a_pinned_host_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one of known_hosts or host_key_sha256"):
        SshExecutor("192.0.2.1", username="wgsiem", client_key=tmp_path / "k")
    with pytest.raises(ConfigError, match="SHA256"):
        SshExecutor("192.0.2.1", username="wgsiem", client_key=tmp_path / "k", host_key_sha256="MD5:aa")


def test_ssh_allow_list_is_enforced_before_connecting(tmp_path: Path) -> None:
    ex = SshExecutor(
        "192.0.2.1", username="wgsiem", client_key=tmp_path / "k", host_key_sha256="SHA256:x", sudo=True
    )
    with pytest.raises(ExecutorError, match="`sh` is not in the allowed commands"):
        run(ex.run(["sh", "-c", "id"]))
    assert ex._command(["wg", "show", "wg0", "dump"]) == "sudo -n wg show wg0 dump"
    assert ex.name == "ssh:wgsiem@192.0.2.1"
