"""The store's documents outside DuckDB: segments, byte-identical reads, crash recovery, retention,
the upgrade of a store written with documents inside ``events`` (schema 2)."""

from __future__ import annotations

import array
import contextlib
import itertools
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.errors import StoreError
from wgsiem.sinks.duckdb_store import schema
from wgsiem.sinks.duckdb_store.migrate import EVENTS_V2_DDL
from wgsiem.sinks.duckdb_store.segments import (
    FRAME_DOCS,
    DocReader,
    MemorySegments,
    SegmentDir,
    decompress_segment,
    encode_frames,
    frame_content_size,
    segment_dir_for,
)
from wgsiem.sinks.duckdb_store.store import Store, open_readonly

from .test_duckdb_store import SESSION, at, doc, ended, lifecycle


def lines_of(docs: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in docs]


def segment_files(db: Path) -> list[Path]:
    return sorted(segment_dir_for(db).glob("*.ndjson.zst"))


# ---- frames (pure) ----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b" ") + b"\n"), min_size=1, max_size=300)
)
def test_frames_give_back_every_line_byte_identical(lines: list[bytes]) -> None:
    data = b"".join(lines)
    starts = array.array("q", itertools.accumulate(map(len, lines), initial=0))
    frames = encode_frames(data, starts, frame_docs=7)
    segments = MemorySegments()
    seg, base = segments.append(frames.data)
    reader = DocReader(segments, cached_frames=2)
    offs, lens, firsts = (a.to_pylist() for a in (frames.frame_off, frames.frame_len, frames.frame_start))
    for i, line in enumerate(lines):
        got = reader.read(seg, base + offs[i], lens[i], starts[i] - firsts[i], len(line) - 1)
        assert got == line[:-1]
    assert len(set(offs)) == -(-len(lines) // 7)
    assert decompress_segment(frames.data) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=200))
def test_arbitrary_bytes_or_a_cut_segment_raise_only_value_error(noise: bytes, cut: int) -> None:
    lines = lines_of([doc("handshake", i) for i in range(3)])
    data = b"".join(lines)
    frames = encode_frames(data, array.array("q", itertools.accumulate(map(len, lines), initial=0)), 2)
    for candidate in (
        noise,
        frames.data[: max(0, len(frames.data) - cut)] + noise,
        b"\x28\xb5\x2f\xfd" + noise,
    ):
        with contextlib.suppress(ValueError):  # anything else fails the test
            decompress_segment(candidate)
    assert decompress_segment(frames.data + frames.data) == data + data


def test_a_frame_states_its_size_and_a_segment_is_a_zstd_stream_of_ndjson(tmp_path: Path) -> None:
    lines = lines_of([doc("handshake", i) for i in range(FRAME_DOCS + 5)])
    data = b"".join(lines)
    frames = encode_frames(data, array.array("q", itertools.accumulate(map(len, lines), initial=0)))
    first_len = frames.frame_len.to_pylist()[0]
    assert frame_content_size(frames.data[:first_len]) == sum(map(len, lines[:FRAME_DOCS]))
    assert decompress_segment(frames.data) == data
    with pytest.raises(ValueError):
        decompress_segment(frames.data[:-3])
    path = tmp_path / "seg.ndjson.zst"
    path.write_bytes(frames.data)
    assert shutil.which("zstdcat"), "zstdcat missing: scripts/setup.sh installs the zstd package"
    assert subprocess.run(["zstdcat", str(path)], capture_output=True, check=True).stdout == data


# ---- documents in segments --------------------------------------------------------------------------


def test_a_file_store_keeps_documents_in_segments_not_in_duckdb(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    docs = lifecycle()
    with Store.open(path) as s:
        s.ingest(docs)
        assert [r["doc"] for r in s.query_events()] == docs
    [seg] = segment_files(path)
    assert oct(seg.stat().st_mode & 0o777) == "0o640"
    assert oct(segment_dir_for(path).stat().st_mode & 0o777) == "0o750"
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = {r[0] for r in con.execute("DESCRIBE events").fetchall()}
    finally:
        con.close()
    assert "doc" not in columns and {"doc_seg", "doc_frame", "doc_off", "doc_len"} <= columns
    ro = open_readonly(path)
    try:
        assert [r["doc"] for r in ro.query_events()] == docs
    finally:
        ro.close()


def test_segments_rotate_and_retention_deletes_the_ones_no_event_points_into(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store.open(path) as s:
        assert isinstance(s.segments, SegmentDir)
        s.segments.max_bytes = 1  # every batch opens a new segment
        for day in range(3):
            s.ingest([doc("handshake", day * 86_400 + i) for i in range(50)])
        assert len(segment_files(path)) == 3
        result = s.enforce_retention(at(31 * 86_400 - 100).timestamp())  # the first day's events go
        assert (result.events, result.segments) == (50, 1)
        assert [p.name for p in segment_files(path)] == ["0000000002.ndjson.zst", "0000000003.ndjson.zst"]
        assert len(s.query_events(limit=1000)) == 100
        assert s.enforce_retention(at(40 * 86_400).timestamp()).events == 100
        assert len(segment_files(path)) == 1  # the newest is kept for the next batch, empty of events
        s.ingest([doc("handshake", 50 * 86_400)])
        assert len(s.query_events()) == 1


def test_a_torn_segment_tail_is_cut_at_open_and_the_store_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    docs = [doc("handshake", i) for i in range(30)]
    with Store.open(path) as s:
        s.ingest(docs[:10])
    [seg] = segment_files(path)
    committed = seg.stat().st_size
    with seg.open("ab") as fh:  # a crash after the documents were written, before the commit
        fh.write(b"\x28\xb5\x2f\xfd half a frame")
    stray = segment_dir_for(path) / "0000000002.ndjson.zst"
    stray.write_bytes(b"a rotated segment whose batch never committed")
    with Store.open(path) as s:
        assert seg.stat().st_size == committed and not stray.exists()
        s.ingest(docs[10:])
        assert [r["doc"] for r in s.query_events(limit=100)] == docs


def test_a_failed_commit_leaves_no_bytes_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.duckdb"
    with Store.open(path) as s:
        s.ingest([doc("handshake", 0)])
        size = segment_files(path)[0].stat().st_size

        def broken(*_a: object, **_k: object) -> tuple[int, int]:
            raise StoreError("ingest failed: disk full")

        monkeypatch.setattr(s, "_load_batch", broken)
        with pytest.raises(StoreError):
            s.ingest([doc("handshake", 1)])
        assert segment_files(path)[0].stat().st_size == size
        monkeypatch.undo()
        assert s.ingest([doc("handshake", 1)]).inserted == 1
        assert [r["doc"] for r in s.query_events()] == [doc("handshake", 0), doc("handshake", 1)]


def test_duplicates_store_no_document_twice(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    docs = [doc("handshake", i) for i in range(20)]
    with Store.open(path) as s:
        s.ingest(docs[:10])
        size = segment_files(path)[0].stat().st_size
        assert s.ingest(docs[:10]).duplicates == 10
        assert segment_files(path)[0].stat().st_size == size  # nothing appended for a full replay
        result = s.ingest(docs[5:])
        assert (result.inserted, result.duplicates) == (10, 5)
        assert [r["doc"] for r in s.query_events()] == docs


def test_parquet_export_carries_every_document_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    docs = [doc("handshake", i) for i in range(300)]
    with Store.open(path) as s:
        s.ingest_encoded((d, line) for d, line in zip(docs, lines_of(docs), strict=True))
        files = s.export_parquet(tmp_path / "export")
    table = duckdb.connect().execute(
        f"SELECT seq, event_id, doc FROM read_parquet('{files[0]}') ORDER BY seq"
    )
    rows = table.fetchall()
    assert [r[2].encode() for r in rows] == [line[:-1] for line in lines_of(docs)]


def test_a_reader_thread_reads_documents_while_the_writer_ingests(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store.open(path) as s:
        s.ingest([doc("handshake", 0)])
        reader = s.reader()
        errors: list[BaseException] = []
        done = threading.Event()

        def read() -> None:
            try:
                while not done.is_set():
                    for row in reader.query_events(tail=50):
                        assert row["doc"]["event"]["id"] == row["event_id"]
            except BaseException as exc:  # reported below
                errors.append(exc)

        t = threading.Thread(target=read)
        t.start()
        try:
            for i in range(1, 40):
                s.ingest([doc("handshake", i * 10 + j) for j in range(10)])
        finally:
            done.set()
            t.join(30)
        assert errors == []
        reader.close()  # a reader handle does not close the writer's segments
        assert len(s.query_events(limit=1000)) == 391


def test_a_missing_segment_is_an_error_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store.open(path) as s:
        s.ingest([doc("handshake", 0)])
    for p in segment_files(path):
        p.unlink()
    ro = open_readonly(path)
    try:
        with pytest.raises(StoreError) as info:
            ro.query_events()
        assert info.value.fix is not None
    finally:
        ro.close()
    with Store.open(path) as s:  # writing goes on in a new segment, never over what rows point to
        s.ingest([doc("handshake", 1)])
        assert [p.name for p in segment_files(path)] == ["0000000002.ndjson.zst"]


# ---- upgrade from schema 2 --------------------------------------------------------------------------


V2_COLUMNS = (
    "event_id, ts, action, dataset, kind, interface, peer_key, source_ip, doc, ts_defaulted, session_id, "
    "session_start, session_end, session_duration_secs, session_rx_bytes, session_tx_bytes, "
    "session_end_reason, session_endpoints, transfer_rx_bytes, transfer_tx_bytes, allowed_ips, tunnel_ip, "
    "endpoint"
)


def v2_store(path: Path, docs: list[dict[str, Any]]) -> None:
    """A store as the previous layout wrote it: the document inside ``events.doc``, allowed IPs a list."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SEQUENCE events_seq")
        con.execute("CREATE TABLE store_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
        con.execute(EVENTS_V2_DDL)
        for stmt in schema.DDL[3:]:  # sessions and peers did not change
            con.execute(stmt)
        con.execute("INSERT INTO store_meta VALUES ('schema_version', '2'), ('derived_seq', '0')")
        for d in docs:
            peer = d["wireguard"].get("peer", {})
            session = d["wireguard"].get("session", {})
            transfer = d["wireguard"].get("transfer", {})
            con.execute(
                f"INSERT INTO events ({V2_COLUMNS}) VALUES "
                f"(?, ?, ?, 'wireguard.state', 'event', 'wgdemog0', ?, ?, ?, false{', ?' * 13})",
                [
                    d["event"]["id"],
                    d["@timestamp"],
                    d["event"]["action"],
                    peer.get("public_key"),
                    d.get("source", {}).get("ip"),
                    orjson.dumps(d).decode(),
                    session.get("id"),
                    session.get("start"),
                    session.get("end"),
                    session.get("duration_secs"),
                    session.get("rx_bytes"),
                    session.get("tx_bytes"),
                    session.get("end_reason"),
                    session.get("endpoints"),
                    transfer.get("rx_bytes"),
                    transfer.get("tx_bytes"),
                    peer.get("allowed_ips"),
                    "10.222.0.11",
                    d["wireguard"].get("change", {}).get("endpoint", {}).get("new") or peer.get("endpoint"),
                ],
            )
    finally:
        con.close()


def test_a_schema_2_store_is_upgraded_at_open_and_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    docs = lifecycle()
    docs[-1] = ended(docs[-1])
    v2_store(path, docs)
    with pytest.raises(StoreError) as info:  # read-only cannot upgrade: it says what to do
        open_readonly(path)
    assert info.value.fix is not None and "wgsiem run" in info.value.fix
    with Store.open(path) as s:
        rows = s.query_events()
        assert [r["doc"] for r in rows] == docs
        assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
        [session] = s.query_sessions(0)
        assert (session["session_id"], session["rx_bytes"], session["end"]) == (SESSION, 160, at(300))
        assert s.query_peers()[0]["allowed_ips"] == ["10.222.0.11/32"]
        assert s.ingest(docs).duplicates == len(docs)  # the primary key survived the upgrade
        s.ingest([doc("handshake", 400)])
    ro = open_readonly(path)
    try:
        assert len(ro.query_events()) == len(docs) + 1
        version = ro._rows("SELECT value FROM store_meta WHERE key = 'schema_version'")[0]["value"]
        assert version == str(schema.SCHEMA_VERSION)
    finally:
        ro.close()


def test_an_interrupted_upgrade_is_redone_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    docs = [doc("handshake", i) for i in range(5)]
    v2_store(path, docs)
    directory = segment_dir_for(path)
    os.mkdir(directory)
    (directory / "0000000001.ndjson.zst").write_bytes(b"bytes of a crashed first attempt")
    with Store.open(path) as s:
        assert [r["doc"] for r in s.query_events()] == docs
