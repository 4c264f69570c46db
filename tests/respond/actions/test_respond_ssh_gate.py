"""contrib/ssh/wgsiem-gate on its own (no sshd): what it lets through to sudo, what it refuses.

The gate runs as shipped except for its ``sudo=`` setting, pointed at a stand-in that records the
argv (and stdin) it would have run as root. The command lines come from the real executor
(``SshExecutor._command``) and the nft scripts from the real block/throttle actions, so a change in
what the actions send shows up here as a refusal. The docs must show the shipped files verbatim.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wgsiem.respond.actions.block import block_layout
from wgsiem.respond.actions.common import drop_element, refresh_element
from wgsiem.respond.actions.throttle import throttle_layout
from wgsiem.respond.executors import SshExecutor

from .ssh_lab import ATTEMPTS, CONTRIB

DOCS = Path(__file__).resolve().parents[3] / "docs" / "respond" / "actions.md"
KEY = "aqE8ZahyGT+3wASpMWD0AQUqATrPJHUyuzZT18Q2aDo="
KEY2 = "Qm9xKOjgKX5yFJOnkvgq0mEvcM0qgTh31ChByBEKzzE="
SAFE = re.compile(r"[A-Za-z0-9@%+=:,./_\[\]-]+")
RECORDER = """#!/bin/sh
for a do printf '%s\\0' "$a"; done > "{d}/argv"
cat > "{d}/stdin"
"""


class Gate:
    """The shipped gate with ``sudo=`` replaced by a recorder in ``d``."""

    def __init__(self, d: Path, **setting: str) -> None:
        self.d = d
        (d / "sudo").write_text(RECORDER.format(d=d))
        (d / "sudo").chmod(0o755)
        text = (CONTRIB / "wgsiem-gate").read_text()
        for name, value in {"sudo": str(d / "sudo"), **setting}.items():
            line = re.compile(rf"(?m)^{name}=\S+")
            assert len(line.findall(text)) == 1, f"the gate has no single {name}= setting"
            text = line.sub(f"{name}={value}", text)
        (d / "gate").write_text(text)
        (d / "gate").chmod(0o755)

    def __call__(self, command: str, stdin: bytes = b"") -> tuple[int, str, list[str] | None, bytes]:
        for f in ("argv", "stdin"):
            (self.d / f).unlink(missing_ok=True)
        proc = subprocess.run(
            [str(self.d / "gate")],
            input=stdin,
            capture_output=True,
            env={"SSH_ORIGINAL_COMMAND": command, "PATH": "/usr/bin:/bin"},
            timeout=10,
        )
        argv = None
        if (self.d / "argv").exists():
            argv = (self.d / "argv").read_bytes().decode().split("\0")[:-1]
        stdin_seen = (self.d / "stdin").read_bytes() if (self.d / "stdin").exists() else b""
        return proc.returncode, proc.stderr.decode("utf-8", "replace"), argv, stdin_seen


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    return Gate(tmp_path_factory.mktemp("gate"))


def command(*argv: str) -> str:
    """The command line exactly as the executor (sudo=true) sends it."""
    ex = SshExecutor("gw", username="wgsiem", client_key="k", host_key_sha256="SHA256:x", sudo=True)
    return ex._command(list(argv))


ALLOWED = [
    (["wg", "show", "wg0", "dump"], ["show", "wg0", "dump"]),
    (["wg", "show", "all", "dump"], ["show", "all", "dump"]),
    (["wg", "show", "wg0", "listen-port"], ["show", "wg0", "listen-port"]),
    (["wg", "set", "wg0", "peer", KEY, "remove"], ["set", "wg0", "peer", KEY, "remove"]),
    (
        ["wg", "set", "wg0", "peer", KEY, "remove", "peer", KEY2, "allowed-ips", "10.0.0.2/32"],
        ["set", "wg0", "peer", KEY, "remove", "peer", KEY2, "allowed-ips", "10.0.0.2/32"],
    ),
    (
        # revoke's undo: the PSK on stdin; an IPv6 endpoint is the one argument shlex quotes
        ["wg", "set", "wg0", "peer", KEY, "preshared-key", "/dev/stdin", "allowed-ips",
         "10.0.0.2/32,fd00::2/128", "endpoint", "[2001:db8::1]:51820", "persistent-keepalive", "25"],
        ["set", "wg0", "peer", KEY, "preshared-key", "/dev/stdin", "allowed-ips",
         "10.0.0.2/32,fd00::2/128", "endpoint", "[2001:db8::1]:51820", "persistent-keepalive", "25"],
    ),
    (["nft", "-j", "list", "table", "inet", "wgsiem"], ["-j", "list", "table", "inet", "wgsiem"]),
    (["nft", "list", "ruleset"], ["list", "ruleset"]),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "expected"), ALLOWED)
def test_the_actions_commands_reach_sudo_with_absolute_paths(
    gate: Gate, argv: list[str], expected: list[str]
) -> None:
    rc, err, seen, stdin = gate(command(*argv), b"psk-from-stdin\n")
    program = {"wg": "/usr/bin/wg", "nft": "/usr/sbin/nft"}[argv[0]]
    assert (rc, err, seen) == (0, "", ["-n", program, *expected])
    # stdin goes through only where a secret is expected on it
    assert stdin == (b"psk-from-stdin\n" if "/dev/stdin" in argv else b"")


def test_the_executors_plain_form_without_sudo_is_the_same(gate: Gate) -> None:
    assert gate("wg show wg0 dump")[2] == ["-n", "/usr/bin/wg", "show", "wg0", "dump"]


@pytest.mark.parametrize(("cmd", "stdin"), ATTEMPTS)
def test_anything_else_is_refused_before_sudo(gate: Gate, cmd: str, stdin: bytes | None) -> None:
    rc, err, seen, _ = gate(cmd.format(canary="/tmp/never", key=KEY), stdin or b"")
    assert (rc, seen) == (126, None)
    assert err.startswith("wgsiem-gate: refused: ")


@pytest.mark.parametrize(
    "cmd",
    [
        "",
        "internal-sftp x",
        "sudo -n",
        "sudo -n wg",
        "sudo -n nft",
        "sudo wg show",
        "sudo -n wg show wg0 dump x",
    ],
)
def test_empty_and_malformed_requests_are_refused(gate: Gate, cmd: str) -> None:
    assert gate(cmd)[0] == 126 and gate(cmd)[2] is None


def test_peer_changes_remove_admits_only_removals(tmp_path: Path) -> None:
    gate = Gate(tmp_path, peer_changes="remove")
    removal = command("wg", "set", "wg0", "peer", KEY, "remove", "peer", KEY2, "remove")
    assert gate(removal)[:3] == (0, "", ["-n", "/usr/bin/wg", *removal.split()[3:]])
    for argv in (
        ["wg", "set", "wg0", "peer", KEY, "allowed-ips", "10.0.0.2/32"],
        ["wg", "set", "wg0", "peer", KEY, "remove", "peer", KEY2, "preshared-key", "/dev/stdin"],
        ["wg", "set", "wg0", "peer", KEY],
    ):
        rc, err, seen, _ = gate(command(*argv))
        assert (rc, seen) == (126, None) and "peer_changes=remove" in err


def test_peer_changes_none_and_sftp_no_refuse_those_requests(tmp_path: Path) -> None:
    gate = Gate(tmp_path, peer_changes="none", sftp="no")
    assert gate(command("wg", "set", "wg0", "peer", KEY, "remove"))[:3] == (
        126,
        "wgsiem-gate: refused: wg set: peer changes are disabled (peer_changes=none)\n",
        None,
    )
    assert gate("internal-sftp")[:2] == (126, "wgsiem-gate: refused: sftp is disabled\n")
    assert gate(command("wg", "show", "wg0", "dump"))[0] == 0


addresses = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: str(ipaddress.IPv6Address(a))),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    address=addresses,
    ttl=st.integers(1, 604800),
    ports=st.lists(st.integers(1, 65535), min_size=1, max_size=3, unique=True),
    rate=st.integers(1, 10_000_000),
    other_rates=st.sets(st.integers(1, 10_000_000), max_size=2),
)
def test_every_nft_script_the_actions_write_is_admitted(
    gate: Gate, address: str, ttl: int, ports: list[int], rate: int, other_rates: set[int]
) -> None:
    v = ipaddress.ip_address(address).version
    scripts = [
        block_layout("wgsiem", ports) + refresh_element("wgsiem", f"blocked{v}", address, ttl),
        drop_element("wgsiem", f"blocked{v}", address),
        throttle_layout("wgsiem", ports, rate, other_rates)
        + "".join(drop_element("wgsiem", f"thr{v}_r{r}", address) for r in other_rates)
        + refresh_element("wgsiem", f"thr{v}_r{rate}", address, ttl),
    ]
    for script in scripts:
        rc, err, seen, stdin = gate(command("nft", "-f", "-"), script.encode())
        assert (rc, err, seen, stdin) == (0, "", ["-n", "/usr/sbin/nft", "-f", "-"], script.encode())


TOKENS = [
    "sudo", "-n", "wg", "nft", "show", "set", "peer", KEY, "remove", "dump", "all", "wg0", "-f", "-", "-j",
    "list", "table", "inet", "wgsiem", "ruleset", "private-key", "preshared-key", "/dev/stdin", "endpoint",
    "allowed-ips", "10.0.0.2/32", "'[2001:db8::1]:1'", "flush", ";", "|", "&", "$(id)", "`id`", "'", "\n",
    "\\", "*", "~root", "$IFS", "listen-port", "showconf", "-h",
]  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    words=st.lists(
        st.sampled_from(TOKENS)
        | st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=8),
        max_size=10,
    ),
    seps=st.lists(st.sampled_from([" ", "  ", "", "\t"]), min_size=10, max_size=10),
)
def test_whatever_gets_through_is_wg_or_nft_with_plain_words(
    gate: Gate, words: list[str], seps: list[str]
) -> None:
    cmd = "".join(w + s for w, s in zip(words, seps, strict=False)).strip(" ")
    rc, err, seen, _ = gate(cmd, b"flush ruleset\n")
    if seen is None:
        assert rc == 126 and err.startswith("wgsiem-gate: refused: "), (cmd, rc, err)
        return
    assert seen[:2] in (["-n", "/usr/bin/wg"], ["-n", "/usr/sbin/nft"]), cmd
    assert seen[2] in ("show", "set", "-j", "list", "-v", "--version"), cmd
    assert all(SAFE.fullmatch(a) for a in seen[2:]), cmd
    assert not {"private-key", "showconf", "setconf", "addconf", "syncconf", "-f", "flush"} & set(seen), cmd


def _fenced_blocks(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"(?ms)^```[^\n]*\n(.*?)^```", text)]


@pytest.mark.parametrize("name", ["sudoers.wgsiem", "sshd_config.wgsiem"])
def test_the_docs_show_the_shipped_file_verbatim(name: str) -> None:
    assert (CONTRIB / name).read_text() in _fenced_blocks(DOCS.read_text())


def test_the_docs_name_the_gate_and_the_shipped_files() -> None:
    text = DOCS.read_text()
    for name in ("contrib/ssh/wgsiem-gate", "contrib/ssh/sudoers.wgsiem", "contrib/ssh/sshd_config.wgsiem"):
        assert name in text


def test_the_sudoers_fragment_parses() -> None:
    if shutil.which("visudo") is None:
        pytest.skip("sudo is not installed (apt-get install sudo)")
    res = subprocess.run(["visudo", "-cf", str(CONTRIB / "sudoers.wgsiem")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_gate_is_posix_sh() -> None:
    path = CONTRIB / "wgsiem-gate"
    assert path.read_text().startswith("#!/bin/sh\n") and path.stat().st_mode & 0o111
    assert subprocess.run(["sh", "-n", str(path)], capture_output=True).returncode == 0
