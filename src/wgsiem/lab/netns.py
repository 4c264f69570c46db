"""Commands and processes inside the lab's network namespaces: the only place the lab touches the host.

Why these rules:

* Every command is an argv list (never a shell string built from input) and every failure becomes a
  :class:`LabError` carrying the command's stderr and a fix hint.
* wireguard-go runs in the foreground (``-f``; its daemon mode dies here) in its own session, so it
  outlives the process that started it (``wgsiem lab up`` returns) and can be stopped as a process group.
* Processes are only ever stopped by pid, after checking ``/proc/<pid>/cmdline`` still names the
  expected program, so a recycled pid is never hit.
* ``wg`` sees every ``*.sock`` in ``/var/run/wireguard`` whatever namespace it runs in (the directory is
  shared), so ``wg show all`` in the gateway would list every client — and every other lab on the host.
  :func:`wg_argv` runs ``wg`` with a private view of that directory holding only one namespace's
  sockets, which is what ``wg show all`` inside that namespace shows on a kernel-WireGuard host.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from wgsiem.lab.topology import LabError

__all__ = [
    "NETNS_DIR",
    "delete_namespace",
    "find_wireguard_go",
    "ip_batch",
    "list_namespaces",
    "namespace_pids",
    "netns_argv",
    "process_alive",
    "require_environment",
    "run",
    "spawn_wireguard_go",
    "stop_process",
    "wait_for",
    "wg_argv",
]

NETNS_DIR = Path("/run/netns")
_REQUIRED_TOOLS = {
    "ip": "apt-get install iproute2",
    "wg": "apt-get install wireguard-tools",
    "wireguard-go": "apt-get install wireguard-go",
    "mount": "apt-get install mount",
}
T = TypeVar("T")

# Runs argv with /run/wireguard replaced by a directory holding only the listed interfaces' sockets
# (bind mounts, private to this one process: `ip netns exec` already gave it its own mount namespace).
_VIEW_SCRIPT = (
    'set -e; view="$1"; shift; '
    'while [ "$1" != "--" ]; do s="$1"; shift; '
    '[ -S "/run/wireguard/$s.sock" ] || continue; '
    ': > "$view/$s.sock"; mount --bind "/run/wireguard/$s.sock" "$view/$s.sock"; done; '
    'shift; mount --rbind "$view" /run/wireguard; exec "$@"'
)


def require_environment() -> None:
    """Fail early, with the fix, when the lab cannot work here (not root, tools missing)."""
    if os.geteuid() != 0:
        raise LabError(
            "the WireGuard lab needs root (network namespaces, TUN devices, bind mounts)",
            fix="run as root, e.g. `sudo wgsiem lab up`",
        )
    missing = [tool for tool in _REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        hints = "; ".join(_REQUIRED_TOOLS[t] for t in missing)
        raise LabError(f"missing tools for the lab: {', '.join(missing)}", fix=hints)


def run(argv: Sequence[str], *, stdin: bytes | None = None, timeout: float = 60.0) -> str:
    """Run a command to completion; its stdout, or a :class:`LabError` with its stderr."""
    try:
        done = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {argv[0]}", fix="install it (see `wgsiem lab up` docs)") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`{' '.join(argv)}` did not finish within {timeout:g}s", fix="retry") from exc
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        raise LabError(
            f"`{' '.join(argv)}` failed (exit {done.returncode}): {err}",
            fix="run `wgsiem lab down` then `wgsiem lab up` to rebuild the lab",
        )
    return done.stdout.decode(errors="replace")


def netns_argv(namespace: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", namespace, *argv]


def ip_batch(namespace: str, lines: Iterable[str]) -> None:
    """Apply many ``ip`` commands inside one namespace with one process (``ip -n NS -batch -``)."""
    text = "".join(f"{line}\n" for line in lines)
    run(["ip", "-n", namespace, "-batch", "-"], stdin=text.encode())


def wg_argv(namespace: str, interfaces: Iterable[str], view_dir: Path, args: Sequence[str]) -> list[str]:
    """argv running ``wg args`` in ``namespace``, seeing only ``interfaces``' UAPI sockets.

    ``view_dir`` must exist; it gets one empty placeholder file per interface (bind-mount targets).
    """
    return netns_argv(
        namespace, ["sh", "-c", _VIEW_SCRIPT, "sh", str(view_dir), *interfaces, "--", "wg", *args]
    )


def list_namespaces() -> list[str]:
    """Named network namespaces (what ``ip netns list`` shows), without a subprocess."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def namespace_pids(namespace: str) -> list[int]:
    try:
        out = run(["ip", "netns", "pids", namespace], timeout=10)
    except LabError:
        return []
    return [int(tok) for tok in out.split()]


def delete_namespace(namespace: str) -> None:
    if namespace in list_namespaces():
        run(["ip", "netns", "delete", namespace])


def spawn_wireguard_go(namespace: str, interface: str, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``wireguard-go -f interface`` inside ``namespace``, logging at debug level to ``log_path``.

    ``ip netns exec`` execs in place, so the returned process *is* wireguard-go (its pid, its session).
    The log is appended to, so a restart keeps the earlier run's lines.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("WG_")}
    env["LOG_LEVEL"] = "debug"
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            netns_argv(namespace, ["wireguard-go", "-f", interface]),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")[:-1]


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its parent counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def find_wireguard_go(match: Callable[[str], bool]) -> dict[str, int]:
    """Running ``wireguard-go -f IF`` processes whose IF satisfies ``match``: interface → pid."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _cmdline(int(entry.name))
        if (
            argv
            and len(argv) == 3
            and argv[0].endswith("wireguard-go")
            and argv[1] == "-f"
            and match(argv[2])
            and process_alive(int(entry.name))
        ):
            found[argv[2]] = int(entry.name)
    return found


def stop_process(
    pid: int,
    expect: Sequence[str] | None = None,
    *,
    child: subprocess.Popen[bytes] | None = None,
    timeout: float = 15.0,
) -> None:
    """SIGTERM ``pid`` (its whole process group when it leads one), then SIGKILL after ``timeout``.

    ``expect`` is the argv the process must still have; when it does not, the pid was recycled and
    nothing is signalled. ``child`` is reaped when given, so no zombie is left behind.
    """
    argv = _cmdline(pid)
    if argv is None or (expect is not None and argv != list(expect)):
        if child is not None:
            child.poll()
        return

    def signal_it(sig: signal.Signals) -> None:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def gone() -> bool | None:
        if child is not None and child.poll() is not None:
            return True
        return True if not process_alive(pid) else None

    signal_it(signal.SIGTERM)
    try:
        wait_for(gone, timeout=timeout, what=f"pid {pid} to exit after SIGTERM", fix="")
    except LabError:
        signal_it(signal.SIGKILL)
        wait_for(gone, timeout=5.0, what=f"pid {pid} to exit after SIGKILL", fix="check `ps` for it")
    if child is not None:
        child.wait(timeout=5.0)


def wait_for(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    fix: str,
    interval: float = 0.05,
) -> T:
    """Poll ``check`` until it returns something other than None; :class:`LabError` after ``timeout``.

    Every wait in the lab goes through here: a condition and a deadline, never a sleep-and-hope.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:g}s waiting for {what}", fix=fix or None)
        time.sleep(interval)
