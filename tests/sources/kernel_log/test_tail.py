"""Following real files: new lines, partial lines, rotation (create and rename), copytruncate, restart."""

from __future__ import annotations

import os
from pathlib import Path

from wgsiem.sources.kernel_log.tail import FilePosition, FileTail


def texts(tail: FileTail) -> list[str]:
    return [t.text for t in tail.poll()]


def append(path: Path, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)


def test_new_file_starts_at_end_unless_from_start(tmp_path: Path) -> None:
    p = tmp_path / "kern.log"
    p.write_text("old 1\nold 2\n")
    tail = FileTail(p)
    assert texts(tail) == []
    append(p, "new 3\n")
    got = tail.poll()
    assert [(t.text, t.line, t.offset) for t in got] == [("new 3", 3, 12)]
    assert texts(FileTail(p, from_start=True)) == ["old 1", "old 2", "new 3"]


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    p = tmp_path / "kern.log"
    p.write_text("")
    tail = FileTail(p)
    append(p, "half")
    assert texts(tail) == []
    append(p, " done\nnext")
    assert texts(tail) == ["half done"]
    append(p, "\n")
    assert texts(tail) == ["next"]


def test_rotation_by_rename_and_create(tmp_path: Path) -> None:
    p = tmp_path / "kern.log"
    p.write_text("a\n")
    tail = FileTail(p, from_start=True)
    assert texts(tail) == ["a"]
    append(p, "b\nlast-without-newline")
    os.rename(p, tmp_path / "kern.log.1")
    assert texts(tail) == ["b"]  # renamed, not yet replaced: keep reading the old file
    p.write_text("c\n")
    assert texts(tail) == ["last-without-newline", "c"]
    assert tail.rotations == 1
    append(p, "d\n")
    assert texts(tail) == ["d"]


def test_rotation_by_delete_and_recreate(tmp_path: Path) -> None:
    p = tmp_path / "syslog"
    p.write_text("a\n")
    tail = FileTail(p, from_start=True)
    assert texts(tail) == ["a"]
    p.unlink()
    assert texts(tail) == []
    p.write_text("b\n")
    assert texts(tail) == ["b"]


def test_copytruncate(tmp_path: Path) -> None:
    p = tmp_path / "kern.log"
    p.write_text("a\nb\n")
    tail = FileTail(p, from_start=True)
    assert texts(tail) == ["a", "b"]
    os.truncate(p, 0)
    append(p, "c\n")
    assert texts(tail) == ["c"]
    assert tail.truncations == 1
    assert tail.position is not None and tail.position.line == 1


def test_restart_resumes_at_saved_position(tmp_path: Path) -> None:
    p = tmp_path / "kern.log"
    p.write_text("a\nb\n")
    tail = FileTail(p, from_start=True)
    assert texts(tail) == ["a", "b"]
    saved = FilePosition.from_json(tail.position.to_json())  # type: ignore[union-attr]
    tail.close()
    append(p, "c\n")
    resumed = FileTail(p, saved)
    got = resumed.poll()
    assert [(t.text, t.line) for t in got] == [("c", 3)]


def test_restart_after_rotation_while_down_reads_the_rest_of_the_old_file(tmp_path: Path) -> None:
    p = tmp_path / "kern.log"
    p.write_text("a\n")
    tail = FileTail(p, from_start=True)
    assert texts(tail) == ["a"]
    saved = tail.position
    tail.close()
    append(p, "b\n")
    os.rename(p, tmp_path / "kern.log.1")
    p.write_text("c\n")
    resumed = FileTail(p, saved)
    got = resumed.poll()
    assert [(t.text, Path(t.path).name) for t in got] == [("b", "kern.log.1"), ("c", "kern.log")]


def test_restart_after_truncation_while_down(tmp_path: Path) -> None:
    p = tmp_path / "kern.log"
    p.write_text("a\nb\nc\n")
    tail = FileTail(p, from_start=True)
    tail.poll()
    saved = tail.position
    tail.close()
    os.truncate(p, 0)
    append(p, "d\n")
    assert texts(FileTail(p, saved)) == ["d"]


def test_long_lines_are_cut_and_counted(tmp_path: Path) -> None:
    p = tmp_path / "kern.log"
    p.write_text("x" * 1000 + "\nshort\n")
    tail = FileTail(p, from_start=True, max_line_bytes=256)
    got = tail.poll()
    assert [(len(t.text), t.truncated) for t in got] == [(256, True), (5, False)]
    assert tail.long_lines == 1


def test_missing_file_appears_later(tmp_path: Path) -> None:
    p = tmp_path / "kern.log"
    tail = FileTail(p)
    assert texts(tail) == []
    p.write_text("a\n")  # created after the tail started: all of it is new
    assert texts(tail) == ["a"]
    append(p, "b\n")
    assert texts(tail) == ["b"]
