"""The alert lifecycle: open → acknowledged → closed, and suppressions, in ``<state_dir>/alerts.db``.

Alerts themselves are events and flow to every sink (the DuckDB store among them); what an analyst
does with them is state that changes after the fact, which an append-only event stream and the
single-writer DuckDB store (held by ``wgsiem run``) cannot take. So the lifecycle lives in its own
SQLite file in WAL mode, mode 0600: the running detect stage inserts new alerts and reads
suppressions, ``wgsiem alerts`` updates statuses and adds suppressions, both at the same time.

The running engine notices CLI changes through SQLite's ``PRAGMA data_version`` (it changes when
another connection commits), so re-reading suppressions costs one pragma when nothing changed.

A suppression mutes (rule, entity) — either may be ``*`` — until a time. The engine compares that
time with the alert's **event time**, so a replay of captures honours the same suppressions the live
run did; ``alerts suppress --for 24h`` sets it relative to now.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["STATUSES", "AlertRecord", "AlertStore", "Suppression"]

STATUSES = ("open", "acknowledged", "closed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    rule_name TEXT NOT NULL,
    title TEXT NOT NULL,
    severity INTEGER NOT NULL,
    entity_field TEXT NOT NULL,
    entity_value TEXT NOT NULL,
    event_time REAL NOT NULL,
    created REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    reason TEXT,
    actor TEXT,
    updated REAL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_status ON alerts(status, event_time);
CREATE INDEX IF NOT EXISTS alerts_rule ON alerts(rule_name, entity_value);
CREATE TABLE IF NOT EXISTS suppressions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL,
    entity TEXT NOT NULL,
    until REAL NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    alert_id TEXT NOT NULL,
    at REAL NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    actor TEXT
);
"""


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: str
    rule_id: str
    rule_name: str
    title: str
    severity: int
    entity_field: str
    entity_value: str
    event_time: float
    created: float
    status: str
    reason: str | None
    actor: str | None
    updated: float | None
    document: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """The record without the alert document (what ``alerts list --json`` prints)."""
        return {k: getattr(self, k) for k in self.__slots__ if k != "document"}


@dataclass(frozen=True, slots=True)
class Suppression:
    id: int
    rule: str
    entity: str
    until: float
    reason: str
    actor: str
    created: float

    def covers(self, rule_id: str, rule_name: str, entity_value: str, at: float) -> bool:
        return (
            at < self.until and self.rule in ("*", rule_id, rule_name) and self.entity in ("*", entity_value)
        )


_RECORD_FIELDS = tuple(f for f in AlertRecord.__dataclass_fields__ if f != "document")


class AlertStore:
    """One connection to ``alerts.db``; cheap enough to open per CLI call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            if side.exists():
                os.chmod(side, 0o600)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    # -- written by the engine -------------------------------------------------------------------

    def add_alerts(self, docs: list[dict[str, Any]]) -> int:
        """Insert new alerts (an id already present — a replay — is left as it is)."""
        rows = []
        for doc in docs:
            ev, rule, wg = doc["event"], doc["rule"], doc["wireguard"]["alert"]
            rows.append(
                (
                    ev["id"],
                    rule["id"],
                    wg["rule_name"],
                    rule["name"],
                    int(ev["severity"]),
                    wg["entity"]["field"],
                    wg["entity"]["value"],
                    _epoch(doc["@timestamp"]),
                    _epoch(ev["created"]),
                    json.dumps(doc, separators=(",", ":"), sort_keys=True),
                )
            )
        with self._tx() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO alerts (id, rule_id, rule_name, title, severity, entity_field, "
                "entity_value, event_time, created, document) VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            return db.total_changes - before

    # -- read and updated by the CLI ------------------------------------------------------------

    def list(
        self,
        *,
        status: str | None = None,
        rule: str | None = None,
        entity: str | None = None,
        since: float | None = None,
        limit: int = 1000,
    ) -> builtins.list[AlertRecord]:
        where: list[str] = []
        args: list[Any] = []
        if status:
            where.append("status = ?")
            args.append(status)
        if rule:
            where.append("(rule_name = ? OR rule_id = ?)")
            args += [rule, rule]
        if entity:
            where.append("entity_value = ?")
            args.append(entity)
        if since is not None:
            where.append("event_time >= ?")
            args.append(since)
        sql = "SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY event_time DESC, id LIMIT ?"
        return [_record(r) for r in self._db.execute(sql, [*args, limit])]

    def get(self, alert_id: str) -> AlertRecord | None:
        rows = list(
            self._db.execute("SELECT * FROM alerts WHERE id = ? OR id LIKE ?", (alert_id, alert_id + "%"))
        )
        return _record(rows[0]) if len(rows) == 1 else None

    def history(self, alert_id: str) -> builtins.list[dict[str, Any]]:
        cur = self._db.execute(
            "SELECT at, status, reason, actor FROM history WHERE alert_id = ? ORDER BY at", (alert_id,)
        )
        return [{"at": r[0], "status": r[1], "reason": r[2], "actor": r[3]} for r in cur]

    def set_status(
        self, alert_id: str, status: str, *, reason: str, actor: str, at: float | None = None
    ) -> bool:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        when = time.time() if at is None else at
        with self._tx() as db:
            cur = db.execute(
                "UPDATE alerts SET status = ?, reason = ?, actor = ?, updated = ? WHERE id = ?",
                (status, reason, actor, when, alert_id),
            )
            if cur.rowcount:
                db.execute(
                    "INSERT INTO history (alert_id, at, status, reason, actor) VALUES (?,?,?,?,?)",
                    (alert_id, when, status, reason, actor),
                )
            return bool(cur.rowcount)

    def suppress(self, *, rule: str, entity: str, until: float, reason: str, actor: str) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO suppressions (rule, entity, until, reason, actor, created) VALUES (?,?,?,?,?,?)",
                (rule, entity, until, reason, actor, time.time()),
            )
            return int(cur.lastrowid or 0)

    def suppressions(self) -> builtins.list[Suppression]:
        cur = self._db.execute("SELECT id, rule, entity, until, reason, actor, created FROM suppressions")
        return [Suppression(*row) for row in cur]


def _record(row: tuple[Any, ...]) -> AlertRecord:
    fields = dict(zip(_RECORD_FIELDS, row[:-1], strict=True))
    return AlertRecord(**fields, document=json.loads(row[-1]))


def _epoch(ts: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
