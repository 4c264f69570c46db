"""I/O: read the runtime state of every WireGuard interface into a :class:`Snapshot`.

Readers, in order of preference per interface:
* **UAPI socket** (``/var/run/wireguard/<if>.sock``) for userspace implementations (wireguard-go,
  boringtun): one ``get=1`` round trip, read until the ``errno=`` terminator, so a large peer list is
  never cut short. The socket directory is shared by every network namespace, so interfaces inside
  namespaces are seen too.
* **``wg show all dump``** for kernel interfaces and as the fallback. ``wg`` handles the kernel's
  multi-message netlink dump correctly (the bug class where a hand-rolled netlink dump returns only the
  first message's peers is avoided by not hand-rolling it; see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from wgsiem.errors import SourceError
from wgsiem.sources.wg_state.dump_parser import parse_dump
from wgsiem.sources.wg_state.records import Fingerprinter, Snapshot, SnapshotInterface
from wgsiem.sources.wg_state.uapi_parser import parse_uapi

__all__ = [
    "DEFAULT_SOCKET_DIRS",
    "StateReader",
    "discover_uapi",
    "kernel_wireguard_links",
    "read_uapi",
    "read_uapi_blocking",
    "run_wg_dump",
]

DEFAULT_SOCKET_DIRS = ("/var/run/wireguard", "/run/wireguard")
UAPI_MAX_BYTES = 512 * 1024 * 1024
_CHUNK = 1 << 20


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def discover_uapi(socket_dirs: Iterable[str]) -> dict[str, str]:
    """Interface name → UAPI socket path, for every live-looking socket in the directories."""
    found: dict[str, str] = {}
    for d in socket_dirs:
        try:
            entries = os.scandir(d)
        except OSError:
            continue
        with entries:
            for e in entries:
                if e.name.endswith(".sock") and _is_socket(e.path):
                    name = e.name[: -len(".sock")]
                    real = os.path.realpath(e.path)
                    if name not in found and real not in found.values():
                        found[name] = e.path
    return found


def read_uapi_blocking(path: str, timeout_secs: float = 30.0) -> bytes:
    """One ``get=1`` over the UAPI socket; returns the whole answer including ``errno=N``.

    Blocking on purpose (run in a worker thread): large ``recv_into`` calls into one growing buffer
    cost less than an event-loop round trip per chunk, which matters at 100k peers (~34 MB).
    """
    deadline = time.monotonic() + timeout_secs
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_secs)
        sock.connect(path)
        sock.sendall(b"get=1\n\n")
        buf = bytearray(_CHUNK * 4)
        view = memoryview(buf)
        n = 0
        while True:
            if n == len(buf):
                if len(buf) >= UAPI_MAX_BYTES:
                    raise SourceError(f"UAPI answer from {path} exceeds {UAPI_MAX_BYTES} bytes")
                view.release()
                buf.extend(bytes(len(buf)))
                view = memoryview(buf)
            got = sock.recv_into(view[n:])
            if got == 0:
                break
            n += got
            # the answer ends with "errno=N\n\n"; the peer closes the socket afterwards
            if buf[n - 2 : n] == b"\n\n" and b"errno=" in buf[max(0, n - 32) : n]:
                break
            if time.monotonic() > deadline:
                raise TimeoutError
        view.release()
        return bytes(buf[:n])
    except (OSError, TimeoutError) as exc:
        raise SourceError(
            f"cannot read WireGuard UAPI socket {path}: {exc}",
            fix="is the userspace WireGuard process still running, and is wgsiem running as root?",
        ) from exc
    finally:
        sock.close()


async def read_uapi(path: str, timeout_secs: float = 30.0) -> bytes:
    return await asyncio.to_thread(read_uapi_blocking, path, timeout_secs)


async def run_wg_dump(wg_binary: str = "wg", timeout_secs: float = 30.0) -> bytes:
    try:
        proc = await asyncio.create_subprocess_exec(
            wg_binary,
            "show",
            "all",
            "dump",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise SourceError(
            f"`{wg_binary}` not found", fix="install wireguard-tools (apt-get install wireguard-tools)"
        ) from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_secs)
    except TimeoutError as exc:
        proc.kill()
        raise SourceError(f"`{wg_binary} show all dump` timed out after {timeout_secs}s") from exc
    if proc.returncode != 0 and not out:
        raise SourceError(
            f"`{wg_binary} show all dump` failed: {err.decode(errors='replace').strip()}",
            fix="run wgsiem as root (reading WireGuard state needs CAP_NET_ADMIN)",
        )
    return out


class StateReader:
    """Reads every interface. ``mode``: ``auto`` (UAPI where a socket exists, else ``wg``), ``uapi``,
    or ``dump``. ``interfaces`` restricts to the named ones (empty = all)."""

    def __init__(
        self,
        fingerprinter: Fingerprinter,
        *,
        mode: str = "auto",
        interfaces: Iterable[str] = (),
        socket_dirs: Iterable[str] = DEFAULT_SOCKET_DIRS,
        wg_binary: str = "wg",
        timeout_secs: float = 30.0,
    ) -> None:
        self.fp = fingerprinter
        self.mode = mode
        self.only = frozenset(interfaces)
        self.socket_dirs = tuple(socket_dirs)
        self.wg_binary = wg_binary
        self.timeout_secs = timeout_secs
        self.parse_errors = 0

    def _wanted(self, name: str) -> bool:
        return not self.only or name in self.only

    async def read(self) -> Snapshot:
        errors: list[str] = []
        interfaces: dict[str, SnapshotInterface] = {}
        uapi = discover_uapi(self.socket_dirs) if self.mode in ("auto", "uapi") else {}
        for name, path in sorted(uapi.items()):
            if not self._wanted(name):
                continue
            try:
                data = await read_uapi(path, self.timeout_secs)
            except SourceError as exc:
                if not Path(path).exists():
                    continue  # interface went away between listing and reading
                errors.append(exc.render())
                continue
            res = parse_uapi(name, data, self.fp)
            for e in res.errors:
                errors.append(e.render())
            self.parse_errors += len(res.errors)
            if res.info is None:
                continue
            interfaces[name] = SnapshotInterface(
                info=res.info, implementation="userspace", peer_format="uapi", records=res.records
            )
        if self.mode in ("auto", "dump"):
            need_dump = self.mode == "dump" or await self._has_kernel_interfaces(set(interfaces))
            if need_dump:
                try:
                    data = await run_wg_dump(self.wg_binary, self.timeout_secs)
                except SourceError as exc:
                    errors.append(exc.render())
                    data = b""
                dres = parse_dump(data, self.fp)
                for e in dres.errors:
                    errors.append(e.render())
                self.parse_errors += len(dres.errors)
                for name, si in dres.interfaces.items():
                    if name in interfaces or not self._wanted(name):
                        continue
                    si.implementation = "kernel" if name not in uapi else "userspace"
                    interfaces[name] = si
        return Snapshot(taken_at=time.time(), interfaces=interfaces, errors=errors)

    async def _has_kernel_interfaces(self, known: set[str]) -> bool:
        """True if this namespace has a WireGuard link that is not served by a UAPI socket."""
        return bool(set(await asyncio.to_thread(kernel_wireguard_links)) - known)


def kernel_wireguard_links() -> list[str]:
    """Names of kernel WireGuard links in this namespace (``IFLA_INFO_KIND == "wireguard"``)."""
    try:
        from pyroute2 import IPRoute
    except ImportError:  # pragma: no cover - pyroute2 is a dependency
        return []
    names: list[str] = []
    try:
        with IPRoute() as ipr:
            for link in ipr.get_links():
                info = link.get_attr("IFLA_LINKINFO")
                if info is not None and info.get_attr("IFLA_INFO_KIND") == "wireguard":
                    names.append(link.get_attr("IFLA_IFNAME"))
    except OSError:
        return []
    return names
