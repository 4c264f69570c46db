"""Files only wgsiem may read: mode 0600 always, whole or not at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from wgsiem.private_file import write_private


def test_written_whole_and_owner_only_even_over_a_stale_world_readable_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state" / "src.json"
    target.parent.mkdir()
    stale = target.with_name(f".{target.name}.tmp")
    stale.write_text("stale")
    os.chmod(stale, 0o644)
    write_private(target, b'{"a": 1}')
    assert target.read_bytes() == b'{"a": 1}'
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not stale.exists()


def test_replaces_the_previous_version_and_creates_missing_directories_0700(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir" / "pos.json"
    write_private(target, b"one", fsync=False)
    write_private(target, b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["pos.json"]
