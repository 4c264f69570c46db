"""journald mode against the real journalctl, reading journal files written by the real
``systemd-journal-remote`` from the captured wireguard-go lines (this machine runs no journald)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.sources.wggo_log.harness import FIX, fixture_directory, make_source, replay_docs
from tests.sources.wggo_log.test_source_file import Run
from tests.support.ecs import validate
from wgsiem.sources.wggo_log.lines import is_banner
from wgsiem.sources.wggo_log.normalize import redact

pytestmark = pytest.mark.component

JOURNAL_REMOTE = Path("/usr/lib/systemd/systemd-journal-remote")


def write_journal(path: Path, entries: list[dict[str, str]]) -> None:
    """Entries (export format fields) → a real journal file."""
    if not JOURNAL_REMOTE.exists() or shutil.which("journalctl") is None:
        pytest.skip("needs systemd-journal-remote and journalctl")
    text = "".join("".join(f"{k}={v}\n" for k, v in e.items()) + "\n" for e in entries)
    subprocess.run(
        [str(JOURNAL_REMOTE), "-o", str(path), "-"], input=text.encode(), check=True, capture_output=True
    )


def entries_of(lines: list[str], comm: str = "wireguard-go", first_mono: int = 1) -> list[dict[str, str]]:
    out = []
    for i, line in enumerate(lines):
        stamp = line.split(") ", 1)[1][:19]
        t = datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
        out.append(
            {
                "__REALTIME_TIMESTAMP": str(int(t * 1_000_000) + i),
                "__MONOTONIC_TIMESTAMP": str(first_mono + i),
                "_BOOT_ID": "0123456789abcdef0123456789abcdef",
                "_COMM": comm,
                "SYSLOG_IDENTIFIER": comm,
                "MESSAGE": line,
            }
        )
    return out


def source(state: Path, files: list[Path]) -> Any:
    return make_source(
        state,
        fixture_directory(),
        mode="journald",
        journal_files=[str(f) for f in files],
        journal_since_now=False,
    )


async def collect(src: Any, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    async with Run(src) as r:
        await r.until(lambda d: len(d) >= n, timeout=timeout)
    return r.docs


def gateway_lines() -> list[str]:
    return [x for x in (FIX / "gateway.log").read_text().splitlines() if x and not is_banner(x)]


def test_journal_gives_the_ids_the_file_gives(tmp_path: Path) -> None:
    lines = gateway_lines()
    journal = tmp_path / "gw.journal"
    # another program's entry (not matched by `_COMM=wireguard-go`) in the middle
    noise = entries_of([lines[60]], comm="sshd", first_mono=61)
    write_journal(journal, entries_of(lines[:60]) + noise + entries_of(lines[60:], first_mono=62))
    live = asyncio.run(collect(source(tmp_path / "state", [journal]), len(lines)))
    assert [d["message"] for d in live] == [redact(x.split(") ", 1)[1][20:]) for x in lines]
    # the same lines read from the file give the same event ids (same line, same second, same count)
    from_file = replay_docs(
        make_source(tmp_path / "r", fixture_directory(), replay=True), FIX / "gateway.log"
    )
    assert [d["event"]["id"] for d in live] == [d["event"]["id"] for d in from_file]
    assert [d["event"]["action"] for d in live] == [d["event"]["action"] for d in from_file]
    # the event time is the journal's own (microseconds), not the line's second
    assert [d["@timestamp"] for d in live[:3]] == [
        "2026-11-25T17:52:48.000Z",
        "2026-11-25T17:52:48.000Z",
        "2026-11-25T17:52:48.000Z",
    ]
    assert [p for d in live for p in validate(d)] == []
    cursor = tmp_path / "state" / "wggo_log" / "wggo.cursor"
    assert cursor.exists() and oct(cursor.stat().st_mode & 0o777) == "0o600"


def test_journal_resumes_after_cursor_without_loss(tmp_path: Path) -> None:
    lines = gateway_lines()
    j1, j2 = tmp_path / "one.journal", tmp_path / "two.journal"
    write_journal(j1, entries_of(lines[:60]))
    a = asyncio.run(collect(source(tmp_path / "state", [j1]), 60))
    write_journal(j2, entries_of(lines[60:], first_mono=61))  # written while wgsiem was stopped
    b = asyncio.run(collect(source(tmp_path / "state", [j1, j2]), len(lines) - 60, timeout=5))
    assert [d["message"] for d in a + b] == [redact(x.split(") ", 1)[1][20:]) for x in lines]
