"""The systemd journal, read through the real ``journalctl`` (shared by ``kernel_log`` and ``wggo_log``).

Why a ``journalctl -o json --follow`` subprocess and not ``python-systemd`` / ``sd_journal`` bindings:
``journalctl`` is on every systemd host, handles journal rotation, vacuuming, file corruption and
``--directory``/``--file`` itself, needs no C extension, and its JSON is a stable interface
(``systemd.journal-fields(7)``, https://systemd.io/JOURNAL_EXPORT_FORMATS/). The price is one process
per follower, which is nothing next to one per line.

Position: the follower remembers the ``__CURSOR`` of the last entry the *source* says it has emitted
(:meth:`JournalFollower.commit`) in a small file (atomic write, mode 0600). After a restart it starts with
``--after-cursor`` so nothing is read twice and nothing is lost while wgsiem was down (as long as the
journal still holds it). Without a cursor it starts at the end (``since_now=True``, ``--lines=0``) or at
the beginning of what the journal holds (``since_now=False``, ``--no-tail``).

If ``journalctl`` exits (journal directory gone, cursor no longer valid, killed), the follower restarts
it with a growing back-off, after the last entry it *yielded*, so a restart neither repeats nor skips.

JSON field values (``systemd.journal-fields(7)`` and the JSON export format): a string; or, when the value
is not valid UTF-8 or holds control characters, an array of byte values; or ``null`` when too large; or,
when a field occurs more than once in one entry, an array of those values. :func:`entry_message` turns
all of these into a string.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from wgsiem.errors import Location, ParseError, SourceError

__all__ = [
    "JournalFollower",
    "entry_field",
    "entry_message",
    "entry_time",
    "parse_json_entry",
    "read_json_export",
]

log = logging.getLogger(__name__)

MAX_ENTRY_BYTES = 16 * 1024 * 1024  # one JSON line; journald's own limit on a field is far below this
RESTART_BACKOFF_SECS = (0.5, 1.0, 2.0, 5.0, 10.0)


def _field_text(value: Any) -> str:
    """A journal JSON field value (string / byte array / null / array of those) as text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if value and all(isinstance(b, int) and 0 <= b < 256 for b in value):
            return bytes(value).decode("utf-8", "replace")
        # the field occurred several times: its values, one per line
        return "\n".join(_field_text(v) for v in value)
    return str(value)


def entry_field(entry: dict[str, Any], name: str) -> str | None:
    """A field as text, or ``None`` when the entry does not have it."""
    if name not in entry:
        return None
    return _field_text(entry[name])


def entry_message(entry: dict[str, Any]) -> str:
    """``MESSAGE``, which may be a string or a list of byte values (non-UTF-8 or control characters);
    a trailing newline is removed. Missing or ``null`` gives ``""``."""
    text = _field_text(entry.get("MESSAGE"))
    return text[:-1] if text.endswith("\n") else text


def entry_time(entry: dict[str, Any]) -> float:
    """``__REALTIME_TIMESTAMP`` (microseconds since the epoch, a decimal string) → epoch seconds.

    Falls back to ``_SOURCE_REALTIME_TIMESTAMP`` (when the journal entry was made by a trusted sender);
    raises :class:`ValueError` when neither is a number.
    """
    for name in ("__REALTIME_TIMESTAMP", "_SOURCE_REALTIME_TIMESTAMP"):
        raw = entry.get(name)
        if raw is None:
            continue
        try:
            return int(_field_text(raw)) / 1_000_000
        except ValueError:
            continue
    raise ValueError("journal entry has no __REALTIME_TIMESTAMP")


def parse_json_entry(line: str | bytes, location: Location) -> dict[str, Any] | ParseError:
    """One ``journalctl -o json`` line → the entry, or a :class:`ParseError` at ``location``."""
    try:
        entry = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return ParseError(
            f"not a journal JSON entry ({type(exc).__name__})",
            location=location,
            fix="the file must be `journalctl -o json` output, one JSON object per line",
        )
    if not isinstance(entry, dict):
        return ParseError(
            "journal JSON line is not an object",
            location=location,
            fix="the file must be `journalctl -o json` output, one JSON object per line",
        )
    try:
        entry_time(entry)
    except ValueError:
        return ParseError(
            "journal entry has no numeric __REALTIME_TIMESTAMP",
            location=location,
            fix="export with `journalctl -o json` (not json-pretty or a hand-made file)",
        )
    return entry


def read_json_export(path: Path) -> Iterator[tuple[int, dict[str, Any] | ParseError]]:
    """A ``journalctl -o json`` file, entry by entry, with 1-based line numbers; a bad line is yielded
    as a :class:`ParseError` carrying ``path:line`` and the lines around it are kept. Blank lines are
    skipped."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            yield lineno, parse_json_entry(raw, Location(str(path), lineno))


class JournalFollower:
    """Follows the journal through ``journalctl -o json --follow`` (a subprocess), with a persisted cursor.

    ``matches`` are journalctl match arguments (``FIELD=VALUE``; the same field twice is OR, different
    fields AND, ``"+"`` between groups is OR — ``journalctl(1)``), e.g.
    ``["_TRANSPORT=kernel", "+", "SYSLOG_IDENTIFIER=wg-quick"]``. ``directory`` / ``files`` read journal
    files instead of the system journal (``--directory`` / ``--file``; tests, containers, a mounted
    host journal). ``cursor_path`` is ``None`` for no persistence. ``since_now`` only applies when there
    is no saved cursor: start at the end (``True``) or at the oldest entry (``False``).
    ``on_error`` is told about every JSON line that could not be read (it is skipped).
    """

    def __init__(
        self,
        matches: list[str],
        cursor_path: Path | None,
        *,
        journalctl: str = "journalctl",
        directory: str | None = None,
        files: list[str] | None = None,
        since_now: bool = True,
        on_error: Callable[[ParseError], None] | None = None,
    ) -> None:
        self.matches = list(matches)
        self.cursor_path = cursor_path
        self.journalctl = journalctl
        self.directory = directory
        self.files = list(files or [])
        self.since_now = since_now
        self.on_error = on_error
        self.committed: str | None = self._load_cursor()
        self.last_yielded: str | None = None
        self.restarts = 0
        self.bad_lines = 0
        self.last_stderr = ""
        self._proc: asyncio.subprocess.Process | None = None

    # ------------------------------------------------------------------ cursor
    def _load_cursor(self) -> str | None:
        if self.cursor_path is None:
            return None
        try:
            text = self.cursor_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read journal cursor %s: %s; starting without it", self.cursor_path, exc)
            return None
        return text or None

    def commit(self, cursor: str) -> None:
        """Persist ``cursor`` as the position (atomic write, mode 0600). Call it after the entries up
        to and including ``cursor`` were emitted."""
        self.committed = cursor
        if self.cursor_path is None:
            return
        self.cursor_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".cursor-", dir=self.cursor_path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(cursor + "\n")
            os.replace(tmp, self.cursor_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    # ------------------------------------------------------------------ process
    def command(self, after_cursor: str | None) -> list[str]:
        """The ``journalctl`` command line that continues after ``after_cursor`` (or starts fresh)."""
        cmd = [self.journalctl, "-o", "json", "--follow", "--no-pager", "--quiet"]
        if self.directory:
            cmd += ["--directory", self.directory]
        for f in self.files:
            cmd += ["--file", f]
        if after_cursor:
            # --follow alone shows only the last 10 entries after the cursor (journalctl 252)
            cmd += ["--after-cursor", after_cursor, "--no-tail"]
        elif self.since_now:
            cmd += ["--lines", "0"]
        else:
            cmd += ["--no-tail"]
        return cmd + self.matches

    async def _spawn(self, after_cursor: str | None) -> asyncio.subprocess.Process:
        cmd = self.command(after_cursor)
        try:
            return await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=MAX_ENTRY_BYTES,
                env={**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"},
            )
        except FileNotFoundError as exc:
            raise SourceError(
                f"cannot run {self.journalctl!r}",
                fix="install systemd's journalctl or set `journalctl:` to its path",
            ) from exc

    async def _stop_proc(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def entries(self, stop: asyncio.Event) -> AsyncIterator[dict[str, Any]]:
        """Journal entries (dicts as ``journalctl -o json`` prints them), until ``stop`` is set.

        Restarts ``journalctl`` if it exits; a cursor journalctl rejects (corrupt file, another
        machine's journal) is dropped once, with a warning, and the follow starts as if there were none.
        """
        stop_wait = asyncio.ensure_future(stop.wait())
        backoff = 0
        cursor = self.committed
        lineno = 0
        try:
            while not stop.is_set():
                proc = self._proc = await self._spawn(cursor)
                assert proc.stdout is not None and proc.stderr is not None
                got_any = False
                while True:
                    read = asyncio.ensure_future(proc.stdout.readline())
                    done, _ = await asyncio.wait({read, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                    if read not in done:
                        read.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await read
                        return
                    try:
                        raw = read.result()
                    except (ValueError, asyncio.LimitOverrunError):
                        # a line over MAX_ENTRY_BYTES: unusable; the stream is not line-aligned any more
                        self._bad(ParseError("journal entry over the size limit", location=self._loc(lineno)))
                        break
                    if not raw:
                        break  # journalctl exited
                    lineno += 1
                    entry = parse_json_entry(raw, self._loc(lineno))
                    if isinstance(entry, ParseError):
                        self._bad(entry)
                        continue
                    got_any = True
                    backoff = 0
                    cur = entry.get("__CURSOR")
                    if isinstance(cur, str):
                        self.last_yielded = cursor = cur
                    yield entry
                    if stop.is_set():
                        return
                rc = await proc.wait()
                stderr = (await proc.stderr.read()).decode("utf-8", "replace").strip()
                self.last_stderr = stderr[-2000:]
                self._proc = None
                if stop.is_set():
                    return
                self.restarts += 1
                if rc != 0 and cursor is not None and not got_any and "cursor" in stderr.lower():
                    log.warning("journalctl rejected the saved cursor (%s); following without it", stderr)
                    cursor = None
                log.warning("journalctl exited with %s: %s; restarting", rc, stderr or "(no message)")
                delay = RESTART_BACKOFF_SECS[min(backoff, len(RESTART_BACKOFF_SECS) - 1)]
                backoff += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stop_wait), delay)
        finally:
            stop_wait.cancel()
            await self._stop_proc()

    def _loc(self, lineno: int) -> Location:
        return Location("journalctl", lineno)

    def _bad(self, err: ParseError) -> None:
        self.bad_lines += 1
        if self.on_error is not None:
            self.on_error(err)
        else:
            log.warning("%s", err)

    async def close(self) -> None:
        await self._stop_proc()

    def status(self) -> dict[str, Any]:
        return {
            "cursor_committed": self.committed is not None,
            "restarts": self.restarts,
            "bad_lines": self.bad_lines,
            "last_stderr": self.last_stderr or None,
        }
