"""Real journal files for tests: journal export format → ``systemd-journal-remote --output=FILE.journal``.

Needs the Debian package ``systemd-journal-remote`` (``/lib/systemd/systemd-journal-remote``); the files are
read back by the real ``journalctl``.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

JOURNAL_REMOTE = next(
    (
        p
        for p in ("/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote")
        if Path(p).exists()
    ),
    None,
)
BOOT_ID = "0123456789abcdef0123456789abcdef"


def require_tools() -> None:
    if JOURNAL_REMOTE is None or shutil.which("journalctl") is None:
        pytest.skip("needs journalctl and systemd-journal-remote (apt-get install systemd-journal-remote)")


def export_entry(fields: dict[str, str | bytes], realtime_us: int) -> bytes:
    """One entry in journal export format (https://systemd.io/JOURNAL_EXPORT_FORMATS/)."""
    out = bytearray()
    base: dict[str, str | bytes] = {
        "__REALTIME_TIMESTAMP": str(realtime_us),
        "__MONOTONIC_TIMESTAMP": str(realtime_us - 1_700_000_000_000_000 + 1_000_000),
        "_BOOT_ID": BOOT_ID,
        "_HOSTNAME": "gw-test",
    }
    for k, v in {**base, **fields}.items():
        data = v if isinstance(v, bytes) else v.encode()
        if b"\n" in data or any(b < 32 and b != 9 for b in data) or isinstance(v, bytes):
            out += k.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += k.encode() + b"=" + data + b"\n"
    return bytes(out) + b"\n"


def kernel(message: str | bytes, realtime_us: int) -> bytes:
    return export_entry(
        {
            "_TRANSPORT": "kernel",
            "SYSLOG_IDENTIFIER": "kernel",
            "PRIORITY": "7",
            "SYSLOG_FACILITY": "0",
            "MESSAGE": message,
        },
        realtime_us,
    )


def wg_quick(message: str, realtime_us: int, *, unit: str = "wg-quick@wg0.service", uid: str = "0") -> bytes:
    return export_entry(
        {
            "_TRANSPORT": "stdout",
            "SYSLOG_IDENTIFIER": "wg-quick",
            "PRIORITY": "6",
            "SYSLOG_FACILITY": "3",
            "_SYSTEMD_UNIT": unit,
            "_UID": uid,
            "_PID": "4242",
            "_COMM": "wg-quick",
            "MESSAGE": message,
        },
        realtime_us,
    )


def other(message: str, realtime_us: int) -> bytes:
    return export_entry(
        {"_TRANSPORT": "syslog", "SYSLOG_IDENTIFIER": "sshd", "MESSAGE": message}, realtime_us
    )


def write_journal(path: Path, *entries: bytes) -> None:
    """Append ``entries`` to the journal file ``path`` (created if missing) with the real journal-remote."""
    assert JOURNAL_REMOTE is not None
    export = path.with_suffix(".export")
    export.write_bytes(b"".join(entries))
    subprocess.run(
        [JOURNAL_REMOTE, f"--output={path}", str(export)], check=True, capture_output=True, timeout=30
    )
    export.unlink()
