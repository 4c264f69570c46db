"""Where response actions run: the local gateway (optionally inside a network namespace) or a remote
gateway over SSH.

Both executors satisfy :class:`wgsiem.respond.actions.base.Executor` and share three rules:

* **no shell** — an argv list is run as is (locally through ``asyncio.create_subprocess_exec``, over SSH
  as a ``shlex``-quoted command line checked against an allow-list first);
* **secrets travel on stdin** (``wg set … preshared-key /dev/stdin``), never in argv; a failing command's
  error names the argv and its stderr, with anything shaped like a WireGuard key that is not already
  in the argv (a public key the caller passed) replaced by ``<key>``;
* **files are replaced atomically** — a temporary file in the same directory, written, fsynced,
  given the mode (and the previous file's owner), then renamed over the target — so a reader (and
  ``wg-quick``) sees either the old file or the new one, never half of it.

Beyond the protocol, both offer ``file_mode(path)`` (the permission bits, or None when the file is
missing) so an action can rewrite a config file with the mode it had.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shlex
import socket
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from wgsiem.errors import ConfigError, WgsiemError
from wgsiem.respond.actions.base import CommandResult

__all__ = [
    "DEFAULT_SSH_COMMANDS",
    "ExecutorError",
    "LocalExecutor",
    "SshExecutor",
    "safe_stderr",
]

_KEY_SHAPE = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")
_STDERR_LIMIT = 600
_GATE_REFUSED = b"wgsiem-gate: refused"
DEFAULT_SSH_COMMANDS = frozenset({"wg", "nft"})
"""Programs an :class:`SshExecutor` runs unless configured otherwise (what the actions here need)."""


class ExecutorError(WgsiemError):
    """A command failed, timed out, was refused by the allow-list, or a file could not be replaced."""


def safe_stderr(stderr: bytes, argv: Sequence[str]) -> str:
    """stderr for an error message: decoded, trimmed, keys not passed in argv replaced by ``<key>``."""
    text = stderr.decode("utf-8", "replace").strip()
    allowed = set(argv)
    text = _KEY_SHAPE.sub(lambda m: m.group(0) if m.group(0) in allowed else "<key>", text)
    return text[:_STDERR_LIMIT] + ("…" if len(text) > _STDERR_LIMIT else "")


def _failed(where: str, argv: Sequence[str], rc: int, stderr: bytes) -> ExecutorError:
    return ExecutorError(
        f"{where}: `{shlex.join(argv)}` exited with {rc}: {safe_stderr(stderr, argv) or '(no stderr)'}",
        fix="check the command's message; run it by hand on the gateway to reproduce",
    )


def _atomic_write_local(path: str, data: bytes, mode: int) -> None:
    target = Path(path)
    try:
        st: os.stat_result | None = target.stat()
    except FileNotFoundError:
        st = None
    tmp = target.with_name(f".{target.name}.wgsiem-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fh.fileno(), st.st_uid, st.st_gid)
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class LocalExecutor:
    """Commands on this host, inside network namespace ``netns`` when given (``ip netns exec``).

    Files are this host's files (a network namespace shares the filesystem).
    """

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.name = f"netns:{netns}" if netns else "local"

    def _argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else list(argv)

    async def run(
        self, argv: list[str], *, input: bytes | None = None, timeout_secs: float = 30.0, check: bool = True
    ) -> CommandResult:
        if not argv:
            raise ExecutorError("empty command", fix="pass the program and its arguments")
        full = self._argv(argv)
        try:
            proc = await asyncio.create_subprocess_exec(
                *full,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise ExecutorError(
                f"{self.name}: {full[0]} is not installed", fix=f"install {full[0]}"
            ) from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(input), timeout_secs)
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise ExecutorError(
                f"{self.name}: `{shlex.join(argv)}` did not finish within {timeout_secs:g} s",
                fix="is the gateway overloaded or the command waiting for input?",
            ) from None
        rc = proc.returncode if proc.returncode is not None else -1
        result = CommandResult(tuple(argv), rc, out, err)
        if check and rc != 0:
            raise _failed(self.name, argv, rc, err)
        return result

    async def read_file(self, path: str) -> bytes:
        try:
            return await asyncio.to_thread(Path(path).read_bytes)
        except OSError as exc:
            raise ExecutorError(
                f"{self.name}: cannot read {path}: {exc.strerror}", fix="check the path"
            ) from None

    async def write_file(self, path: str, data: bytes, *, mode: int) -> None:
        try:
            await asyncio.to_thread(_atomic_write_local, path, data, mode)
        except OSError as exc:
            raise ExecutorError(
                f"{self.name}: cannot replace {path}: {exc.strerror}",
                fix="the directory must be writable by wgsiem (and not on a read-only mount)",
            ) from None

    async def file_mode(self, path: str) -> int | None:
        try:
            return (await asyncio.to_thread(os.stat, path)).st_mode & 0o7777
        except FileNotFoundError:
            return None


async def _chown_back(sftp: Any, path: str, uid: int, gid: int) -> None:
    """Give ``path`` the replaced file's owner and group — or, as a non-root SSH account (the
    least-privilege recipe), at least its group: only root may give a file away, so the file then
    belongs to the account, keeps its group (the setgid directory already gave it) and gets its
    mode set by the caller. A group that cannot be kept either is an error, not a silent change."""
    import asyncssh

    cur = await sftp.stat(path)
    if (cur.uid, cur.gid) == (uid, gid):
        return
    try:
        await sftp.chown(path, uid, gid)
        return
    except asyncssh.SFTPPermissionDenied:
        if cur.gid == gid:
            return
    await sftp.chown(path, cur.uid, gid)  # a group the account is in; else SFTPPermissionDenied


class SshExecutor:
    """Commands and files on a remote gateway over SSH (``asyncssh``), least privilege.

    * The server's host key must be pinned: ``known_hosts`` (an OpenSSH known_hosts file) or
      ``host_key_sha256`` (``SHA256:…`` as ``ssh-keygen -lf`` prints it). An unknown or different
      key is refused; there is no trust-on-first-use.
    * Authentication is by the client key file ``client_key`` only (no passwords, no agent).
    * ``allowed_commands`` (program names) is enforced here, before anything is sent; pair it with
      the server-side half shipped in ``contrib/ssh/`` (a ``ForceCommand`` gate that admits only the
      actions' command lines, a sudoers fragment; docs/respond/actions.md). With ``sudo=True`` each
      command runs as ``sudo -n <argv>``. A command the gate refuses fails with "the gateway refused".
    * Files go over SFTP: written to a temporary name in the target's directory, fsynced
      (``fsync@openssh.com``), given the old file's owner (as a non-root account: its group),
      chmod'ed, then ``posix-rename@openssh.com``'d over the target.

    One connection is opened lazily and reused; ``close()`` ends it. ``sock_factory`` (optional)
    returns an already connected socket to run SSH over (a jump path, or — in the tests — a socket
    opened inside the lab's gateway namespace).
    """

    def __init__(
        self,
        host: str,
        *,
        username: str,
        client_key: str | Path,
        port: int = 22,
        known_hosts: str | Path | None = None,
        host_key_sha256: str | None = None,
        allowed_commands: Iterable[str] = DEFAULT_SSH_COMMANDS,
        sudo: bool = False,
        connect_timeout_secs: float = 10.0,
        sock_factory: Callable[[], socket.socket] | None = None,
    ) -> None:
        if (known_hosts is None) == (host_key_sha256 is None):
            raise ConfigError(
                f"ssh executor for {host}: exactly one of known_hosts or host_key_sha256 is required",
                fix="pin the gateway's host key: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`",
            )
        if host_key_sha256 is not None and not host_key_sha256.startswith("SHA256:"):
            raise ConfigError(
                f"ssh executor for {host}: host_key_sha256 must look like SHA256:…",
                fix="copy the fingerprint exactly as `ssh-keygen -lf` prints it",
            )
        self.host, self.port, self.username = host, port, username
        self.client_key = str(client_key)
        self.known_hosts = str(known_hosts) if known_hosts is not None else None
        self.host_key_sha256 = host_key_sha256
        self.allowed_commands = frozenset(allowed_commands)
        self.sudo = sudo
        self.connect_timeout_secs = connect_timeout_secs
        self.sock_factory = sock_factory
        self.name = f"ssh:{username}@{host}"
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> Any:
        import asyncssh

        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            pinned = self.host_key_sha256
            options: dict[str, Any] = {}
            if pinned is not None:

                class _Pinned(asyncssh.SSHClient):
                    def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
                        return bool(key.get_fingerprint("sha256") == pinned)

                options["client_factory"] = _Pinned
                options["known_hosts"] = ([], [], [])  # nothing trusted: every key goes to the pin
                options["server_host_key_algs"] = "default"
            else:
                options["known_hosts"] = self.known_hosts
            if self.sock_factory is not None:  # e.g. a socket opened inside a network namespace
                options["sock"] = await asyncio.to_thread(self.sock_factory)
            try:
                self._conn = await asyncio.wait_for(
                    asyncssh.connect(
                        self.host,
                        port=self.port,
                        username=self.username,
                        client_keys=[self.client_key],
                        agent_path=None,
                        password=None,
                        kbdint_auth=False,
                        config=None,
                        **options,
                    ),
                    self.connect_timeout_secs,
                )
            except TimeoutError:
                raise ExecutorError(
                    f"{self.name}: no SSH connection within {self.connect_timeout_secs:g} s",
                    fix="check the address, port and firewall",
                ) from None
            except (OSError, asyncssh.Error) as exc:
                reason = getattr(exc, "reason", None) or str(exc)
                raise ExecutorError(
                    f"{self.name}: SSH connection refused: {reason}",
                    fix="check the pinned host key (known_hosts / host_key_sha256) and the client key",
                ) from None
            return self._conn

    def _command(self, argv: list[str]) -> str:
        if not argv:
            raise ExecutorError("empty command", fix="pass the program and its arguments")
        if argv[0] not in self.allowed_commands:
            raise ExecutorError(
                f"{self.name}: `{argv[0]}` is not in the allowed commands {sorted(self.allowed_commands)}",
                fix="add it to the executor's allowed_commands (and the server's sudoers) if it is intended",
            )
        return shlex.join(["sudo", "-n", *argv] if self.sudo else argv)

    async def run(
        self, argv: list[str], *, input: bytes | None = None, timeout_secs: float = 30.0, check: bool = True
    ) -> CommandResult:
        command = self._command(argv)
        conn = await self._connection()
        try:
            proc = await asyncio.wait_for(
                conn.run(command, input=input, encoding=None, check=False), timeout_secs
            )
        except TimeoutError:
            raise ExecutorError(
                f"{self.name}: `{shlex.join(argv)}` did not finish within {timeout_secs:g} s",
                fix="is the gateway overloaded or the command waiting for input?",
            ) from None
        rc = proc.exit_status if proc.exit_status is not None else -1
        out = proc.stdout or b""
        err = proc.stderr or b""
        result = CommandResult(tuple(argv), rc, bytes(out), bytes(err))
        if check and rc == 126 and result.stderr.startswith(_GATE_REFUSED):
            raise ExecutorError(
                f"{self.name}: the gateway refused `{shlex.join(argv)}`: {safe_stderr(result.stderr, argv)}",
                fix="the server-side allow-list (contrib/ssh/wgsiem-gate) does not admit this command; "
                "if the action is meant to run there, update the gate from this wgsiem version",
            )
        if check and rc != 0:
            raise _failed(self.name, argv, rc, result.stderr)
        return result

    async def read_file(self, path: str) -> bytes:
        import asyncssh

        conn = await self._connection()
        try:
            async with conn.start_sftp_client() as sftp, sftp.open(path, "rb") as fh:
                return bytes(await fh.read())
        except asyncssh.SFTPError as exc:
            raise ExecutorError(
                f"{self.name}: cannot read {path}: {exc.reason}", fix="check the path"
            ) from None

    async def write_file(self, path: str, data: bytes, *, mode: int) -> None:
        import asyncssh

        conn = await self._connection()
        directory, _, base = path.rpartition("/")
        tmp = f"{directory}/.{base}.wgsiem-{secrets.token_hex(4)}.tmp"
        try:
            async with conn.start_sftp_client() as sftp:
                try:
                    old = await sftp.stat(path)
                except asyncssh.SFTPNoSuchFile:
                    old = None
                try:
                    async with sftp.open(tmp, "wb", asyncssh.SFTPAttrs(permissions=0o600)) as fh:
                        await fh.write(data)
                        await fh.fsync()
                    if old is not None and old.uid is not None and old.gid is not None:
                        await _chown_back(sftp, tmp, old.uid, old.gid)
                    await sftp.chmod(tmp, mode)
                    await sftp.posix_rename(tmp, path)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await sftp.remove(tmp)
                    raise
        except asyncssh.SFTPError as exc:
            raise ExecutorError(
                f"{self.name}: cannot replace {path}: {exc.reason}",
                fix="the directory must be writable by the SSH user (see the least-privilege recipe)",
            ) from None

    async def file_mode(self, path: str) -> int | None:
        import asyncssh

        conn = await self._connection()
        async with conn.start_sftp_client() as sftp:
            try:
                attrs = await sftp.stat(path)
            except asyncssh.SFTPNoSuchFile:
                return None
            return int(attrs.permissions or 0) & 0o7777

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            await self._conn.wait_closed()
            self._conn = None
