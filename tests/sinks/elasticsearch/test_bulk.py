"""The pure ``_bulk`` encoder and response reader: exact outputs and properties."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.sinks.elasticsearch.bulk import (
    BulkRequest,
    BulkResponseError,
    data_stream_name,
    encode_bulk,
    interpret_bulk_response,
)
from wgsiem.sinks.outbox.contract import Pending

from .conftest import pending, real_documents

DOC = {"@timestamp": "2026-11-25T16:09:04.000Z", "event": {"id": "abc", "dataset": "wireguard.state"}}


def test_encodes_create_with_id_into_the_data_stream() -> None:
    requests, rejected = encode_bulk([Pending(7, "abc", DOC)], namespace="default", max_request_bytes=1 << 20)
    assert rejected == {}
    assert requests == [
        BulkRequest(
            b'{"create":{"_index":"logs-wireguard.state-default","_id":"abc"}}\n'
            b'{"@timestamp":"2026-11-25T16:09:04.000Z","event":{"id":"abc","dataset":"wireguard.state"},'
            b'"data_stream":{"type":"logs","dataset":"wireguard.state","namespace":"default"}}\n',
            [7],
            ["abc"],
        )
    ]


def test_the_input_document_is_not_modified() -> None:
    doc = orjson.loads(orjson.dumps(DOC))
    encode_bulk([Pending(1, "abc", doc)], namespace="default", max_request_bytes=1 << 20)
    assert doc == DOC


@pytest.mark.parametrize(
    ("dataset", "stream"),
    [
        ("wireguard.kernel_log", "logs-wireguard.kernel_log-ns"),
        ("wireguard.detect", "logs-wireguard.detect-ns"),
        ("Other-Thing", "logs-wireguard.other_thing-ns"),
        (None, "logs-wireguard.generic-ns"),
    ],
)
def test_data_stream_names(dataset: str | None, stream: str) -> None:
    assert data_stream_name({"event": {"dataset": dataset}}, "ns")[0] == stream


def test_a_document_already_carrying_data_stream_is_overridden_not_duplicated() -> None:
    doc = {**DOC, "data_stream": {"type": "metrics"}}
    (req,), _ = encode_bulk([Pending(1, "abc", doc)], namespace="default", max_request_bytes=1 << 20)
    source = orjson.loads(req.body.split(b"\n")[1])
    assert source["data_stream"] == {"type": "logs", "dataset": "wireguard.state", "namespace": "default"}
    assert req.body.count(b'"data_stream"') == 1


@pytest.mark.parametrize("dataset", [["wireguard.state"], {"x": 1}, 7, ""])
def test_a_malformed_dataset_goes_to_the_generic_stream(dataset: Any) -> None:
    doc = {**DOC, "event": {"id": "abc", "dataset": dataset}}
    (req,), rejected = encode_bulk([Pending(1, "abc", doc)], namespace="default", max_request_bytes=1 << 20)
    assert rejected == {}
    assert req.body.startswith(b'{"create":{"_index":"logs-wireguard.generic-default","_id":"abc"}}\n')


def test_size_bound_splits_requests_and_rejects_a_lone_oversize_document() -> None:
    docs = real_documents()
    reqs, rejected = encode_bulk(pending(docs), namespace="default", max_request_bytes=4096)
    assert all(len(r.body) <= 4096 for r in reqs)
    delivered = [s for r in reqs for s in r.seqs]
    assert sorted(delivered + list(rejected)) == list(range(len(docs)))
    assert all("exceeds max_request_bytes" in why for why in rejected.values())


def _response(statuses: list[int]) -> dict[str, Any]:
    items = []
    for st_ in statuses:
        item: dict[str, Any] = {"_index": "x", "status": st_}
        if st_ >= 300:
            item["error"] = {"type": "t", "reason": "r"}
        items.append({"create": item})
    return {"errors": any(s >= 300 for s in statuses), "items": items}


def test_item_statuses_map_to_outcomes() -> None:
    req = BulkRequest(b"", [10, 11, 12, 13, 14, 15], [""] * 6)
    out = interpret_bulk_response(_response([201, 409, 429, 400, 503, 200]), req)
    assert out.delivered == [10, 15]
    assert out.duplicates == [11]
    assert out.retry == [12, 14]
    assert out.rejected == {13: "HTTP 400 t: r"}


def test_a_response_that_does_not_line_up_is_not_trusted() -> None:
    req = BulkRequest(b"", [1, 2], ["", ""])
    with pytest.raises(BulkResponseError):
        interpret_bulk_response(_response([201]), req)
    with pytest.raises(BulkResponseError):
        interpret_bulk_response({"items": [{"index": {"status": 201}}, {"create": {"status": 201}}]}, req)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=10,
)


keys = st.sampled_from(["event", "data_stream", "@timestamp"]) | st.text(max_size=10)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.dictionaries(keys, json_values | st.fixed_dictionaries({"dataset": json_values}), max_size=4),
        max_size=8,
    ),
    st.integers(200, 3000),
)
def test_every_document_is_either_encoded_once_or_rejected(docs: list[dict[str, Any]], limit: int) -> None:
    batch = [Pending(i, f"id{i}", d) for i, d in enumerate(docs)]
    reqs, rejected = encode_bulk(batch, namespace="default", max_request_bytes=limit)
    seqs = [s for r in reqs for s in r.seqs]
    assert sorted(seqs + list(rejected)) == list(range(len(docs)))
    for r in reqs:
        assert len(r.body) <= limit
        lines = r.body.split(b"\n")
        assert lines[-1] == b"" and len(lines) == 2 * len(r.seqs) + 1
        for action, source in zip(lines[0:-1:2], lines[1:-1:2], strict=True):
            assert set(orjson.loads(action)) == {"create"}
            assert orjson.loads(source)["data_stream"]["type"] == "logs"


@settings(max_examples=100, deadline=None)
@given(st.lists(json_values, max_size=6), st.integers(0, 5))
def test_any_response_gives_an_outcome_or_a_bulk_response_error(items: list[Any], n: int) -> None:
    req = BulkRequest(b"", list(range(n)), [""] * n)
    try:
        out = interpret_bulk_response({"items": items}, req)
    except BulkResponseError:
        return
    accounted = out.delivered + out.duplicates + out.retry + list(out.rejected)
    assert sorted(accounted) == list(range(n))
