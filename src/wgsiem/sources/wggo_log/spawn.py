"""Run wireguard-go in the foreground and read its stdout and stderr line by line (command mode).

wireguard-go logs to stdout; stderr carries its "not required" banner and Go panics. Both streams are
read by one task each into one queue, so a line is handed out as soon as it is written, in the order
the two pipes delivered them. Stopping sends SIGTERM (wireguard-go closes the device and logs
``Shutting down``), reads what is still written, and kills the process group after a timeout.

The process gets its own session (``start_new_session``) so a terminal's Ctrl-C reaches wgsiem only and
wgsiem decides when the daemon stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence

from wgsiem.errors import SourceError

__all__ = ["Daemon", "interface_from_command"]

EOF = None


def interface_from_command(argv: Sequence[str]) -> str | None:
    """The interface of ``wireguard-go [-f] IFACE`` (its last argument), wrappers like
    ``ip netns exec NS wireguard-go -f IFACE`` included."""
    for i, arg in enumerate(argv):
        if os.path.basename(arg).startswith("wireguard-go"):
            rest = [a for a in argv[i + 1 :] if not a.startswith("-")]
            return rest[-1] if rest else None
    return None


class Daemon:
    """One run of the configured command."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        max_line_bytes: int = 65536,
        stop_timeout_secs: float = 5.0,
    ) -> None:
        self.argv = list(argv)
        self.env = {**os.environ, **env}
        self.max_line_bytes = max_line_bytes
        self.stop_timeout_secs = stop_timeout_secs
        self.proc: asyncio.subprocess.Process | None = None
        self.queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(maxsize=10000)
        self._readers: list[asyncio.Task[None]] = []
        self._open_streams = 0
        self.started_at: float | None = None
        self.too_long = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    async def start(self) -> None:
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                start_new_session=True,
                limit=self.max_line_bytes,
            )
        except OSError as exc:
            raise SourceError(
                f"cannot start {self.argv[0]!r}: {exc.strerror or exc}",
                fix="check `command:` (is wireguard-go installed and on PATH?)",
            ) from exc
        self.started_at = time.time()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._open_streams = 2
        self._readers = [
            asyncio.create_task(self._pump("stdout", self.proc.stdout)),
            asyncio.create_task(self._pump("stderr", self.proc.stderr)),
        ]

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        try:
            while True:
                try:
                    line = await stream.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        await self.queue.put((name, exc.partial))
                    break
                except asyncio.LimitOverrunError as exc:
                    # an over-long line: hand out its head, drop the rest up to its newline
                    self.too_long += 1
                    head = await stream.readexactly(min(exc.consumed, self.max_line_bytes))
                    await self.queue.put((name, head))
                    await self._skip_line(stream)
                    continue
                await self.queue.put((name, line[:-1]))
        finally:
            await self.queue.put(EOF)

    @staticmethod
    async def _skip_line(stream: asyncio.StreamReader) -> None:
        while True:
            try:
                await stream.readuntil(b"\n")
                return
            except asyncio.LimitOverrunError as exc:
                await stream.readexactly(exc.consumed)
            except asyncio.IncompleteReadError:
                return

    def stream_ended(self) -> bool:
        """Count one end-of-stream marker; True once both pipes are closed."""
        self._open_streams -= 1
        return self._open_streams <= 0

    async def wait(self) -> int:
        assert self.proc is not None
        rc = await self.proc.wait()
        for t in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        return rc

    def terminate(self) -> None:
        """SIGTERM: wireguard-go closes the device, logs ``Shutting down`` and exits."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the daemon's whole process group (it had its own session)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    async def close(self) -> None:
        """Make sure nothing is left running (after an error or cancellation)."""
        if self.proc is not None and self.proc.returncode is None:
            self.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), self.stop_timeout_secs)
            except TimeoutError:
                self.kill()
                await self.proc.wait()
        for t in self._readers:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
