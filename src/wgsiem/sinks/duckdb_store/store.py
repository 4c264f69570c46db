"""The embedded store: a synchronous DuckDB database of events, sessions and peers.

Synchronous on purpose: DuckDB work is C++ that releases the GIL, so the async sink runs each call in a
worker thread (``asyncio.to_thread``) and the CLI calls it directly.

What callers must know:

* **One process.** DuckDB lets one process open a database file for writing, and while it does no
  other process can open it, not even read-only (the OS lock is exclusive). Inside the writing process
  :meth:`Store.reader` gives a handle another thread may query while ingest goes on. A separate process
  (the CLI while the daemon runs) must ask the daemon, or read an :meth:`Store.export_parquet` snapshot;
  :func:`open_readonly` says so in its error.
* **Derived tables lag by design.** ``events`` is written by every :meth:`Store.ingest`; ``sessions``
  and ``peers`` are folded in by :meth:`Store.derive` — automatically once ``derive_every_events``
  events are pending, before every query on the writing handle, and when the sink flushes (at most
  every ``fold_interval_secs``, 5 s). ``schema``'s docstring says why.
* **Peers and sessions hold the latest state by ``@timestamp``** (arrival order breaks ties), so a
  replayed old file does not overwrite newer state. Sessions sum ``transfer`` deltas while open and
  take ``session-ended``'s totals when it comes.
* Each batch goes to DuckDB as an Apache Arrow table of one string column (the serialized documents),
  which DuckDB scans zero-copy; nothing touches the file system but the database and its WAL.
* Timestamps come back as timezone-aware UTC ``datetime`` objects; ``query_events`` rows carry the
  public columns (the columns sessions/peers are derived from stay internal).

Where ingest time goes (``bench/bench_pipeline.py``, pinned to one core, per event, 8,192-event batches,
load 4-7 on the shared VM, so about twice a quiet machine's figures): INSERT ~11 µs (JSON extraction of
26 fields ~3, the primary key ~1.5, the Arrow scan and row storage), COMMIT ~8 (compressing and writing
the row groups, see :data:`ROW_GROUP_ROWS`), folding sessions ~3.5 and peers ~1.5, Python (slicing the
lines, building the Arrow column, the loop) ~4. ``Store.ingest`` went from ~15,600 to ~32,000 events/s
of CPU in this session's changes: one DuckDB thread (:data:`THREADS`), whole row groups written at
commit instead of through the WAL (:data:`ROW_GROUP_ROWS`), a numeric "latest" key in the folds
(``schema._ORDER``) and no ``abc.Mapping`` checks per event.
Tried and not kept: fields extracted in Python or by ``pyarrow.json`` (slower than DuckDB's extraction),
``json_transform`` into a STRUCT (slower than ``json_extract_string`` with a path list), the Arrow column
built from one joined buffer (the newline must then be trimmed in SQL, and ``rtrim`` costs more than
slicing in Python), dropping the primary key (saves ~1.5 µs but dedup then needs a scan that grows with
the table), documents zstd-compressed in Python (costs about what it saves), ``uncompressed`` or FSST
instead of zstd for ``doc`` (writing 1.6 KB/event costs as much as compressing it; FSST more),
glibc ``mallopt`` against DuckDB's page faults (more system time, not less).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from wgsiem.errors import Location, StoreError

from . import schema

__all__ = [
    "CHECKPOINT_THRESHOLD",
    "DERIVE_EVERY_EVENTS",
    "INGEST_BATCH_EVENTS",
    "MAX_DOC_BYTES",
    "ROW_GROUP_ROWS",
    "THREADS",
    "IngestResult",
    "RetentionResult",
    "Store",
    "open_readonly",
]

MAX_DOC_BYTES = 16 * 1024 * 1024
"""Serialized documents larger than this are rejected: DuckDB's reader has to bound a line."""

CHECKPOINT_THRESHOLD = "256MB"
"""WAL size that triggers a checkpoint. DuckDB's default (16MB) checkpoints every ~10,000 events here,
and a checkpoint (compression, index write-out) costs more than the ingest it follows: measured, the
default halves ingest throughput. The price is a longer WAL replay after a crash (seconds).
:meth:`Store.checkpoint` runs after each retention pass, and closing checkpoints too."""

ROW_GROUP_ROWS = 2048
"""Rows per DuckDB row group of the store (DuckDB's default is 122,880). An insert that fills whole row
groups is written to the database file compressed at commit ("optimistic write") instead of into the
WAL uncompressed and again at the next checkpoint: with 1.3 KB documents that halves the commit and
makes the checkpoint nearly free. Measured (``bench/bench_pipeline.py``): ~29 → ~21 µs/event.
The price: ~43% more file per event (~391 instead of ~273 bytes: smaller compression units; 8,192-row
groups would cost ~18%, but need 16,384-event batches, above the pipeline's default queue of 10,000)."""

INGEST_BATCH_EVENTS = 4 * ROW_GROUP_ROWS
"""The batch the sink asks the pipeline for: a multiple of :data:`ROW_GROUP_ROWS`, so a busy stream's
batches fill whole row groups (a quiet one's small batches go through the WAL, where cost is no matter)."""

THREADS = 1
"""DuckDB worker threads. One: ingest is many small statements whose parallel parts (JSON extraction of
8,192 rows) gain nothing from a second thread but coordination, and the pipeline's Python work runs on
the other core meanwhile (DuckDB releases the GIL). Measured pinned to one core: 2 threads ~41 µs/event,
1 thread ~29 (wall 77 → 32 µs: the threads no longer wait on each other)."""

DERIVE_EVERY_EVENTS = 200_000
"""Pending events that make :meth:`Store.ingest` fold by itself (the sink folds every 5 s anyway: at
50,000 events/s that is 250,000). Each fold rewrites the row of every peer and session it touches —
DuckDB's costliest operation — so fewer, larger folds cost less per event: measured, folding every
20,000 events ~3.7 µs/event, every 100,000 ~1.9."""

_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "threads": THREADS,
    "checkpoint_threshold": CHECKPOINT_THRESHOLD,
}
_CATALOG = "wgsiem_store"  # the name a file store is ATTACHed under
_DUMPS_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
_BATCH_VIEW = "wgs_batch"  # the name INSERT_EVENTS reads the Arrow batch under
_SECS_PER_DAY = 86_400

# Columns the query methods return for events (the derivation columns stay internal).
_EVENT_COLUMNS = "seq, event_id, ts, action, dataset, kind, interface, peer_key, source_ip, doc"


@dataclass(slots=True)
class IngestResult:
    """What one :meth:`Store.ingest` call did; ``received == inserted + duplicates + sum(rejected)``."""

    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    defaulted_ts: int = 0
    """Inserted documents whose ``@timestamp`` was missing or unparsable; stored at ingest time."""


@dataclass(frozen=True, slots=True)
class RetentionResult:
    cutoff: datetime
    events: int
    sessions: int
    peers: int


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


class Store:
    """One DuckDB database. Not thread-safe: one thread at a time per Store (see :meth:`reader`)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: str,
        *,
        retention_days: int = 30,
        read_only: bool = False,
        derive_every_events: int = DERIVE_EVERY_EVENTS,
        catalog: str | None = None,
    ) -> None:
        """Wrap an open connection; use :meth:`open`, :meth:`memory` or :func:`open_readonly`."""
        self._con = con
        self._catalog = catalog  # the ATTACHed database a new cursor must USE (None: the default one)
        self.path = path
        self.retention_days = retention_days
        self.read_only = read_only
        self.derive_every_events = derive_every_events
        self._high_seq = 0  # highest events.seq this handle has stored or seen
        self._derived_seq = 0  # events up to this seq are folded into sessions/peers
        self._pending = 0
        self._open_writer = False  # close() folds pending events in only on the writing handle
        con.execute("SET TimeZone = 'UTC'")

    # ---- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        retention_days: int = 30,
        derive_every_events: int = DERIVE_EVERY_EVENTS,
    ) -> Store:
        """Open (creating if missing, mode 0640) the database at ``path`` for reading and writing."""
        p = Path(path)
        if not p.parent.is_dir():
            raise StoreError(
                "store directory does not exist",
                location=Location(str(p)),
                fix=f"create {p.parent} (owned by the wgsiem user) or change the store path",
            )
        created = not p.exists()
        con = duckdb.connect(":memory:", config=_CONFIG)
        try:
            # ATTACH, not connect(path): only ATTACH takes a row group size (see ROW_GROUP_ROWS)
            con.execute(f"ATTACH {schema.sql_str(str(p))} AS {_CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_ROWS})")
            con.execute(f"USE {_CATALOG}")
        except duckdb.Error as exc:
            con.close()
            locked = "lock" in str(exc).lower()
            raise StoreError(
                f"cannot open store: {exc}",
                location=Location(str(p)),
                fix="another process (a running wgsiem?) holds it; stop that one or use another path"
                if locked
                else "check that the file is a wgsiem store and the wgsiem user may read and write it",
            ) from exc
        if created:
            os.chmod(p, 0o640)  # peer keys and addresses are not for every local user
        store = cls(
            con,
            str(p),
            retention_days=retention_days,
            derive_every_events=derive_every_events,
            catalog=_CATALOG,
        )
        store._setup_writer()
        return store

    @classmethod
    def memory(cls, *, retention_days: int = 30, derive_every_events: int = DERIVE_EVERY_EVENTS) -> Store:
        """An in-memory store (tests, benchmarks)."""
        con = duckdb.connect(":memory:", config=_CONFIG)
        store = cls(con, ":memory:", retention_days=retention_days, derive_every_events=derive_every_events)
        store._setup_writer()
        return store

    def _setup_writer(self) -> None:
        con = self._con
        try:
            for stmt in schema.DDL:
                con.execute(stmt)
            meta = dict(con.execute("SELECT key, value FROM store_meta").fetchall())
        except duckdb.Error as exc:
            self._con.close()
            raise StoreError(
                f"cannot create the store's tables: {exc}", location=Location(self.path)
            ) from exc
        version = int(meta.get("schema_version", schema.SCHEMA_VERSION))
        if version > schema.SCHEMA_VERSION:
            self._con.close()
            raise StoreError(
                f"store schema version {version} is newer than this wgsiem understands "
                f"({schema.SCHEMA_VERSION})",
                location=Location(self.path),
                fix="upgrade wgsiem, or point it at a new store path",
            )
        if "schema_version" not in meta:
            con.execute(
                "INSERT INTO store_meta VALUES ('schema_version', ?), ('derived_seq', '0')",
                [str(schema.SCHEMA_VERSION)],
            )
        self._derived_seq = int(meta.get("derived_seq", 0))
        row = con.execute(
            "SELECT coalesce(max(seq), 0), count(*) FILTER (WHERE seq > ?) FROM events", [self._derived_seq]
        ).fetchone()
        if row is not None:
            self._high_seq, self._pending = int(row[0]), int(row[1])
        for macro in schema.MACROS:
            con.execute(macro)

        self._open_writer = True
        self._insert_sql = schema.INSERT_EVENTS.format(or_ignore="", batch=_BATCH_VIEW)
        self._insert_ignore_sql = schema.INSERT_EVENTS.format(or_ignore="OR IGNORE", batch=_BATCH_VIEW)
        # A crash between ingest and derive left events to fold in: do it now.
        self.derive()

    def reader(self) -> Store:
        """A read-only handle on the same database for another thread of this process (the web API).

        It sees ``sessions``/``peers`` as of the writer's last :meth:`derive` (about a second old).
        """
        cur = self._con.cursor()
        if self._catalog is not None:
            cur.execute(f"USE {self._catalog}")
        return Store(
            cur, self.path, retention_days=self.retention_days, read_only=True, catalog=self._catalog
        )

    def close(self) -> None:
        """Fold pending derived state in, then close. Idempotent."""
        try:
            if self._open_writer:
                self._open_writer = False
                self.derive()
        finally:
            self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health_check(self) -> None:
        """Raise :class:`StoreError` unless the database answers a query."""
        try:
            self._con.execute("SELECT count(*) FROM store_meta").fetchone()
        except duckdb.Error as exc:
            raise StoreError(f"store unhealthy: {exc}", location=Location(self.path)) from exc

    # ---- ingest ------------------------------------------------------------------------------------

    def ingest(self, docs: Iterable[Mapping[str, Any]]) -> IngestResult:
        """Store a batch of ECS documents in one transaction; the new ones are queued for :meth:`derive`.

        Documents without a string ``event.id`` (nothing to de-duplicate on), that cannot be serialized,
        or larger than :data:`MAX_DOC_BYTES` are rejected and counted, never raised. On a database error
        nothing of the batch is kept and :class:`StoreError` is raised, so a retry is safe.
        """
        return self.ingest_encoded((doc, None) for doc in docs)

    def ingest_encoded(self, items: Iterable[tuple[Mapping[str, Any], bytes | None]]) -> IngestResult:
        """:meth:`ingest` for documents that may come already serialized.

        Each line must be the document as one line of JSON ending in ``\\n`` (what the NDJSON encoder
        memoizes on an envelope), or None to serialize here: a document is then encoded once per
        process, not once per sink.
        """
        self._writable()
        result = IngestResult()
        lines: list[bytes] = []
        seen: set[str] = set()
        dumps = orjson.dumps
        received = 0
        for doc, line in items:
            received += 1
            try:  # EAFP: abc.Mapping checks cost ~1 µs/event at 50,000 events/s
                eid = doc["event"]["id"]
            except (KeyError, TypeError, IndexError):
                eid = None
            if not isinstance(eid, str) or not eid:
                result.rejected["missing_event_id"] += 1
                continue
            if eid in seen:
                result.duplicates += 1
                continue
            if line is None:
                try:
                    line = dumps(doc, option=_DUMPS_OPTS)
                except (orjson.JSONEncodeError, TypeError):
                    result.rejected["unserializable"] += 1
                    continue
            if len(line) > MAX_DOC_BYTES:
                result.rejected["too_large"] += 1
                continue
            seen.add(eid)
            lines.append(line[:-1] if line.endswith(b"\n") else line)
        result.received = received
        if not lines:
            return result
        batch = pa.table({"doc": pa.array(lines, pa.string())})  # orjson's output is valid UTF-8
        try:
            inserted, defaulted = self._load_batch(batch, self._insert_sql)
        except duckdb.ConstraintException:
            # Some event was stored before (a replay, a retried batch): redo the batch the exact way.
            inserted, defaulted = self._load_batch(batch, self._insert_ignore_sql)
        result.inserted = inserted
        result.duplicates += len(lines) - inserted
        result.defaulted_ts = defaulted
        self._pending += inserted
        if self._pending >= self.derive_every_events:
            self.derive()
        return result

    def _load_batch(self, batch: pa.Table, insert_sql: str) -> tuple[int, int]:
        con = self._con
        try:
            con.register(_BATCH_VIEW, batch)
            con.execute("BEGIN TRANSACTION")
            con.execute(insert_sql)
            row = con.execute(
                "SELECT max(seq), count(*), count(*) FILTER (WHERE ts_defaulted) FROM events WHERE seq > ?",
                [self._high_seq],
            ).fetchone()
            con.execute("COMMIT")
        except duckdb.ConstraintException:
            self._rollback()
            if insert_sql is self._insert_ignore_sql:  # cannot happen; never loop
                raise StoreError("ingest failed: constraint violated", location=Location(self.path)) from None
            raise
        except duckdb.Error as exc:
            self._rollback()
            raise StoreError(f"ingest failed: {exc}", location=Location(self.path)) from exc
        finally:
            with contextlib.suppress(duckdb.Error):
                con.unregister(_BATCH_VIEW)  # the view holds the batch's memory
        if row is None or row[0] is None:
            return 0, 0
        self._high_seq = int(row[0])
        return int(row[1]), int(row[2])

    def derive(self) -> None:
        """Fold the events stored since the last call into ``peers`` and ``sessions`` (one transaction)."""
        if self.read_only or self._pending == 0:
            return
        con = self._con
        bounds = {"lo": self._derived_seq, "hi": self._high_seq}
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute(schema.MERGE_PEERS.format(**bounds))
            con.execute(schema.MERGE_SESSIONS.format(**bounds))
            con.execute("UPDATE store_meta SET value = ? WHERE key = 'derived_seq'", [str(self._high_seq)])
            con.execute("COMMIT")
        except duckdb.Error as exc:
            self._rollback()
            raise StoreError(
                f"deriving sessions and peers failed: {exc}", location=Location(self.path)
            ) from exc
        self._derived_seq = self._high_seq
        self._pending = 0

    @property
    def pending(self) -> int:
        """Events stored but not yet folded into ``sessions``/``peers``."""
        return self._pending

    def _rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):  # nothing to roll back if BEGIN itself failed
            self._con.execute("ROLLBACK")

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError("store opened read-only", location=Location(self.path))

    # ---- queries -----------------------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        try:
            cur = self._con.execute(sql, list(params))
            cols = [d[0] for d in cur.description or ()]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {exc}", location=Location(self.path)) from exc

    def query_peers(self, interface: str | None = None) -> list[dict[str, Any]]:
        """Every known peer (removed ones too, with ``removed_at``), by interface then key."""
        self.derive()
        sql = "SELECT * FROM peers"
        params: list[object] = []
        if interface is not None:
            sql += " WHERE interface = ?"
            params.append(interface)
        return self._rows(sql + " ORDER BY interface, peer_key", params)

    def query_sessions(
        self,
        since_epoch: float,
        interface: str | None = None,
        peer: str | None = None,
        open_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Sessions active at any time since ``since_epoch`` (still open, or ended after it), by start."""
        self.derive()
        where = ['("end" IS NULL OR "end" >= ?)']
        params: list[object] = [_utc(since_epoch)]
        if interface is not None:
            where.append("interface = ?")
            params.append(interface)
        if peer is not None:
            where.append("peer_key = ?")
            params.append(peer)
        if open_only:
            where.append('"end" IS NULL')
        sql = f'SELECT * FROM sessions WHERE {" AND ".join(where)} ORDER BY "start", session_id'
        return self._rows(sql, params)

    def query_events(
        self,
        since_epoch: float | None = None,
        after_rowid: int | None = None,
        action: str | None = None,
        limit: int = 1000,
        *,
        tail: int | None = None,
        peer_key: str | None = None,
        source_ip: str | None = None,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` events in arrival order (``seq``), each document parsed back into ``doc``.

        ``after_rowid`` is a ``seq`` value: pass the last ``seq`` you saw to page or to follow.
        ``tail=n`` returns the *last* n matching events instead of the first ``limit`` (still oldest
        first), without reading the others. ``peer_key`` and ``source_ip`` given together match events
        about either (an incident's entity: the peer, and the address it came from).
        """
        where: list[str] = []
        params: list[object] = []
        if since_epoch is not None:
            where.append("ts >= ?")
            params.append(_utc(since_epoch))
        if after_rowid is not None:
            where.append("seq > ?")
            params.append(after_rowid)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        entity = [(c, v) for c, v in (("peer_key", peer_key), ("source_ip", source_ip)) if v is not None]
        if entity:
            where.append("(" + " OR ".join(f"{c} = ?" for c, _ in entity) + ")")
            params.extend(v for _, v in entity)
        sql = f"SELECT {_EVENT_COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if tail is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY seq DESC LIMIT ?) ORDER BY seq"
            params.append(tail)
        else:
            sql += " ORDER BY seq LIMIT ?"
            params.append(limit)
        rows = self._rows(sql, params)
        for row in rows:
            row["doc"] = orjson.loads(row["doc"])
        return rows

    def counts(self) -> dict[str, int]:
        """Row counts per table (for ``wgsiem status``)."""
        self.derive()
        out: dict[str, int] = {}
        for table in ("events", "sessions", "peers"):
            rows = self._rows(f"SELECT count(*) AS n FROM {table}")
            out[table] = int(rows[0]["n"])
        return out

    # ---- maintenance -------------------------------------------------------------------------------

    def enforce_retention(self, now: float) -> RetentionResult:
        """Delete events, closed sessions and removed peers older than ``retention_days`` before ``now``.

        Open sessions and present peers are kept whatever their age: they are the current state.
        Pending events are derived first, so no event leaves before it has shaped sessions and peers.
        """
        self._writable()
        self.derive()
        cutoff = _utc(now - self.retention_days * _SECS_PER_DAY)
        counts: list[int] = []
        try:
            self._con.execute("BEGIN TRANSACTION")
            for sql in (
                "DELETE FROM events WHERE ts < ?",
                'DELETE FROM sessions WHERE "end" IS NOT NULL AND "end" < ?',
                "DELETE FROM peers WHERE removed_at IS NOT NULL AND removed_at < ?",
            ):
                row = self._con.execute(sql, [cutoff]).fetchone()
                counts.append(int(row[0]) if row else 0)
            self._con.execute("COMMIT")
        except duckdb.Error as exc:
            self._rollback()
            raise StoreError(f"retention failed: {exc}", location=Location(self.path)) from exc
        return RetentionResult(cutoff, counts[0], counts[1], counts[2])

    def checkpoint(self) -> None:
        """Write the WAL into the database file (reclaims space after retention deletes)."""
        self._writable()
        try:
            self._con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            raise StoreError(f"checkpoint failed: {exc}", location=Location(self.path)) from exc

    def export_parquet(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write ``events.parquet``, ``sessions.parquet`` and ``peers.parquet`` into ``directory``."""
        self.derive()
        out_dir = Path(directory)
        out_dir.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        queries = {
            "events": f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY seq",
            "sessions": 'SELECT * FROM sessions ORDER BY "start", session_id',
            "peers": "SELECT * FROM peers ORDER BY interface, peer_key",
        }
        for table, query in queries.items():
            target = out_dir / f"{table}.parquet"
            try:
                self._con.execute(f"COPY ({query}) TO {schema.sql_str(str(target))} (FORMAT parquet)")
            except duckdb.Error as exc:
                raise StoreError(f"parquet export failed: {exc}", location=Location(str(target))) from exc
            written.append(target)
        return written


def open_readonly(path: str | os.PathLike[str]) -> Store:
    """Open an existing store for queries only (the CLI, while no daemon holds it)."""
    p = Path(path)
    if not p.exists():
        raise StoreError("store does not exist", location=Location(str(p)), fix="check the store path")
    try:
        con = duckdb.connect(str(p), read_only=True)
    except duckdb.Error as exc:  # IOException from another process' lock, ConnectionException from ours
        raise StoreError(
            f"cannot open store read-only: {exc}",
            location=Location(str(p)),
            fix="a running wgsiem holds the store for writing; query it through that process instead",
        ) from exc
    return Store(con, str(p), read_only=True)
