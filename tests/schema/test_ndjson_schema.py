"""The NDJSON sink's ``schema`` option: ECS unchanged byte for byte, CIM/OCSF lines are the mappings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from tests.schema.goldens import examples, golden
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.schema import map_document
from wgsiem.sinks.ndjson.config import NdjsonSinkConfig
from wgsiem.sinks.ndjson.encoder import ENCODED_ATTR, encode, encode_document
from wgsiem.sinks.ndjson.sink import NdjsonSink

DOCS = [golden("ecs", s, a) for s, a in examples()]


def run(path: Path, envs: list[Envelope], **cfg: object) -> tuple[bytes, NdjsonSink]:
    config = NdjsonSinkConfig.model_validate({"type": "ndjson", "path": str(path), **cfg})
    sink = NdjsonSink.build(config, TelemetryRegistry(), component_id="siem")

    async def go() -> None:
        await sink.write(envs)
        await sink.close()

    asyncio.run(go())
    return path.read_bytes(), sink


def envs() -> list[Envelope]:
    return [Envelope(d, EventMeta("src", 1)) for d in DOCS]


def test_schema_defaults_to_ecs_and_is_validated() -> None:
    assert NdjsonSinkConfig(type="ndjson", path="-").output_schema == "ecs"
    assert (
        NdjsonSinkConfig.model_validate({"type": "ndjson", "path": "-", "schema": "ocsf"}).output_schema
        == "ocsf"
    )
    with pytest.raises(ValidationError):
        NdjsonSinkConfig.model_validate({"type": "ndjson", "path": "-", "schema": "leef"})


def test_ecs_output_is_byte_identical_and_still_memoized(tmp_path: Path) -> None:
    batch = envs()
    data, sink = run(tmp_path / "ecs.ndjson", batch)
    assert sink._encode is encode  # the very same function: nothing new per event
    assert data == b"".join(encode_document(d) for d in DOCS)
    assert all(e.meta.attributes[ENCODED_ATTR] == encode_document(e.data) for e in batch)


@pytest.mark.parametrize("schema", ["cim", "ocsf"])
def test_mapped_output_is_the_mapping_and_leaves_the_ecs_memo_alone(tmp_path: Path, schema: str) -> None:
    batch = envs()
    data, sink = run(tmp_path / f"{schema}.ndjson", batch, schema=schema)
    lines = data.splitlines()
    assert [orjson.loads(x) for x in lines] == [map_document(d, schema) for d in DOCS]  # type: ignore[arg-type]
    assert all(ENCODED_ATTR not in e.meta.attributes for e in batch)  # the store's ECS line is not replaced
    assert sink.telemetry.errors == {} and sink.telemetry.dropped == {}


def test_a_document_the_mapper_rejects_costs_that_event_only(tmp_path: Path) -> None:
    bad = Envelope({"event": "not an object"}, EventMeta("src", 1))
    good = Envelope(DOCS[0], EventMeta("src", 1))
    data, sink = run(tmp_path / "cim.ndjson", [bad, good], schema="cim")
    assert data.splitlines() == [orjson.dumps(map_document(DOCS[0], "cim"))]
    assert sink.telemetry.dropped == {"unencodable": 1}
    assert sink.telemetry.errors == {"EncodeError@encode": 1}
    assert sink.telemetry.last_error is not None and "cannot map event to cim" in sink.telemetry.last_error
