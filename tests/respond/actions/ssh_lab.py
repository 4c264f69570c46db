"""A real OpenSSH server in the lab's gateway namespace, for the SSH executor's tests.

``start_sshd`` runs one with a given config (test_respond_ssh.py: root login, the executor's own
mechanics); ``least_privilege_sshd`` sets up the documented least-privilege recipe from the files
wgsiem ships in ``contrib/ssh/``: a throw-away non-root account, its sudoers fragment, the
``wgsiem-gate`` ForceCommand and the ``Match User`` block. The account and ``/etc/sudoers.d`` are
host-global (namespaces share /etc), so names are unique and everything is removed in ``finally`` —
also when setup fails half-way. The host's own sshd and ``/etc/ssh`` are never touched: this sshd
has its own config, keys and pid file.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wgsiem.lab.runtime import Lab
from wgsiem.respond.executors import SshExecutor

from .support import wait_for

__all__ = [
    "ATTEMPTS",
    "CONTRIB",
    "PORT",
    "SSHD",
    "Account",
    "fingerprint",
    "keygen",
    "least_privilege_sshd",
    "netns_socket",
    "start_sshd",
]

CLONE_NEWNET = 0x40000000
PORT = 2222
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
CONTRIB = Path(__file__).resolve().parents[3] / "contrib" / "ssh"
# what the shipped files name, replaced by this test's own account and paths
SHIPPED_USER = "wgsiem"
SHIPPED_GATE = "/usr/local/sbin/wgsiem-gate"
SHIPPED_KEYS = "/etc/ssh/wgsiem_authorized_keys"

# (command, stdin) a compromised or confused client might send; the gate must refuse each one
# ({canary}: a path that must never be created, {key}: a real peer key)
ATTEMPTS: list[tuple[str, bytes | None]] = [
    ("sudo -n nft flush ruleset", None),
    ("nft flush ruleset", None),
    ("sudo -n nft -f /etc/shadow", None),
    ("sudo -n nft -j list table inet filter", None),
    ("sudo -n nft -f -", b"flush ruleset\n"),
    ("sudo -n nft -f -", b"add element inet wgsiem blocked4 { 192.0.2.1 }; flush ruleset\n"),
    ("sudo -n nft -f -", b'include "/etc/shadow"\n'),
    ("sudo -n nft -f -", b"add rule inet wgsiem block_input accept\n"),
    ("cat /etc/shadow", None),
    ("sudo -n cat /etc/shadow", None),
    ("sh -c id", None),
    ("sudo -n sh -c id", None),
    ("id", None),
    ("sudo -n wg show wg0 private-key", None),
    ("sudo -n wg showconf wg0", None),
    ("sudo -n wg set wg0 private-key /etc/shadow", None),
    ("sudo -n wg set wg0 listen-port 1", None),
    ("sudo -n wg show wg0;touch${{IFS}}{canary} dump", None),
    ("sudo -n wg show $(touch {canary}) dump", None),
    ("sudo -n wg show `touch {canary}` dump", None),
    ("sudo -n wg show wg0 dump|touch {canary}", None),
    ("sudo -n wg show wg0 dump&&touch {canary}", None),
    ("sudo -n wg show wg0 dump\ntouch {canary}", None),
    ("sudo -n wg show 'wg0'\\''; touch {canary}'", None),
    ("sudo -n wg show wg0 dump >{canary}", None),
    ("sudo -n wg set wg0 peer {key} endpoint '203.0.113.1:1;touch {canary}'", None),
]


def netns_socket(namespace: str, port: int) -> socket.socket:
    """A TCP connection to 127.0.0.1:port inside ``namespace`` (the socket stays in that namespace)."""
    box: dict[str, object] = {}

    def inside() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            box["sock"] = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError as exc:
            box["error"] = exc

    t = threading.Thread(target=inside)  # setns changes only this (short-lived) thread
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["sock"]  # type: ignore[return-value]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def fingerprint(pub: Path) -> str:
    return subprocess.run(
        ["ssh-keygen", "-lf", str(pub)], check=True, capture_output=True, text=True
    ).stdout.split()[1]


@contextlib.contextmanager
def start_sshd(namespace: str, config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """sshd -D with ``config`` inside ``namespace``, up (listening on PORT) until the block ends."""
    check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, f"sshd -t: {check.stderr}"
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    subprocess.run(["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"], check=True)
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace, SSHD, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"sshd exited with {proc.returncode}: {log.read_text()}")
            try:
                netns_socket(namespace, PORT).close()
                return True
            except OSError:
                return False

        wait_for(up, 15, "sshd to listen")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def base_sshd_config(d: Path) -> str:
    return (
        f"Port {PORT}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nPidFile {d / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n"
    )


def _shipped(name: str, replacements: dict[str, str]) -> str:
    """A contrib/ssh file with the shipped names replaced, each replacement made exactly once."""
    text = (CONTRIB / name).read_text()
    for old, new in replacements.items():
        assert text.count(old) == 1, f"contrib/ssh/{name}: expected {old!r} exactly once"
        text = text.replace(old, new)
    return text


@dataclass(frozen=True, slots=True)
class Account:
    """The least-privilege account and its sshd, as the tests see them."""

    lab: Lab
    user: str
    dir: Path
    """root-owned 0755 directory (under /run) holding the gate, the key files and the sshd config."""

    @property
    def uid(self) -> int:
        return pwd.getpwnam(self.user).pw_uid

    @property
    def gid(self) -> int:
        return pwd.getpwnam(self.user).pw_gid

    @property
    def client_key(self) -> Path:
        return self.dir / "client"

    @property
    def gate(self) -> Path:
        return self.dir / "wgsiem-gate"

    @property
    def host_key_sha256(self) -> str:
        return fingerprint(self.dir / "host.pub")

    def executor(self, **options: object) -> SshExecutor:
        settings: dict[str, object] = {"sudo": True, **options}
        return SshExecutor(
            "127.0.0.1",
            port=PORT,
            username=self.user,
            client_key=self.client_key,
            host_key_sha256=self.host_key_sha256,
            sock_factory=lambda: netns_socket(self.lab.gateway_namespace, PORT),
            **settings,  # type: ignore[arg-type]
        )

    def as_user(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """argv as the account, inside the gateway namespace, without SSH or the gate."""
        return subprocess.run(
            ["ip", "netns", "exec", self.lab.gateway_namespace, "runuser", "-u", self.user, "--", *argv],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )


def _run(*argv: str) -> None:
    res = subprocess.run(argv, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(argv)}: {res.stderr}"


@contextlib.contextmanager
def least_privilege_sshd(lab: Lab) -> Iterator[Account]:
    """The recipe of docs/respond/actions.md, from contrib/ssh/, around a sshd in the gateway namespace."""
    token = secrets.token_hex(4)
    user = f"wgsiem-t{token}"
    d = Path(f"/run/wgsiem-t{token}")  # every parent root-owned and not group/world-writable (StrictModes)
    sudoers = Path(f"/etc/sudoers.d/wgsiem-t{token}")  # no '.': sudo skips such names in sudoers.d
    with contextlib.ExitStack() as cleanup:
        d.mkdir(mode=0o755)
        cleanup.callback(shutil.rmtree, d, True)
        keygen(d / "host")
        keygen(d / "client")
        # the account: a system user with a home, no password (recipe step 1)
        cleanup.callback(_userdel, user)
        _run("useradd", "--system", "--create-home", "--shell", "/bin/sh", user)
        _run("usermod", "--password", "*", user)
        # sudoers fragment: checked by visudo before it goes live (a broken one would break sudo)
        fragment = d / "sudoers"
        fragment.write_text(
            _shipped(
                "sudoers.wgsiem",
                {f"User_Alias WGSIEM = {SHIPPED_USER}\n": f"User_Alias WGSIEM = {user}\n"},
            )
        )
        _run("visudo", "-cf", str(fragment))
        cleanup.callback(sudoers.unlink, True)
        _run("install", "-m", "0440", "-o", "root", "-g", "root", str(fragment), str(sudoers))
        # the gate and the key file: root's, so the account cannot loosen them
        _run(
            "install",
            "-m",
            "0755",
            "-o",
            "root",
            "-g",
            "root",
            str(CONTRIB / "wgsiem-gate"),
            str(d / "wgsiem-gate"),
        )
        (d / "authorized_keys").write_text("restrict " + (d / "client.pub").read_text())
        os.chmod(d / "authorized_keys", 0o644)
        match = _shipped(
            "sshd_config.wgsiem",
            {
                f"Match User {SHIPPED_USER}\n": f"Match User {user}\n",
                SHIPPED_KEYS: str(d / "authorized_keys"),
                SHIPPED_GATE: str(d / "wgsiem-gate"),
            },
        )
        (d / "sshd_config").write_text(base_sshd_config(d) + match)
        cleanup.enter_context(start_sshd(lab.gateway_namespace, d / "sshd_config", d / "sshd.log"))
        yield Account(lab, user, d)


def _userdel(user: str) -> None:
    if subprocess.run(["id", user], capture_output=True).returncode != 0:
        return  # useradd failed: nothing to remove
    # sessions end when the clients close; userdel refuses while the account still runs something
    wait_for(
        lambda: subprocess.run(["pgrep", "-u", user], capture_output=True).returncode == 1,
        15,
        f"{user}'s processes to end",
    )
    res = subprocess.run(["userdel", "-r", user], capture_output=True, text=True)
    gone = subprocess.run(["id", user], capture_output=True).returncode != 0
    assert gone, f"userdel -r {user}: {res.stderr}"
