"""The ``_bulk`` wire format, both ways, as pure functions (no I/O).

Why these choices:

* **``create`` ops, ``_id`` = ``event.id``.** Data streams accept only ``create``. With the deterministic
  ``event.id`` as ``_id``, a document the outbox re-sends after a crash or a timeout is refused by the
  cluster with a per-item 409 — counted as a *duplicate* and treated as delivered. At-least-once
  delivery therefore never shows as duplicates in the index (as long as both copies land in the same
  backing index; see docs/sinks/elasticsearch.md, "limits").
* **The body is encoded here, with orjson, into bytes**, and handed to the client as-is: the client's
  own per-document serialization would cost more than the whole rest of the sink.
* **One outbox batch may become several requests** so no request body exceeds ``max_request_bytes``
  (the cluster answers 413 above ``http.max_content_length``); a single document that alone exceeds
  it can never be delivered and is rejected with that reason.
* **Per-item outcome**: 2xx delivered, 409 duplicate, 429 and 5xx retry (the cluster is busy or a
  shard is unavailable), any other 4xx rejected with ``error.type: error.reason`` (mapping conflict,
  parse error, missing ``@timestamp``…). A response whose items do not line up with the request is
  not trusted at all: the whole request is retried.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from wgsiem.sinks.outbox.contract import Pending

__all__ = [
    "BulkOutcome",
    "BulkRequest",
    "BulkResponseError",
    "data_stream_name",
    "encode_bulk",
    "interpret_bulk_response",
]

_INVALID = re.compile(r"[^a-z0-9_.]")
DATASET_PREFIX = "wireguard."


def _dataset_of(doc: Mapping[str, Any]) -> str:
    event = doc.get("event")
    dataset = event.get("dataset") if isinstance(event, Mapping) else None
    if not isinstance(dataset, str) or not dataset:
        return "generic"
    if dataset.startswith(DATASET_PREFIX):
        dataset = dataset[len(DATASET_PREFIX) :]
    # a data stream dataset may not contain '-' (it separates type-dataset-namespace)
    return _INVALID.sub("_", dataset.lower())[:100] or "generic"


def data_stream_name(doc: Mapping[str, Any], namespace: str) -> tuple[str, str]:
    """``(data stream, dataset)``: ``logs-wireguard.<dataset>-<namespace>`` for ``doc``."""
    dataset = "wireguard." + _dataset_of(doc)
    return f"logs-{dataset}-{namespace}", dataset


@dataclass(slots=True)
class BulkRequest:
    """One ``_bulk`` body and the outbox seqs of its documents, in body order."""

    body: bytes
    seqs: list[int]
    event_ids: list[str]


@dataclass(slots=True)
class BulkOutcome:
    """What one ``_bulk`` response said about each document."""

    delivered: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    retry_reasons: dict[str, int] = field(default_factory=dict)


class BulkResponseError(ValueError):
    """The response does not describe the request (wrong item count or shape)."""


def encode_bulk(
    batch: Sequence[Pending], *, namespace: str, max_request_bytes: int
) -> tuple[list[BulkRequest], dict[int, str]]:
    """The request bodies for ``batch`` and the seqs rejected before sending (with the reason)."""
    requests: list[BulkRequest] = []
    rejected: dict[int, str] = {}
    parts: list[Any] = []  # bytes and memoryviews, joined once per request
    seqs: list[int] = []
    ids: list[str] = []
    size = 0
    # event.dataset → (b'{"create":{"_index":"logs-…"', data_stream object, b',"data_stream":{…}}\n')
    streams: dict[str | None, tuple[bytes, dict[str, str], bytes]] = {}
    dumps = orjson.dumps
    for item in batch:
        doc = item.doc
        event = doc.get("event")
        key = event.get("dataset") if isinstance(event, Mapping) else None
        if not isinstance(key, str):
            key = None  # → "generic" (and never an unhashable cache key)
        cached = streams.get(key)
        if cached is None:
            stream, dataset = data_stream_name(doc, namespace)
            ds = {"type": "logs", "dataset": dataset, "namespace": namespace}
            cached = (b'{"create":{"_index":' + dumps(stream), ds, b',"data_stream":' + dumps(ds) + b"}\n")
            streams[key] = cached
        head, ds, tail = cached
        try:
            action = head + (b',"_id":' + dumps(item.event_id) + b"}}\n" if item.event_id else b"}}\n")
            source = item.raw if item.raw is not None else dumps(doc)  # stored JSON: no re-encode
            if len(source) > 2 and "data_stream" not in doc:
                pieces: tuple[Any, ...] = (action, memoryview(source)[:-1], tail)
                length = len(action) + len(source) - 1 + len(tail)
            else:  # empty, or carrying its own data_stream: replace it
                source = dumps({**doc, "data_stream": ds}) + b"\n"
                pieces = (action, source)
                length = len(action) + len(source)
        except (TypeError, orjson.JSONEncodeError) as exc:
            rejected[item.seq] = f"not serializable as JSON: {exc}"
            continue
        if length > max_request_bytes:
            rejected[item.seq] = f"document of {length} bytes exceeds max_request_bytes ({max_request_bytes})"
            continue
        if size + length > max_request_bytes and parts:
            requests.append(BulkRequest(b"".join(parts), seqs, ids))
            parts, seqs, ids, size = [], [], [], 0
        parts.extend(pieces)
        seqs.append(item.seq)
        ids.append(item.event_id)
        size += length
    if parts:
        requests.append(BulkRequest(b"".join(parts), seqs, ids))
    return requests, rejected


def _reason(error: Any) -> str:
    if isinstance(error, Mapping):
        kind = error.get("type", "error")
        reason = error.get("reason")
        text = f"{kind}: {reason}" if reason else str(kind)
        caused = error.get("caused_by")
        if isinstance(caused, Mapping) and caused.get("reason"):
            text += f" (caused by {caused.get('type', 'error')}: {caused['reason']})"
        return text[:1000]
    return str(error)[:1000] if error else "rejected without a reason"


def interpret_bulk_response(response: Mapping[str, Any], request: BulkRequest) -> BulkOutcome:
    """Map each item of a ``_bulk`` response to the seq of the document it answers."""
    items = response.get("items")
    if not isinstance(items, list) or len(items) != len(request.seqs):
        got = len(items) if isinstance(items, list) else "no"
        raise BulkResponseError(f"_bulk answered {got} items for {len(request.seqs)} documents")
    outcome = BulkOutcome()
    if response.get("errors") is False:  # documented: no item failed
        outcome.delivered = list(request.seqs)
        return outcome
    for seq, item in zip(request.seqs, items, strict=True):
        result = item.get("create") if isinstance(item, Mapping) else None
        if not isinstance(result, Mapping) or not isinstance(result.get("status"), int):
            raise BulkResponseError(f"_bulk item for seq {seq} is not a create result: {item!r:.200}")
        status = result["status"]
        if 200 <= status < 300:
            outcome.delivered.append(seq)
        elif status == 409:
            outcome.duplicates.append(seq)
        elif status == 429 or status >= 500:
            outcome.retry.append(seq)
            err = result.get("error")
            kind = err.get("type", str(status)) if isinstance(err, Mapping) else str(status)
            outcome.retry_reasons[kind] = outcome.retry_reasons.get(kind, 0) + 1
        else:
            outcome.rejected[seq] = f"HTTP {status} {_reason(result.get('error'))}"
    return outcome
