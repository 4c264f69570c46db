"""The NDJSON sink runtime: append lines, rotate by size, fsync on flush.

Why these choices:

* Lines are appended with ``O_APPEND`` to a file created with mode 0640: events name peers and
  addresses, so not every local user should read them.
* Rotation happens *between* lines, before the active file would exceed ``max_bytes`` (a single line
  larger than ``max_bytes`` gets a file of its own): a reader never sees half an event. The chain is
  ``file → file.1 → file.2 …`` and at most ``max_files`` files exist, the active one included.
* If something else moves or deletes the active file (an external logrotate), the next write notices
  (inode changed) and reopens ``path`` instead of writing into an unlinked file.
* Delivery is at-least-once: a write that fails half-way is retried whole by the pipeline, so a line
  may appear twice; ``event.id`` lets the consumer drop the duplicate.
* File work runs in a worker thread so a slow disk never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import os

from wgsiem.errors import Location, WgsiemError
from wgsiem.event import Envelope
from wgsiem.pipeline.telemetry import ComponentTelemetry, TelemetryRegistry

from .config import STDOUT, NdjsonSinkConfig
from .encoder import EncodeError, encode, mapped_encoder

__all__ = ["NdjsonSink"]

_FILE_MODE = 0o640
_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


class SinkIOError(WgsiemError):
    """The NDJSON file could not be opened, written or rotated."""


class NdjsonSink:
    """Writes each event's ECS document as one JSON line to a file (rotated) or to stdout."""

    component_type = "ndjson"

    def __init__(self, config: NdjsonSinkConfig, telemetry: ComponentTelemetry, *, component_id: str) -> None:
        """Prefer :meth:`build`, which opens the file."""
        self.config = config
        self.telemetry = telemetry
        self.component_id = component_id
        self._stdout = config.path == STDOUT
        self._fd: int | None = None
        self._size = 0
        # ECS: the shared, memoized encoder, untouched; another schema maps each document first
        self._encode = encode if config.output_schema == "ecs" else mapped_encoder(config.output_schema)

    @classmethod
    def build(
        cls, config: NdjsonSinkConfig, registry: TelemetryRegistry, *, component_id: str = "ndjson"
    ) -> NdjsonSink:
        """Register telemetry and open the output (raises :class:`WgsiemError` with a fix if it cannot)."""
        sink = cls(
            config, registry.register(component_id, "sink", cls.component_type), component_id=component_id
        )
        sink._open()
        return sink

    # ---- file handling (worker thread) ---------------------------------------------------------------

    def _open(self) -> None:
        if self._stdout:
            self._fd = 1
            return
        path = self.config.path
        try:
            self._fd = os.open(path, _OPEN_FLAGS, _FILE_MODE)
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise SinkIOError(
                f"cannot open NDJSON output: {exc.strerror}",
                location=Location(path),
                fix="check that the directory exists and the wgsiem user may write to it",
            ) from exc

    def _reopen_if_moved(self) -> None:
        if self._stdout or self._fd is None:
            return
        try:
            moved = os.stat(self.config.path).st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            moved = True
        if moved:
            os.close(self._fd)
            self._fd = None
            self._open()

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._size += len(data)

    def _rotate(self) -> None:
        """``file.(N-2) → file.(N-1)`` … ``file → file.1``; the oldest beyond ``max_files`` is replaced."""
        assert self._fd is not None
        path, keep = self.config.path, self.config.max_files
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        if keep == 1:
            os.unlink(path)
        else:
            for i in range(keep - 1, 0, -1):
                src = path if i == 1 else f"{path}.{i - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{path}.{i}")
        self._open()

    def _write_lines(self, batch: list[Envelope]) -> None:
        lines: list[bytes] = []
        encode_one = self._encode
        for env in batch:
            try:
                lines.append(encode_one(env))
            except EncodeError as exc:
                self.telemetry.error("EncodeError", "encode", str(exc))
                self.telemetry.drop("unencodable")
        if not lines:
            return
        if self._fd is None:
            self._open()
        if self._stdout:
            self._write_all(b"".join(lines))
            return
        self._reopen_if_moved()
        limit = self.config.max_bytes
        if self._size + sum(map(len, lines)) <= limit:  # the common case: no rotation in this batch
            self._write_all(b"".join(lines))
            return
        chunk: list[bytes] = []
        chunk_size = 0
        for line in lines:
            if self._size + chunk_size + len(line) > limit and self._size + chunk_size > 0:
                if chunk:
                    self._write_all(b"".join(chunk))
                    chunk, chunk_size = [], 0
                self._rotate()
            chunk.append(line)
            chunk_size += len(line)
        self._write_all(b"".join(chunk))

    def _fsync(self) -> None:
        if self._fd is not None and not self._stdout:
            os.fsync(self._fd)

    def _close(self) -> None:
        if self._fd is not None and not self._stdout:
            os.fsync(self._fd)
            os.close(self._fd)
        self._fd = None

    # ---- Sink protocol -------------------------------------------------------------------------------

    async def write(self, batch: list[Envelope]) -> None:
        try:
            await asyncio.to_thread(self._write_lines, batch)
        except OSError as exc:
            raise SinkIOError(
                f"NDJSON write failed: {exc.strerror}", location=Location(self.config.path)
            ) from exc

    async def flush(self) -> None:
        try:
            await asyncio.to_thread(self._fsync)
        except OSError as exc:
            raise SinkIOError(
                f"NDJSON fsync failed: {exc.strerror}", location=Location(self.config.path)
            ) from exc

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    async def health_check(self) -> None:
        """The output is open and is still the file at ``path`` (or stdout is open)."""
        if self._fd is None:
            raise SinkIOError("NDJSON output is not open", location=Location(self.config.path))
        try:
            os.fstat(self._fd)
            if not self._stdout and not os.access(
                os.path.dirname(os.path.abspath(self.config.path)), os.W_OK
            ):
                raise SinkIOError(
                    "NDJSON directory is not writable (rotation would fail)",
                    location=Location(self.config.path),
                    fix="give the wgsiem user write access to the directory",
                )
        except OSError as exc:
            raise SinkIOError(
                f"NDJSON output unusable: {exc.strerror}", location=Location(self.config.path)
            ) from exc
