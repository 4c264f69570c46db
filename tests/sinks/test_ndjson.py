"""The NDJSON sink: exact encoding, rotation that keeps max_files and loses no line, file mode."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.ndjson.config import NdjsonSinkConfig
from wgsiem.sinks.ndjson.encoder import ENCODED_ATTR, EncodeError, encode, encode_document
from wgsiem.sinks.ndjson.sink import NdjsonSink

DOC: dict[str, Any] = {
    "@timestamp": "2026-11-25T15:50:01.000Z",
    "event": {"id": "9f1c" + "0" * 28, "kind": "event", "action": "session-started"},
    "wireguard": {"peer": {"public_key": "k+/=", "allowed_ips": ["10.222.0.11/32"], "rx_bytes": 1234}},
    "message": "naïve ✓",
}


def env(data: dict[str, Any]) -> Envelope:
    return Envelope(data, EventMeta("wg", 123, attributes={"secret": "not in the line"}))


def line_env(i: int, pad: int = 0) -> Envelope:
    """Event ``i``; lines of the same ``pad`` have the same length for i < 10,000."""
    return env({"event": {"id": f"{i:032x}"}, "n": i, "pad": "x" * (pad + 4 - len(str(i)))})


def sink_for(path: Path | str, **cfg: object) -> NdjsonSink:
    config = NdjsonSinkConfig.model_validate({"type": "ndjson", "path": str(path), **cfg})
    return NdjsonSink.build(config, TelemetryRegistry(), component_id="siem")


async def write_all(sink: NdjsonSink, batches: list[list[Envelope]]) -> None:
    for batch in batches:
        await sink.write(batch)
    await sink.flush()
    await sink.close()


def test_encode_document_is_compact_utf8_json_with_one_trailing_newline() -> None:
    expected = (
        '{"@timestamp":"2026-11-25T15:50:01.000Z","event":{"id":"9f1c0000000000000000000000000000",'
        '"kind":"event","action":"session-started"},"wireguard":{"peer":{"public_key":"k+/=",'
        '"allowed_ips":["10.222.0.11/32"],"rx_bytes":1234}},"message":"naïve ✓"}\n'
    ).encode()
    assert encode_document(DOC) == expected


def test_encode_writes_only_the_document_and_memoizes_it_on_the_envelope() -> None:
    e = env(DOC)
    line = encode(e)
    assert orjson.loads(line) == DOC
    assert b"secret" not in line
    assert e.meta.attributes[ENCODED_ATTR] is line
    assert encode(e) is line


def test_unencodable_document_raises_encode_error() -> None:
    with pytest.raises(EncodeError):
        encode_document({"n": 2**70})


def test_config_rejects_unknown_keys_and_other_types() -> None:
    with pytest.raises(ValidationError):
        NdjsonSinkConfig.model_validate({"type": "ndjson", "path": "x", "rotate": True})
    with pytest.raises(ValidationError):
        NdjsonSinkConfig.model_validate({"type": "duckdb", "path": "x"})
    cfg = NdjsonSinkConfig.model_validate({"type": "ndjson", "path": "/var/log/wgsiem.ndjson"})
    assert (cfg.max_bytes, cfg.max_files) == (100 * 1024 * 1024, 5)


def test_appends_one_line_per_event_to_a_0640_file(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    out.write_bytes(b'{"earlier":true}\n')
    out.chmod(0o640)
    sink = sink_for(out)
    asyncio.run(write_all(sink, [[line_env(0), line_env(1)], [line_env(2)]]))
    lines = out.read_bytes().splitlines()
    assert lines[0] == b'{"earlier":true}'
    assert [orjson.loads(x)["n"] for x in lines[1:]] == [0, 1, 2]
    assert sink.telemetry.snapshot()["dropped"] == {}


def test_new_file_is_created_with_mode_0640(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        sink = sink_for(tmp_path / "new.ndjson")
    finally:
        os.umask(old)
    asyncio.run(write_all(sink, [[line_env(0)]]))
    assert stat.S_IMODE((tmp_path / "new.ndjson").stat().st_mode) == 0o640


def test_rotation_loses_no_line_and_no_file_exceeds_max_bytes(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    line_len = len(encode(line_env(0, pad=50)))
    sink = sink_for(out, max_bytes=line_len * 3 + 1, max_files=100)
    batches = [[line_env(i, pad=50) for i in range(start, start + 7)] for start in range(0, 70, 7)]
    asyncio.run(write_all(sink, batches))
    files = [out.with_name(f"events.ndjson.{i}") for i in range(23, 0, -1)] + [out]
    assert [p.exists() for p in files] == [True] * 24  # 70 lines, 3 per file → 24 files
    assert not out.with_name("events.ndjson.24").exists()
    lines = [line for p in files for line in p.read_bytes().splitlines()]
    assert [orjson.loads(x)["n"] for x in lines] == list(range(70))
    assert all(p.stat().st_size <= line_len * 3 + 1 for p in files)


def test_rotation_keeps_exactly_max_files_with_the_newest_lines(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    line_len = len(encode(line_env(0, pad=50)))
    sink = sink_for(out, max_bytes=line_len * 2, max_files=3)
    asyncio.run(write_all(sink, [[line_env(i, pad=50) for i in range(11)]]))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events.ndjson",
        "events.ndjson.1",
        "events.ndjson.2",
    ]
    newest_first = [out, out.with_name("events.ndjson.1"), out.with_name("events.ndjson.2")]
    kept = [orjson.loads(x)["n"] for p in reversed(newest_first) for x in p.read_bytes().splitlines()]
    assert kept == [6, 7, 8, 9, 10]  # 11 lines, 2 per file: the last file holds the odd one


def test_max_files_one_truncates_instead_of_keeping_history(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    line_len = len(encode(line_env(0)))
    sink = sink_for(out, max_bytes=line_len * 2, max_files=1)
    asyncio.run(write_all(sink, [[line_env(i) for i in range(5)]]))
    assert [p.name for p in tmp_path.iterdir()] == ["events.ndjson"]
    assert [orjson.loads(x)["n"] for x in out.read_bytes().splitlines()] == [4]


def test_a_line_larger_than_max_bytes_gets_a_file_of_its_own(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    sink = sink_for(out, max_bytes=100, max_files=5)
    asyncio.run(write_all(sink, [[line_env(0), line_env(1, pad=500), line_env(2)]]))
    by_file = [
        [orjson.loads(x)["n"] for x in p.read_bytes().splitlines()]
        for p in (out.with_name("events.ndjson.2"), out.with_name("events.ndjson.1"), out)
    ]
    assert by_file == [[0], [1], [2]]


def test_unencodable_event_is_dropped_and_counted_the_rest_written(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    sink = sink_for(out)
    asyncio.run(write_all(sink, [[line_env(0), env({"event": {"id": "x"}, "n": 2**70}), line_env(2)]]))
    assert [orjson.loads(x)["n"] for x in out.read_bytes().splitlines()] == [0, 2]
    snap = sink.telemetry.snapshot()
    assert snap["dropped"] == {"unencodable": 1}
    assert snap["errors"] == {"EncodeError@encode": 1}


def test_reopens_when_the_file_is_moved_away(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    sink = sink_for(out)

    async def scenario() -> None:
        await sink.write([line_env(0)])
        out.rename(tmp_path / "moved.ndjson")
        await sink.write([line_env(1)])
        await sink.close()

    asyncio.run(scenario())
    assert [orjson.loads(x)["n"] for x in (tmp_path / "moved.ndjson").read_bytes().splitlines()] == [0]
    assert [orjson.loads(x)["n"] for x in out.read_bytes().splitlines()] == [1]


def test_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    sink = sink_for("-")
    asyncio.run(write_all(sink, [[line_env(0), line_env(1)]]))
    assert [orjson.loads(x)["n"] for x in capfd.readouterr().out.splitlines()] == [0, 1]


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot open NDJSON output") as info:
        sink_for(tmp_path / "missing" / "events.ndjson")
    assert "directory exists" in str(info.value)


def test_health_check(tmp_path: Path) -> None:
    sink = sink_for(tmp_path / "events.ndjson")
    asyncio.run(sink.health_check())
    asyncio.run(sink.close())
    with pytest.raises(Exception, match="not open"):
        asyncio.run(sink.health_check())
