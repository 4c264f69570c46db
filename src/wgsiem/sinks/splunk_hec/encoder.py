"""ECS document → one HEC event object (``/services/collector/event`` JSON), pure.

The HEC event format (Splunk "Format events for HTTP Event Collector"): a JSON object with ``event``
(the body) and optional metadata ``time`` (epoch seconds, fractions allowed), ``host``, ``source``,
``sourcetype``, ``index`` and ``fields`` (indexed fields: flat, values a string or a list of strings —
anything else is refused with code 15). A batch is those objects concatenated, not a JSON array.

Choices:

* ``time`` comes from ``@timestamp`` (else ``event.created``), with millisecond precision, so Splunk's
  ``_time`` is the observation's time and not the time of delivery.
* ``sourcetype`` is ``wireguard:<dataset>`` — ``wireguard.state`` → ``wireguard:state``,
  ``wireguard.detect`` → ``wireguard:detect`` — the sourcetypes the Splunk app's props.conf declares.
* the body is, by default, the CIM mapping (flat CIM fields, ``tag`` list, ``cim_data_model``) laid over
  the ECS document (``cim+ecs``): the Splunk app's eventtypes/tags key on the CIM fields, the
  correlation searches converted from the Sigma rules on the ECS ones; ``cim`` or ``ecs`` alone on
  demand. The deterministic ``event.id`` is in every body (CIM ``event_id``, ECS ``event.id``) and an
  indexed field ``event_id``, so ``| dedup event_id`` or ``tstats`` drop the duplicates at-least-once
  delivery can make.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from wgsiem.errors import WgsiemError

__all__ = ["HecEncodeError", "HecEncoder", "event_time", "sourcetype_of"]

_EMPTY: Mapping[str, Any] = {}


def _part(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    if type(value) is dict or isinstance(value, Mapping):
        return value
    return _EMPTY


class HecEncodeError(WgsiemError):
    """The document cannot be turned into a HEC event (mapping failed, not JSON-expressible)."""


def event_time(doc: Mapping[str, Any]) -> float | None:
    """Epoch seconds (ms precision) of ``@timestamp`` (else ``event.created``); ``None`` if neither parses."""
    for value in (doc.get("@timestamp"), _part(doc, "event").get("created")):
        if isinstance(value, str) and value:
            try:
                ts = datetime.fromisoformat(value)
            except ValueError:
                continue
            if ts.tzinfo is None:
                continue  # a naive time is ambiguous: let Splunk stamp the arrival time instead
            return round(ts.timestamp(), 3)
    return None


def sourcetype_of(doc: Mapping[str, Any], prefix: str) -> str:
    """``<prefix>:<dataset without its "wireguard." part>``; ``<prefix>:event`` when there is no dataset."""
    dataset = _part(doc, "event").get("dataset")
    if not isinstance(dataset, str) or not dataset:
        return f"{prefix}:event"
    head, _, rest = dataset.partition(".")
    name = rest if head == "wireguard" and rest else dataset
    return f"{prefix}:{name.replace('.', ':')}"


@dataclass(frozen=True, slots=True)
class HecEncoder:
    """Turns documents into HEC event objects (bytes, no separator) with fixed metadata."""

    source: str
    default_host: str
    host: str | None = None
    index: str | None = None
    sourcetype_prefix: str = "wireguard"
    schema: str = "cim+ecs"
    indexed_fields: bool = True

    def mapper(self) -> Callable[[Mapping[str, Any]], Any]:
        """The body builder of ``schema``: ``cim``, ``ecs``, or ``cim+ecs`` (CIM over the ECS fields)."""
        from wgsiem.schema import MAPPERS, to_cim

        if self.schema == "cim+ecs":
            return lambda doc: {**doc, **to_cim(doc)}
        return MAPPERS[self.schema]

    def encode(
        self, doc: Mapping[str, Any], mapper: Callable[[Mapping[str, Any]], Any] | None = None
    ) -> bytes:
        """One HEC event object; raises :class:`HecEncodeError` (the document costs itself, not the batch)."""
        ev = _part(doc, "event")
        try:
            body = (mapper or self.mapper())(doc)
        except Exception as exc:
            raise HecEncodeError(f"cannot map event {ev.get('id')!r} to {self.schema}: {exc!r}") from exc
        out: dict[str, Any] = {}
        t = event_time(doc)
        if t is not None:
            out["time"] = t
        host = self.host or _part(doc, "observer").get("hostname") or self.default_host
        out["host"] = str(host)
        out["source"] = self.source
        out["sourcetype"] = sourcetype_of(doc, self.sourcetype_prefix)
        if self.index:
            out["index"] = self.index
        if self.indexed_fields:
            fields: dict[str, str] = {}
            for name, key in (("event_id", "id"), ("event_dataset", "dataset"), ("event_action", "action")):
                value = ev.get(key)
                if isinstance(value, str) and value:
                    fields[name] = value
            if fields:
                out["fields"] = fields
        out["event"] = body
        try:
            return orjson.dumps(out, option=orjson.OPT_NON_STR_KEYS)
        except (orjson.JSONEncodeError, TypeError) as exc:
            raise HecEncodeError(f"cannot encode event {ev.get('id')!r} as JSON: {exc}") from exc
