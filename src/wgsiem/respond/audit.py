"""The append-only, hash-chained audit log of every proposal, decision, action, result and undo.

Each line is one JSON record ``{seq, time, kind, actor, ..., prev_hash, hash}``; ``hash`` is the
sha256 of the record's canonical JSON (sorted keys, no spaces, UTF-8) without ``hash``, and
``prev_hash`` is the previous record's ``hash`` (64 zeros for the first). Editing a record breaks its
hash; removing or reordering records breaks ``seq`` and ``prev_hash``; removing records at the end is
caught by the chain head (``{seq, hash}`` of the last record) that is written out periodically, at
stop, and optionally to a second place the host's administrator cannot quietly rewrite.

Several processes append (the running engine; ``wgsiem approvals approve`` run by a person): every
append takes an exclusive ``flock`` and re-reads the tail if another process wrote since, so the
chain stays linear.

Nothing secret is ever written: :func:`redact` replaces any value under a key that names a secret
(private key, preshared key, password, token, a client config) and any text that looks like a
WireGuard configuration holding a ``PrivateKey``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "GENESIS",
    "KINDS",
    "AuditLog",
    "VerifyResult",
    "canonical",
    "head_path_for",
    "read_records",
    "record_hash",
    "redact",
    "verify",
]

GENESIS = "0" * 64
KINDS = ("proposal", "decision", "action", "result", "undo", "policy")
_SECRET_WORDS = ("private", "preshared", "psk", "password", "passwd", "secret", "token", "client_config")
REDACTED = "[redacted]"


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def redact(value: Any, key: str = "") -> Any:
    """A copy of ``value`` with every secret replaced by ``[redacted]``."""
    k = key.lower()
    if k and any(w in k for w in _SECRET_WORDS) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, dict):
        return {str(kk): redact(v, str(kk)) for kk, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str) and "privatekey" in value.lower().replace(" ", ""):
        return REDACTED
    if hasattr(value, "get_secret_value"):
        return REDACTED
    return value


def head_path_for(path: Path) -> Path:
    """``audit.jsonl`` → ``audit.head``."""
    return path.with_suffix(".head")


def _last_line(f: Any, size: int) -> bytes | None:
    """The last complete line of the open binary file ``f`` of ``size`` bytes."""
    if size == 0:
        return None
    chunk = 65536
    pos = size
    buf = b""
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        f.seek(pos)
        buf = f.read(step) + buf
        stripped = buf.rstrip(b"\n")
        nl = stripped.rfind(b"\n")
        if nl >= 0:
            return stripped[nl + 1 :]
    return buf.rstrip(b"\n") or None


class AuditLog:
    """Appends records to ``path`` (mode 0600) and writes the chain head."""

    def __init__(
        self, path: Path, *, head_interval_secs: float = 10.0, external_head_path: Path | None = None
    ) -> None:
        self.path = path
        self.head_paths = [head_path_for(path)] + ([external_head_path] if external_head_path else [])
        self.head_interval_secs = head_interval_secs
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        self._f = os.fdopen(fd, "a+b", buffering=0)
        self._size = -1
        self._seq = 0
        self._hash = GENESIS
        self._head_written_at = 0.0
        self._head_seq = -1

    def _sync_tail(self) -> None:
        size = os.fstat(self._f.fileno()).st_size
        if size == self._size:
            return
        line = _last_line(self._f, size)
        if line is None:
            self._seq, self._hash = 0, GENESIS
        else:
            try:
                rec = json.loads(line)
                self._seq, self._hash = int(rec["seq"]), str(rec["hash"])
            except (ValueError, KeyError, TypeError):
                # a torn last line (crash mid-write): verify reports it; keep counting past it
                self._seq, self._hash = self._seq + 1, hashlib.sha256(line).hexdigest()
        self._size = size

    def append(self, kind: str, actor: str, **fields: Any) -> dict[str, Any]:
        """Append one record; returns it (with ``seq`` and ``hash``)."""
        if kind not in KINDS:
            raise ValueError(f"audit kind {kind!r} not in {KINDS}")
        fcntl.flock(self._f.fileno(), fcntl.LOCK_EX)
        try:
            self._sync_tail()
            rec: dict[str, Any] = {
                "seq": self._seq + 1,
                "time": round(time.time(), 6),
                "kind": kind,
                "actor": actor,
            }
            for k, v in redact(fields).items():
                if k not in rec:
                    rec[k] = v
            rec["prev_hash"] = self._hash
            rec["hash"] = record_hash(rec)
            data = canonical(rec) + b"\n"
            os.write(self._f.fileno(), data)
            os.fsync(self._f.fileno())
            self._size += len(data)
            self._seq, self._hash = rec["seq"], rec["hash"]
        finally:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_UN)
        if time.monotonic() - self._head_written_at >= self.head_interval_secs:
            self.write_head()
        return rec

    def write_head(self) -> None:
        """Write ``{seq, hash, time}`` of the last record to every head path (atomic replace)."""
        fcntl.flock(self._f.fileno(), fcntl.LOCK_SH)
        try:
            self._sync_tail()
            head: dict[str, Any] = {"seq": self._seq, "hash": self._hash, "time": round(time.time(), 6)}
        finally:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_UN)
        for p in self.head_paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(p.name + f".tmp{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(canonical(head) + b"\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        self._head_written_at = time.monotonic()
        self._head_seq = int(head["seq"])

    def maybe_write_head(self) -> None:
        """Write the head if ``head_interval_secs`` passed since the last time."""
        if time.monotonic() - self._head_written_at >= self.head_interval_secs:
            self.write_head()

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.write_head()
        self._f.close()


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, bytes]]:
    """``(line number, record or None when unparsable, raw line)`` for each line of the log."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip(b"\n")
            try:
                rec = json.loads(line)
            except ValueError:
                yield lineno, None, line
                continue
            yield lineno, rec if isinstance(rec, dict) else None, line


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int
    bad_line: int | None = None
    bad_seq: int | None = None
    reason: str = ""
    head_seq: int | None = None

    def describe(self, path: Path) -> str:
        if self.ok:
            head = f", head at seq {self.head_seq}" if self.head_seq is not None else ", no head file"
            return f"{path}: OK — {self.records} record(s), chain intact{head}"
        where = f"record seq {self.bad_seq}" if self.bad_seq is not None else "record"
        return f"{path}: BROKEN at line {self.bad_line} ({where}): {self.reason}"


def verify(path: Path, head_paths: list[Path] | None = None) -> VerifyResult:
    """Check the whole chain and the head(s); the first bad record is named."""
    heads = head_paths if head_paths is not None else [head_path_for(path)]
    expected_seq, prev, count, last_line = 1, GENESIS, 0, 0
    seen: dict[int, str] = {}
    for lineno, rec, raw in read_records(path):
        last_line = lineno
        if rec is None:
            return VerifyResult(
                False, count, lineno, None, f"not a JSON record ({len(raw)} bytes; torn or edited)"
            )
        seq = rec.get("seq")
        if seq != expected_seq:
            what = "reordered or removed records" if isinstance(seq, int) else "no seq"
            return VerifyResult(False, count, lineno, seq, f"seq {seq}, expected {expected_seq} ({what})")
        if rec.get("prev_hash") != prev:
            return VerifyResult(
                False, count, lineno, seq, "prev_hash does not match the previous record's hash"
            )
        if rec.get("hash") != record_hash(rec):
            return VerifyResult(False, count, lineno, seq, "hash mismatch: the record was edited")
        prev = str(rec["hash"])
        seen[seq] = prev
        expected_seq += 1
        count += 1
    head_seq: int | None = None
    for hp in heads:
        try:
            head = json.loads(hp.read_text())
        except FileNotFoundError:
            continue
        except ValueError:
            return VerifyResult(False, count, last_line, None, f"head file {hp} unreadable")
        hs, hh = head.get("seq"), head.get("hash")
        if not isinstance(hs, int):
            return VerifyResult(False, count, last_line, None, f"head file {hp} has no seq")
        if hs > count:
            return VerifyResult(
                False,
                count,
                last_line + 1,
                count + 1,
                f"truncated: the head {hp} records seq {hs} but the log ends at seq {count}",
            )
        if hs > 0 and seen.get(hs) != hh:
            return VerifyResult(False, count, hs, hs, f"record differs from the head {hp} (rewritten chain)")
        head_seq = hs if head_seq is None else max(head_seq, hs)
    return VerifyResult(True, count, head_seq=head_seq)
