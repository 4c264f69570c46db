"""Upgrade a store written by an older wgsiem (schema 1 or 2: documents inside ``events.doc``).

The documents move to segment files (see :mod:`.segments`) and ``events`` is rebuilt as the index
table of schema 3, rows and ``seq`` unchanged. Run by :meth:`~.store.Store.open` on the writing
handle; a read-only open of an old store says to open it once for writing (``wgsiem run``) instead.

Crash safety: the documents are written (and flushed) first, with no row pointing to them; the table
swap is one transaction that also records the new schema version. A crash before the commit leaves
the old store as it was plus segment bytes no row points to, which the next attempt removes first.
"""

from __future__ import annotations

import array
import itertools

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from . import schema
from .segments import Segments, encode_frames

__all__ = ["EVENTS_V2_DDL", "documents_to_segments"]

EVENTS_V2_DDL = """
    CREATE TABLE IF NOT EXISTS events (
        seq BIGINT NOT NULL DEFAULT nextval('events_seq'),
        event_id VARCHAR PRIMARY KEY,
        ts TIMESTAMPTZ NOT NULL,
        action VARCHAR,
        dataset VARCHAR,
        kind VARCHAR,
        interface VARCHAR,
        peer_key VARCHAR,
        source_ip VARCHAR,
        doc VARCHAR NOT NULL USING COMPRESSION zstd,
        ts_defaulted BOOLEAN NOT NULL,
        session_id VARCHAR,
        session_start TIMESTAMPTZ,
        session_end TIMESTAMPTZ,
        session_duration_secs DOUBLE,
        session_rx_bytes BIGINT,
        session_tx_bytes BIGINT,
        session_end_reason VARCHAR,
        session_endpoints VARCHAR[],
        transfer_rx_bytes BIGINT,
        transfer_tx_bytes BIGINT,
        endpoint VARCHAR,
        latest_handshake TIMESTAMPTZ,
        peer_rx_bytes BIGINT,
        peer_tx_bytes BIGINT,
        allowed_ips VARCHAR[],
        tunnel_ip VARCHAR
    )"""
"""The ``events`` table of schema 2, verbatim (schema 1 differs only in ``doc JSON``): what this
module upgrades from, and what the upgrade test builds an old store with."""

_BATCH_ROWS = 65_536
_MAP_VIEW = "wgs_migrate_map"
_NEW_TABLE = "events_v3"


def documents_to_segments(con: duckdb.DuckDBPyConnection, segments: Segments) -> int:
    """Move every ``events.doc`` to ``segments`` and rebuild ``events`` as schema 3; the number moved.

    ``con`` is the writing connection, outside any transaction. Raises ``duckdb.Error``/``OSError``
    with the store unchanged (but for segment bytes no row points to).
    """
    segments.recover(None, 0)  # bytes of an earlier, interrupted attempt
    maps: list[pa.RecordBatch] = []
    cur = con.cursor()
    try:
        db = con.execute("SELECT current_database()").fetchone()
        if db is not None:  # a cursor starts in the default catalog, not the ATTACHed store
            cur.execute(f"USE {schema.sql_ident(str(db[0]))}")
        rel = cur.sql("SELECT seq, doc::VARCHAR FROM events ORDER BY seq")
        for rb in rel.to_arrow_reader(_BATCH_ROWS):
            lines = [d.encode() + b"\n" for d in rb.column(1).to_pylist()]
            if not lines:
                continue
            starts = array.array("q", itertools.accumulate(map(len, lines), initial=0))
            frames = encode_frames(b"".join(lines), starts)
            seg, base = segments.append(frames.data)
            maps.append(
                pa.record_batch(
                    {
                        "seq": rb.column(0),
                        "doc_seg": pa.array([seg] * len(lines), pa.int32()),
                        "doc_frame": pc.add(frames.frame_off, base),
                        "doc_frame_len": frames.frame_len,
                        "doc_off": pa.array(
                            [x - f for x, f in zip(starts, frames.frame_start.to_pylist(), strict=False)],
                            pa.int64(),
                        ),
                        "doc_len": pa.array([len(x) - 1 for x in lines], pa.int32()),
                    }
                )
            )
    finally:
        cur.close()
    segments.sync()
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DROP TABLE IF EXISTS {_NEW_TABLE}")
        con.execute(schema.events_ddl(_NEW_TABLE))
        if maps:
            con.register(_MAP_VIEW, pa.Table.from_batches(maps))
            con.execute(
                f"INSERT INTO {_NEW_TABLE} BY NAME "
                "SELECT e.* EXCLUDE (doc, allowed_ips), to_json(e.allowed_ips)::VARCHAR AS allowed_ips, "
                f"m.* EXCLUDE (seq) "
                f"FROM events e JOIN {_MAP_VIEW} m USING (seq) ORDER BY seq"
            )
        con.execute("DROP TABLE events")
        con.execute(f"ALTER TABLE {_NEW_TABLE} RENAME TO events")
        con.execute(
            "UPDATE store_meta SET value = ? WHERE key = 'schema_version'", [str(schema.SCHEMA_VERSION)]
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        if maps:
            con.unregister(_MAP_VIEW)
    return sum(len(m) for m in maps)
