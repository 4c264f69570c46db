"""The hash-chained audit log: an untouched log verifies; an edited, deleted, reordered or truncated
one fails naming the first bad record; concurrent writers keep one chain; secrets are redacted."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.respond.audit import GENESIS, AuditLog, head_path_for, record_hash, redact, verify


def _log(tmp: Path, n: int = 5) -> Path:
    path = tmp / "audit.jsonl"
    log = AuditLog(path)
    for i in range(n):
        log.append("action", "policy", event="action-started", action_id=f"p-1.{i}", summary=f"step {i}")
    log.close()
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def test_untouched_log_verifies(tmp_path: Path) -> None:
    path = _log(tmp_path)
    res = verify(path)
    assert (res.ok, res.records, res.head_seq) == (True, 5, 5)
    recs = [json.loads(x) for x in _lines(path)]
    assert recs[0]["prev_hash"] == GENESIS
    assert all(r["hash"] == record_hash(r) for r in recs)
    assert [r["seq"] for r in recs] == [1, 2, 3, 4, 5]
    assert set(recs[0]) >= {"seq", "time", "kind", "actor", "prev_hash", "hash"}


def test_edited_record_is_named(tmp_path: Path) -> None:
    path = _log(tmp_path)
    lines = _lines(path)
    lines[2] = lines[2].replace('"actor":"policy"', '"actor":"mallory"')
    _write(path, lines)
    res = verify(path)
    assert (res.ok, res.bad_line, res.bad_seq) == (False, 3, 3)
    assert "edited" in res.reason


def test_edited_record_with_rehash_breaks_the_next_link(tmp_path: Path) -> None:
    path = _log(tmp_path)
    lines = _lines(path)
    rec = json.loads(lines[1])
    rec["summary"] = "nothing happened"
    rec["hash"] = record_hash(rec)
    lines[1] = json.dumps(rec, sort_keys=True, separators=(",", ":"))
    _write(path, lines)
    res = verify(path)
    assert (res.ok, res.bad_seq) == (False, 3)
    assert "prev_hash" in res.reason


def test_deleted_record_is_named(tmp_path: Path) -> None:
    path = _log(tmp_path)
    lines = _lines(path)
    del lines[1]
    _write(path, lines)
    res = verify(path)
    assert (res.ok, res.bad_line, res.bad_seq) == (False, 2, 3)
    assert "expected 2" in res.reason


def test_reordered_records_are_named(tmp_path: Path) -> None:
    path = _log(tmp_path)
    lines = _lines(path)
    lines[1], lines[2] = lines[2], lines[1]
    _write(path, lines)
    res = verify(path)
    assert (res.ok, res.bad_line, res.bad_seq) == (False, 2, 3)


def test_truncated_log_fails_against_the_head(tmp_path: Path) -> None:
    path = _log(tmp_path)
    _write(path, _lines(path)[:3])
    res = verify(path)
    assert (res.ok, res.bad_seq) == (False, 4)
    assert "truncated" in res.reason


def test_torn_last_line_is_named(tmp_path: Path) -> None:
    path = _log(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    res = verify(path)
    assert (res.ok, res.bad_line) == (False, 5)


def test_rewritten_chain_fails_against_the_external_head(tmp_path: Path) -> None:
    ext = tmp_path / "worm" / "audit.head"
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, external_head_path=ext)
    for i in range(3):
        log.append("policy", "policy", event="x", n=i)
    log.close()
    # rewrite the whole chain consistently, and its local head too: only the external head knows
    path.unlink()
    head_path_for(path).unlink()
    log2 = AuditLog(path)
    for i in range(3):
        log2.append("policy", "policy", event="x", n=i + 100)
    log2.close()
    assert verify(path).ok  # local head rewritten along with the chain
    res = verify(path, [head_path_for(path), ext])
    assert not res.ok and "rewritten" in res.reason


def _writer(path: str, n: int) -> None:
    log = AuditLog(Path(path))
    for i in range(n):
        log.append("policy", f"w{i}", event="concurrent")
    log.close()


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(path), 40)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    res = verify(path)
    assert (res.ok, res.records) == (True, 120)


def test_redact() -> None:
    doc = {
        "private_key": "x",
        "nested": {"PresharedKey": "y", "ok": "public", "list": [{"token": "z"}]},
        "config": "[Interface]\nPrivateKey = abc\n",
        "password": None,
    }
    assert redact(doc) == {
        "private_key": "[redacted]",
        "nested": {"PresharedKey": "[redacted]", "ok": "public", "list": [{"token": "[redacted]"}]},
        "config": "[redacted]",
        "password": None,
    }


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_verify_never_raises_on_arbitrary_bytes(tmp_path_factory, data: bytes) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("fuzz") / "audit.jsonl"
    path.write_bytes(data)
    res = verify(path)
    assert isinstance(res.ok, bool)
    if data.strip():
        assert not res.ok or res.records > 0


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=399), st.integers(min_value=1, max_value=255))
def test_any_single_byte_change_is_detected(tmp_path_factory, pos: int, delta: int) -> None:  # type: ignore[no-untyped-def]
    path = _log(tmp_path_factory.mktemp("flip"), 3)
    data = bytearray(path.read_bytes())
    i = pos % len(data)
    data[i] = (data[i] + delta) % 256
    path.write_bytes(bytes(data))
    assert not verify(path).ok
