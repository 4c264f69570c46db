"""FileFollower on real files: appends, partial lines, rotation (rename + new file), copytruncate,
restart from a saved position (also after a rotation while stopped), over-long lines."""

from __future__ import annotations

import os
from pathlib import Path

from wgsiem.sources.wggo_log.follow import FileFollower


def drain(f: FileFollower) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    while True:
        lines, more = f.read()
        out += lines
        if not more and not lines:
            return out


def test_appends_and_partial_lines(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    p.write_bytes(b"a\nb\npart")
    f = FileFollower(p)
    assert drain(f) == [(1, b"a"), (2, b"b")]
    with p.open("ab") as fh:
        fh.write(b"ial\r\nc\n")
    assert drain(f) == [(3, b"partial"), (4, b"c")]
    assert drain(f) == []


def test_missing_file_waits(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    f = FileFollower(p)
    assert drain(f) == []
    p.write_bytes(b"x\n")
    assert drain(f) == [(1, b"x")]


def test_rotation_reads_old_rest_then_new(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    p.write_bytes(b"1\n2\n")
    f = FileFollower(p)
    assert drain(f) == [(1, b"1"), (2, b"2")]
    with p.open("ab") as fh:
        fh.write(b"3\n")
    os.rename(p, tmp_path / "wg0.log.1")
    p.write_bytes(b"new1\n")
    assert drain(f) == [(3, b"3"), (1, b"new1")]
    assert f.rotations == 1


def test_copytruncate(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    p.write_bytes(b"1\n2\n3\n")
    f = FileFollower(p)
    assert len(drain(f)) == 3
    with p.open("r+b") as fh:
        fh.truncate(0)
    assert drain(f) == []
    with p.open("ab") as fh:
        fh.write(b"after\n")
    assert drain(f) == [(1, b"after")]
    assert f.resets == 1


def test_restart_resumes_exactly(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    p.write_bytes(b"1\n2\nhalf")
    f = FileFollower(p)
    assert drain(f) == [(1, b"1"), (2, b"2")]
    pos = f.position()
    assert pos is not None and pos.offset == 4 and pos.line == 2
    f.close()
    with p.open("ab") as fh:
        fh.write(b"way\n3\n")
    g = FileFollower(p, position=pos)
    assert drain(g) == [(3, b"halfway"), (4, b"3")]


def test_rotated_while_stopped(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    p.write_bytes(b"1\n")
    f = FileFollower(p)
    drain(f)
    pos = f.position()
    f.close()
    with p.open("ab") as fh:
        fh.write(b"2\n")
    os.rename(p, tmp_path / "wg0.log.1")
    p.write_bytes(b"n1\n")
    g = FileFollower(p, position=pos)
    assert drain(g) == [(2, b"2"), (1, b"n1")]


def test_replaced_while_stopped_starts_over(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    p.write_bytes(b"old line one\n")
    f = FileFollower(p)
    drain(f)
    pos = f.position()
    f.close()
    p.unlink()
    p.write_bytes(b"brand new\n")
    g = FileFollower(p, position=pos)
    assert drain(g) == [(1, b"brand new")]
    assert g.resets == 1


def test_truncated_and_rewritten_same_inode_detected_by_head(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    p.write_bytes(b"first\n")
    f = FileFollower(p)
    drain(f)
    pos = f.position()
    f.close()
    with p.open("r+b") as fh:  # same inode, same size or longer, other content
        fh.truncate(0)
        fh.write(b"other!\nmore\n")
    g = FileFollower(p, position=pos)
    assert drain(g) == [(1, b"other!"), (2, b"more")]


def test_start_at_end_counts_lines(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    p.write_bytes(b"1\n2\n3\npar")
    f = FileFollower(p, from_start=False)
    assert drain(f) == []
    with p.open("ab") as fh:
        fh.write(b"tial\n5\n")
    assert drain(f) == [(4, b"partial"), (5, b"5")]


def test_over_long_line_is_cut(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    p.write_bytes(b"ok\n" + b"x" * 1000 + b"\nnext\n")
    f = FileFollower(p, max_line_bytes=300, read_max_bytes=4096)
    got = drain(f)
    assert got == [(1, b"ok"), (2, b"x" * 300), (3, b"next")]
    assert f.too_long == 1


def test_over_long_line_across_reads(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    p.write_bytes(b"y" * 10000 + b"\nnext\n")
    f = FileFollower(p, max_line_bytes=300, read_max_bytes=4096)
    assert drain(f) == [(1, b"y" * 300), (2, b"next")]


def test_file_appearing_later_is_read_from_its_start(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    f = FileFollower(p, from_start=False)  # "start at the end" only applies to a file there now
    assert drain(f) == []
    p.write_bytes(b"1\n2\n")
    assert drain(f) == [(1, b"1"), (2, b"2")]


def test_saved_file_gone_then_new_one_read_from_start(tmp_path: Path) -> None:
    p = tmp_path / "wg0.log"
    p.write_bytes(b"old\n")
    f = FileFollower(p)
    drain(f)
    pos = f.position()
    f.close()
    p.unlink()
    g = FileFollower(p, position=pos, from_start=False)
    assert drain(g) == []
    p.write_bytes(b"new\n")
    assert drain(g) == [(1, b"new")]
