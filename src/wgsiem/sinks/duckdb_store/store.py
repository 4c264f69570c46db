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
* **Documents live in segment files** beside the database (``<path>.docs/``, see ``segments``):
  ``events`` is an index whose row says where its document is, and every read (``query_events``,
  :meth:`Store.document_bytes`, the Parquet export) gives the document back byte-identical. A batch's
  documents are compressed, written and ``fdatasync``-ed before its rows commit, so no committed row
  points to bytes a crash can lose; a torn tail is cut at the next open. Retention deletes a segment
  once no row points into it. A store of the previous layout (documents in ``events.doc``) is upgraded
  when opened for writing (``migrate``); a read-only open of one says to do that.
* Each batch goes to DuckDB as an Apache Arrow table whose ``doc`` column is a zero-copy view of the
  joined NDJSON lines (the same bytes the frames are compressed from); DuckDB extracts the columns.
* Timestamps come back as timezone-aware UTC ``datetime`` objects; ``query_events`` rows carry the
  public columns (the columns sessions/peers are derived from stay internal).

Where ingest time goes (pre-encoded lines, one core, 8,192-event batches, load 4-7 on the shared VM,
µs/event of CPU): INSERT ~12 (JSON extraction of 26 fields ~4, the primary key ~1, the rest is DuckDB
storing ~30 index and fold columns), frames (zstd) ~1.3-2, folds ~1.7, Python ~2 (the loop, joining
the lines, the Arrow columns); the segment write and ``fdatasync`` ~0.1 of CPU. Moving the documents
out of DuckDB took ``Store.ingest`` from ~25.8 to ~19.9 µs/event (the commit no longer compresses
1.35 KB per event), keeping ``allowed_ips`` as JSON text until the fold another ~3-5.
Kept from before: one DuckDB thread (:data:`THREADS`), whole row groups written at commit instead of
through the WAL (:data:`ROW_GROUP_ROWS`), a numeric "latest" key in the folds (``schema._ORDER``), no
``abc.Mapping`` checks per event. Tried and not kept (see docs/performance.md): fields extracted in
Python or by ``pyarrow.json``, ``json_transform`` into a STRUCT, a staging temp table (extraction once,
then the index and the fold columns copied into two tables: ~1-2 µs more than one INSERT), larger row
groups (122,880: every batch through the WAL), plain NDJSON segments (10× the bytes; a page-cache
write here costs 0.4-4.8 µs per document, more than compressing it).
"""

from __future__ import annotations

import array
import contextlib
import itertools
import logging
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

from . import migrate, schema
from .segments import DocReader, MemorySegments, SegmentDir, Segments, encode_frames, segment_dir_for

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

ROW_GROUP_ROWS = 8192
"""Rows per DuckDB row group of the store (DuckDB's default is 122,880). An insert that fills whole row
groups is written to the database file compressed at commit ("optimistic write") instead of into the
WAL uncompressed and again at the next checkpoint, which makes the checkpoint nearly free. With the
documents in segments an index row is small: 8,192-row groups (one per busy batch) cost the same
per event as 2,048 (~12-15 µs/event for the INSERT at load 4-5, within noise) and make the file
smaller (~172 instead of ~260 bytes per event); 122,880 sends every batch through the WAL (checkpoint
~2 µs/event more)."""

INGEST_BATCH_EVENTS = ROW_GROUP_ROWS
"""The batch the sink asks the pipeline for: a multiple of :data:`ROW_GROUP_ROWS`, so a busy stream's
batches fill whole row groups (a quiet one's small batches go through the WAL, where cost is no matter);
below the pipeline's default queue of 10,000 events."""

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
_IDS_VIEW = "wgs_batch_ids"  # a batch's event ids, when some may be stored already
_SECS_PER_DAY = 86_400

# Columns the query methods return for events (the derivation columns stay internal); ``doc`` is
# read from the segments at (doc_seg, doc_off, doc_len).
_INDEX_COLUMNS = "seq, event_id, ts, action, dataset, kind, interface, peer_key, source_ip"
_DOC_COLUMNS = "doc_seg, doc_frame, doc_frame_len, doc_off, doc_len"
_EXPORT_ROWS = 65_536  # events per Arrow batch of a Parquet export

log = logging.getLogger(__name__)


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
    segments: int = 0
    """Document segment files deleted: every event in them was."""


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
        segments: Segments | None = None,
    ) -> None:
        """Wrap an open connection; use :meth:`open`, :meth:`memory` or :func:`open_readonly`."""
        self._con = con
        self.segments: Segments = segments if segments is not None else MemorySegments()
        self._owns_segments = True  # False on a reader(): the writing handle closes them
        self._docs = DocReader(self.segments)
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
        try:
            segments = SegmentDir(segment_dir_for(p))
        except StoreError:
            con.close()
            raise
        store = cls(
            con,
            str(p),
            retention_days=retention_days,
            derive_every_events=derive_every_events,
            catalog=_CATALOG,
            segments=segments,
        )
        store._setup_writer()
        return store

    @classmethod
    def memory(cls, *, retention_days: int = 30, derive_every_events: int = DERIVE_EVERY_EVENTS) -> Store:
        """An in-memory store (tests, benchmarks)."""
        con = duckdb.connect(":memory:", config=_CONFIG)
        store = cls(
            con,
            ":memory:",
            retention_days=retention_days,
            derive_every_events=derive_every_events,
            segments=MemorySegments(),
        )
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
        elif version < schema.SCHEMA_VERSION:
            try:
                moved = migrate.documents_to_segments(con, self.segments)
            except (duckdb.Error, OSError) as exc:
                self._rollback()
                self.segments.close()
                self._con.close()
                raise StoreError(
                    f"cannot upgrade the store from schema version {version}: {exc}",
                    location=Location(self.path),
                    fix="restore the store file from before this attempt and retry, or use a new store path",
                ) from exc
            log.info("store upgraded from schema version %d: %d documents moved to segments", version, moved)
        self._derived_seq = int(meta.get("derived_seq", 0))
        # A crash between writing a batch's documents and committing its rows left bytes no row points
        # to at the end of the newest segment: cut them (see segments).
        try:
            newest = con.execute("SELECT max(doc_seg) FROM events").fetchone()
            seg = None if newest is None or newest[0] is None else int(newest[0])
            end = 0
            if seg is not None:
                row = con.execute(
                    "SELECT max(doc_frame + doc_frame_len) FROM events WHERE doc_seg = ?", [seg]
                ).fetchone()
                end = int(row[0]) if row and row[0] is not None else 0
            self.segments.recover(seg, end)
        except (duckdb.Error, OSError) as exc:
            self.segments.close()
            self._con.close()
            raise StoreError(
                f"cannot check the store's document segments: {exc}",
                location=Location(
                    str(exc.filename) if isinstance(exc, OSError) and exc.filename else self.path
                ),
                fix="give the wgsiem user read and write access to the store's .docs directory",
            ) from exc
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
        reader = Store(
            cur,
            self.path,
            retention_days=self.retention_days,
            read_only=True,
            catalog=self._catalog,
            segments=self.segments.reader(),
        )
        reader._owns_segments = False
        return reader

    def close(self) -> None:
        """Fold pending derived state in, then close. Idempotent."""
        try:
            if self._open_writer:
                self._open_writer = False
                self.derive()
        finally:
            try:
                if self._owns_segments:
                    self.segments.close()
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
        ids: list[str] = []
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
            elif not line.endswith(b"\n"):
                line += b"\n"
            if len(line) > MAX_DOC_BYTES:
                result.rejected["too_large"] += 1
                continue
            seen.add(eid)
            ids.append(eid)
            lines.append(line)
        result.received = received
        if not lines:
            return result
        try:
            inserted, defaulted = self._store_lines(lines, self._insert_sql)
        except duckdb.ConstraintException:
            # Some event was stored before (a replay, a retried batch): store only the others, so the
            # segments hold no document twice.
            stored = self._stored_ids(ids)
            lines = [line for eid, line in zip(ids, lines, strict=True) if eid not in stored]
            inserted, defaulted = self._store_lines(lines, self._insert_ignore_sql) if lines else (0, 0)
        result.inserted = inserted
        result.duplicates += len(ids) - inserted
        result.defaulted_ts = defaulted
        self._pending += inserted
        if self._pending >= self.derive_every_events:
            self.derive()
        return result

    def _stored_ids(self, ids: list[str]) -> set[str]:
        con = self._con
        try:
            con.register(_IDS_VIEW, pa.table({"event_id": pa.array(ids, pa.string())}))
            rows = con.execute(
                f"SELECT event_id FROM events WHERE event_id IN (SELECT event_id FROM {_IDS_VIEW})"
            ).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"ingest failed: {exc}", location=Location(self.path)) from exc
        finally:
            with contextlib.suppress(duckdb.Error):
                con.unregister(_IDS_VIEW)
        return {r[0] for r in rows}

    def _store_lines(self, lines: list[bytes], insert_sql: str) -> tuple[int, int]:
        """Append the lines to a segment, make them durable, then commit their index rows.

        The batch reaches DuckDB zero-copy: the joined bytes written to the segment are the data of an
        Arrow string column whose offsets are the lines' starts (each value keeps its newline).
        """
        n = len(lines)
        data = b"".join(lines)
        offsets = array.array("q", itertools.accumulate(map(len, lines), initial=0))
        offs = pa.py_buffer(offsets)
        frames = encode_frames(data, offsets)
        batch = pa.table(
            {
                "doc": pa.LargeStringArray.from_buffers(n, offs, pa.py_buffer(data)),
                "off": pa.Array.from_buffers(pa.int64(), n, [None, offs]),
                "f_off": frames.frame_off,
                "f_len": frames.frame_len,
                "f_start": frames.frame_start,
            }
        )
        seg, base = self.segments.append(frames.data)
        try:
            self.segments.sync()  # no committed row may point to bytes a power loss can take
            return self._load_batch(batch, insert_sql, seg, base)
        except BaseException:
            self.segments.rewind(seg, base)
            raise

    def _load_batch(self, batch: pa.Table, insert_sql: str, seg: int, base: int) -> tuple[int, int]:
        con = self._con
        try:
            con.register(_BATCH_VIEW, batch)
            con.execute("BEGIN TRANSACTION")
            con.execute(insert_sql, {"seg": seg, "base": base})
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
        sql = f"SELECT {_INDEX_COLUMNS}, {_DOC_COLUMNS} FROM events"
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
            row["doc"] = orjson.loads(self._doc_of(row))
        return rows

    def _doc_of(self, row: dict[str, Any]) -> bytes:
        return self._docs.read(
            row.pop("doc_seg"),
            row.pop("doc_frame"),
            row.pop("doc_frame_len"),
            row.pop("doc_off"),
            row.pop("doc_len"),
        )

    def document_bytes(self, seq: int) -> bytes | None:
        """The stored document of event ``seq`` exactly as it was written (no newline), or None."""
        rows = self._rows(f"SELECT {_DOC_COLUMNS} FROM events WHERE seq = ?", [seq])
        if not rows:
            return None
        return self._doc_of(rows[0])

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
            # after the commit: a crash in between leaves a segment no row points to, removed next time
            referenced = {
                int(r[0]) for r in self._con.execute("SELECT DISTINCT doc_seg FROM events").fetchall()
            }
        except duckdb.Error as exc:
            self._rollback()
            raise StoreError(f"retention failed: {exc}", location=Location(self.path)) from exc
        try:
            segments = len(self.segments.remove_except(referenced))
        except OSError as exc:
            raise StoreError(
                f"retention could not delete a document segment: {exc}", location=Location(self.path)
            ) from exc
        return RetentionResult(cutoff, counts[0], counts[1], counts[2], segments)

    def checkpoint(self) -> None:
        """Write the WAL into the database file (reclaims space after retention deletes)."""
        self._writable()
        try:
            self._con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            raise StoreError(f"checkpoint failed: {exc}", location=Location(self.path)) from exc

    def export_parquet(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write ``events.parquet``, ``sessions.parquet`` and ``peers.parquet`` into ``directory``.

        ``events.parquet`` has the public columns and ``doc``, each document as stored (read from the
        segments batch by batch, so an export never holds the whole history in memory).
        """
        self.derive()
        out_dir = Path(directory)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / "events.parquet"
        try:
            self._export_events(target)
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            raise StoreError(f"parquet export failed: {exc}", location=Location(str(target))) from exc
        written = [target]
        queries = {
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

    def _export_events(self, target: Path) -> None:
        import pyarrow.parquet as pq

        cur = self._con.cursor()
        if self._catalog is not None:
            cur.execute(f"USE {self._catalog}")
        try:
            rel = cur.sql(f"SELECT {_INDEX_COLUMNS}, {_DOC_COLUMNS} FROM events ORDER BY seq")
            batches = rel.to_arrow_reader(_EXPORT_ROWS)
            index = pa.schema([f for f in batches.schema if not f.name.startswith("doc_")])
            out_schema = index.append(pa.field("doc", pa.string()))
            read = DocReader(self.segments, cached_frames=2).read
            with pq.ParquetWriter(target, out_schema) as writer:
                for rb in batches:
                    where = [rb.column(c).to_pylist() for c in _DOC_COLUMNS.split(", ")]
                    docs = [read(*loc).decode() for loc in zip(*where, strict=True)]
                    columns = [rb.column(f.name) for f in index]
                    writer.write_batch(
                        pa.record_batch([*columns, pa.array(docs, pa.string())], schema=out_schema)
                    )
        finally:
            cur.close()


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
    try:
        row = con.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()
    except duckdb.Error as exc:
        con.close()
        raise StoreError(f"not a wgsiem store: {exc}", location=Location(str(p))) from exc
    version = int(row[0]) if row else schema.SCHEMA_VERSION
    if version != schema.SCHEMA_VERSION:
        con.close()
        raise StoreError(
            f"store schema version {version}, this wgsiem reads {schema.SCHEMA_VERSION}",
            location=Location(str(p)),
            fix="open it once for writing to upgrade it (start `wgsiem run`)"
            if version < schema.SCHEMA_VERSION
            else "upgrade wgsiem",
        )
    return Store(con, str(p), read_only=True, segments=SegmentDir(segment_dir_for(p), read_only=True))
