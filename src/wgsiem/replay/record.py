"""``wgsiem record DIR``: capture a gateway's telemetry for ``wgsiem replay``.

Writes, every ``interval`` seconds, the runtime state as ``<unix-ts>.dump`` (the ``wg_state`` source's
own snapshot, so a replay reproduces the live events; keys as keyed fingerprints only), a copy of each
WireGuard config file whenever it changed as ``<unix-ts>.<iface>.conf`` (``PrivateKey``/``PresharedKey``
values replaced by ``fp:<fingerprint>``), and the lines appended to the given log files under
``logs/``. The capture directory is created 0700 and every file 0600.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import glob
import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.private_file import write_private
from wgsiem.sources.config_watch.parser import public_key_of
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.records import Fingerprinter
from wgsiem.sources.wg_state.source import WgStateSource, load_fingerprint_secret

__all__ = ["RecordStats", "Recorder", "redact_config"]

log = logging.getLogger("wgsiem.record")

_SECRET_LINE = re.compile(
    rb"^(\s*(?:PrivateKey|PresharedKey)\s*=\s*)(\S+)(.*)$", re.IGNORECASE | re.MULTILINE
)


def redact_config(data: bytes, fp: Fingerprinter) -> bytes:
    """A WireGuard config with every private and preshared key replaced by ``fp:<fingerprint>``; a
    private key also keeps the public key derived from it (``fp:<fingerprint>/<public key>``), which
    the ``config_watch`` source reports."""

    def sub(m: re.Match[bytes]) -> bytes:
        value = m.group(2).decode(errors="replace")
        out = "fp:" + fp.of_b64(value)
        if m.group(1).strip().lower().startswith(b"privatekey"):
            try:
                raw = base64.b64decode(value, validate=True)
                if len(raw) == 32:
                    out += "/" + public_key_of(raw)
            except ValueError:
                pass
        return m.group(1) + out.encode() + m.group(3)

    return _SECRET_LINE.sub(sub, data)


@dataclass(slots=True)
class RecordStats:
    snapshots: int = 0
    configs: int = 0
    log_bytes: int = 0
    errors: list[str] = field(default_factory=list)


class Recorder:
    def __init__(
        self,
        directory: Path,
        *,
        interval_secs: float = 10.0,
        config_globs: tuple[str, ...] = ("/etc/wireguard/*.conf",),
        logs: tuple[Path, ...] = (),
        wg_config: WgStateSourceConfig | None = None,
        hostname: str = "recorder",
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        self.interval = interval_secs
        self.config_globs = config_globs
        self.logs = logs
        state = self.dir / ".state"  # hidden: replay skips it
        state.mkdir(exist_ok=True, mode=0o700)
        cfg = (wg_config or WgStateSourceConfig()).model_copy(update={"capture_dir": str(self.dir)})
        tel = TelemetryRegistry().register("record", "source", "wg_state")
        self.source = WgStateSource("record", cfg, hostname=hostname, state_dir=state, telemetry=tel)
        self.fp = Fingerprinter(load_fingerprint_secret(state))
        self.stats = RecordStats()
        self._conf_hashes: dict[str, str] = {}
        self._log_pos: dict[Path, tuple[int, int]] = {}  # path -> (inode, offset)
        (self.dir / "logs").mkdir(exist_ok=True, mode=0o700)

    def _configs(self, now: float) -> None:
        for pattern in self.config_globs:
            for name in sorted(glob.glob(pattern)):
                p = Path(name)
                try:
                    data = p.read_bytes()
                except OSError as exc:
                    self.stats.errors.append(f"{p}: {exc.strerror}")
                    continue
                digest = hashlib.sha256(data).hexdigest()
                if self._conf_hashes.get(name) == digest:
                    continue
                self._conf_hashes[name] = digest
                write_private(self.dir / f"{now:.3f}.{p.stem}.conf", redact_config(data, self.fp))
                self.stats.configs += 1

    def _copy_logs(self) -> None:
        for src in self.logs:
            try:
                st = src.stat()
            except OSError:
                continue
            inode, pos = self._log_pos.get(src, (st.st_ino, 0))
            if inode != st.st_ino or st.st_size < pos:  # rotated or truncated: start over
                inode, pos = st.st_ino, 0
            if st.st_size == pos:
                self._log_pos[src] = (inode, pos)
                continue
            with src.open("rb") as f:
                f.seek(pos)
                chunk = f.read(st.st_size - pos)
            cut = chunk.rfind(b"\n") + 1  # whole lines only; the rest next time
            if cut:
                out = self.dir / "logs" / src.name
                fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "ab") as f:
                    f.write(chunk[:cut])
                self.stats.log_bytes += cut
            self._log_pos[src] = (inode, pos + cut)

    async def tick(self) -> None:
        await self.source.poll_once()
        self.stats.snapshots += 1
        now = self.source.last_poll_at or time.time()
        await asyncio.to_thread(self._configs, now)
        await asyncio.to_thread(self._copy_logs)

    async def run(self, stop: asyncio.Event, duration_secs: float | None = None) -> RecordStats:
        deadline = time.monotonic() + duration_secs if duration_secs else None
        next_tick = time.monotonic()
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # a failed read is reported; recording goes on
                self.stats.errors.append(str(exc))
                log.warning("record: %s", exc)
            if deadline is not None and time.monotonic() >= deadline:
                break
            next_tick += self.interval
            delay = max(0.0, next_tick - time.monotonic())
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        await asyncio.to_thread(self._copy_logs)
        return self.stats
