"""The response engine's durable state: proposals, decisions, action runs (with undo data), undo
requests — one SQLite file (WAL, mode 0600) shared by the running engine and the CLI.

Why SQLite and not the DuckDB store: several processes write it (the engine, ``wgsiem approvals``,
``wgsiem respond undo``) and each write is small and must be durable before the next step runs (the
journal a crashed run is resumed from); SQLite's WAL gives exactly that with the standard library.

A proposal's life: ``pending`` (waits for approval) → ``approved`` → ``running`` → ``done`` |
``failed`` | ``rolled_back``; or ``denied``, ``expired``, ``dry_run`` (planned, nothing changed),
``blocked`` (allow-list), ``rate_limited``, ``killed`` (kill switch). Moving to ``running`` is a
compare-and-set, so an approval seen by two pollers still runs once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FINAL_STATUSES", "RespondPaths", "Store"]

FINAL_STATUSES = (
    "done",
    "failed",
    "rolled_back",
    "denied",
    "expired",
    "dry_run",
    "blocked",
    "rate_limited",
    "killed",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS proposals(
  id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL, expires REAL,
  started REAL, dedup_key TEXT UNIQUE NOT NULL, playbook TEXT NOT NULL, tier INTEGER NOT NULL,
  status TEXT NOT NULL, requires_approval INTEGER NOT NULL, why TEXT, origin TEXT, actor TEXT,
  reason TEXT, alert_id TEXT, rule_id TEXT, entity TEXT, target TEXT, plans TEXT, dry_run INTEGER,
  error TEXT);
CREATE INDEX IF NOT EXISTS proposals_status ON proposals(status);
CREATE TABLE IF NOT EXISTS decisions(
  id INTEGER PRIMARY KEY AUTOINCREMENT, proposal_id TEXT NOT NULL, decision TEXT NOT NULL,
  actor TEXT NOT NULL, reason TEXT, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS actions(
  id TEXT PRIMARY KEY, proposal_id TEXT NOT NULL, step INTEGER NOT NULL, action TEXT NOT NULL,
  status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, started REAL, finished REAL, plan TEXT,
  result TEXT, undo TEXT, reversible INTEGER, error TEXT);
CREATE TABLE IF NOT EXISTS undo_requests(
  id INTEGER PRIMARY KEY AUTOINCREMENT, action_id TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT,
  time REAL NOT NULL, status TEXT NOT NULL, outcome TEXT);
CREATE TABLE IF NOT EXISTS heartbeat(name TEXT PRIMARY KEY, pid INTEGER, time REAL);
"""

_JSON_COLS = ("target", "plans", "plan", "result", "undo")


@dataclass(frozen=True, slots=True)
class RespondPaths:
    """Where the respond sink keeps its files, from the service's state directory and its config."""

    state_dir: Path
    db: Path
    audit: Path
    kill_switch: Path
    external_head: Path | None = None

    @classmethod
    def from_sink_config(cls, state_dir: Path, cfg: Any | None) -> RespondPaths:
        audit = getattr(getattr(cfg, "audit", None), "path", None)
        kill = getattr(cfg, "kill_switch_path", None)
        ext = getattr(getattr(cfg, "audit", None), "external_head_path", None)
        return cls(
            state_dir=state_dir,
            db=state_dir / "respond.db",
            audit=Path(audit) if audit else state_dir / "audit.jsonl",
            kill_switch=Path(kill) if kill else state_dir / "respond.kill",
            external_head=Path(ext) if ext else None,
        )

    @classmethod
    def from_config(cls, cfg: Any) -> RespondPaths:
        """The first ``type: respond`` sink of a whole :class:`~wgsiem.config.model.Config`."""
        sink = next((s for s in cfg.sinks.values() if getattr(s, "type", "") == "respond"), None)
        return cls.from_sink_config(Path(cfg.state_dir), sink)


def _row(cur: sqlite3.Cursor, raw: tuple[Any, ...]) -> dict[str, Any]:
    out = {}
    for (name, *_), v in zip(cur.description, raw, strict=True):
        out[name] = json.loads(v) if name in _JSON_COLS and isinstance(v, str) else v
    return out


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)
        self.path = path
        self.db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self.db.row_factory = _row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        for suffix in ("-wal", "-shm"):
            side = Path(str(path) + suffix)
            if side.exists():
                os.chmod(side, 0o600)

    def close(self) -> None:
        self.db.close()

    # ---- proposals ---------------------------------------------------------------------------------

    def insert_proposal(self, **cols: Any) -> bool:
        """Insert unless its dedup key exists; False for a duplicate."""
        now = time.time()
        cols.setdefault("created", now)
        cols.setdefault("updated", now)
        for k in _JSON_COLS:
            if k in cols:
                cols[k] = json.dumps(cols[k], sort_keys=True, default=str)
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        cur = self.db.execute(
            f"INSERT OR IGNORE INTO proposals({names}) VALUES ({marks})", tuple(cols.values())
        )
        return cur.rowcount == 1

    def proposal(self, pid: str) -> dict[str, Any] | None:
        row: dict[str, Any] | None = self.db.execute(
            "SELECT * FROM proposals WHERE id = ?", (pid,)
        ).fetchone()
        return row

    def proposal_by_dedup(self, key: str) -> dict[str, Any] | None:
        row: dict[str, Any] | None = self.db.execute(
            "SELECT * FROM proposals WHERE dedup_key = ?", (key,)
        ).fetchone()
        return row

    def proposals(self, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        if status:
            return self.db.execute(
                "SELECT * FROM proposals WHERE status = ? ORDER BY created DESC LIMIT ?", (status, limit)
            ).fetchall()
        return self.db.execute("SELECT * FROM proposals ORDER BY created DESC LIMIT ?", (limit,)).fetchall()

    def set_status(
        self, pid: str, status: str, *, expect: tuple[str, ...] | None = None, **cols: Any
    ) -> bool:
        """Compare-and-set the status (when ``expect`` is given); True if this call changed it."""
        sets = ["status = ?", "updated = ?"] + [f"{k} = ?" for k in cols]
        args: list[Any] = [status, time.time(), *cols.values()]
        sql = f"UPDATE proposals SET {', '.join(sets)} WHERE id = ?"
        args.append(pid)
        if expect:
            sql += f" AND status IN ({', '.join('?' for _ in expect)})"
            args.extend(expect)
        return self.db.execute(sql, args).rowcount == 1

    def executions_since(
        self, since: float, *, playbook: str | None = None, entity: str | None = None
    ) -> int:
        sql = "SELECT count(*) AS n FROM proposals WHERE started IS NOT NULL AND started >= ?"
        args: list[Any] = [since]
        if playbook is not None:
            sql += " AND playbook = ?"
            args.append(playbook)
        if entity is not None:
            sql += " AND entity = ?"
            args.append(entity)
        return int(self.db.execute(sql, args).fetchone()["n"])

    # ---- decisions ---------------------------------------------------------------------------------

    def add_decision(self, pid: str, decision: str, actor: str, reason: str | None) -> None:
        self.db.execute(
            "INSERT INTO decisions(proposal_id, decision, actor, reason, time) VALUES (?, ?, ?, ?, ?)",
            (pid, decision, actor, reason, time.time()),
        )

    def decisions(self, pid: str) -> list[dict[str, Any]]:
        return self.db.execute("SELECT * FROM decisions WHERE proposal_id = ? ORDER BY id", (pid,)).fetchall()

    # ---- action runs (the journal) -----------------------------------------------------------------

    def action_row(self, aid: str) -> dict[str, Any] | None:
        row: dict[str, Any] | None = self.db.execute("SELECT * FROM actions WHERE id = ?", (aid,)).fetchone()
        return row

    def actions_of(self, pid: str) -> list[dict[str, Any]]:
        return self.db.execute("SELECT * FROM actions WHERE proposal_id = ? ORDER BY step", (pid,)).fetchall()

    def journal_start(
        self, aid: str, pid: str, step: int, action: str, plan: dict[str, Any], reversible: bool
    ) -> None:
        self.db.execute(
            "INSERT INTO actions(id, proposal_id, step, action, status, attempts, started, plan, reversible)"
            " VALUES (?, ?, ?, ?, 'started', 1, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET status = 'started', attempts = attempts + 1,"
            " started = excluded.started",
            (
                aid,
                pid,
                step,
                action,
                time.time(),
                json.dumps(plan, sort_keys=True, default=str),
                int(reversible),
            ),
        )

    def journal_end(
        self,
        aid: str,
        status: str,
        result: dict[str, Any] | None,
        undo: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        self.db.execute(
            "UPDATE actions SET status = ?, finished = ?, result = ?, undo = ?, error = ? WHERE id = ?",
            (
                status,
                time.time(),
                json.dumps(result, sort_keys=True, default=str) if result is not None else None,
                json.dumps(undo, sort_keys=True, default=str) if undo is not None else None,
                error,
                aid,
            ),
        )

    def set_action_status(self, aid: str, status: str, *, expect: tuple[str, ...]) -> bool:
        sql = f"UPDATE actions SET status = ? WHERE id = ? AND status IN ({', '.join('?' for _ in expect)})"
        return self.db.execute(sql, (status, aid, *expect)).rowcount == 1

    # ---- undo requests (the CLI asks, the engine does) ---------------------------------------------

    def request_undo(self, aid: str, actor: str, reason: str | None) -> int:
        cur = self.db.execute(
            "INSERT INTO undo_requests(action_id, actor, reason, time, status) VALUES (?, ?, ?, ?, 'queued')",
            (aid, actor, reason, time.time()),
        )
        return int(cur.lastrowid or 0)

    def undo_requests(self, status: str = "queued") -> list[dict[str, Any]]:
        return self.db.execute(
            "SELECT * FROM undo_requests WHERE status = ? ORDER BY id", (status,)
        ).fetchall()

    def undo_request(self, rid: int) -> dict[str, Any] | None:
        row: dict[str, Any] | None = self.db.execute(
            "SELECT * FROM undo_requests WHERE id = ?", (rid,)
        ).fetchone()
        return row

    def finish_undo_request(self, rid: int, status: str, outcome: str) -> bool:
        return (
            self.db.execute(
                "UPDATE undo_requests SET status = ?, outcome = ?"
                " WHERE id = ? AND status IN ('queued', 'running')",
                (status, outcome, rid),
            ).rowcount
            == 1
        )

    def claim_undo_request(self, rid: int) -> bool:
        return (
            self.db.execute(
                "UPDATE undo_requests SET status = 'running' WHERE id = ? AND status = 'queued'", (rid,)
            ).rowcount
            == 1
        )

    # ---- liveness (the CLI runs an undo itself when no engine is running) --------------------------

    def beat(self, name: str = "engine") -> None:
        self.db.execute(
            "INSERT INTO heartbeat(name, pid, time) VALUES (?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET pid = excluded.pid, time = excluded.time",
            (name, os.getpid(), time.time()),
        )

    def last_beat(self, name: str = "engine") -> float | None:
        row = self.db.execute("SELECT time FROM heartbeat WHERE name = ?", (name,)).fetchone()
        return float(row["time"]) if row else None

    def clear_beat(self, name: str = "engine") -> None:
        self.db.execute("DELETE FROM heartbeat WHERE name = ?", (name,))
