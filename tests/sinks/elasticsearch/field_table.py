"""Where the packaged ``fields.yaml`` (the index template's explicit mappings) comes from.

Every field of every real ECS document the project pins — the schema goldens (one real document per
source and action), the enrichment goldens, and the alert each built-in rule raises on its own
matching samples — gets a mapping: ECS fields take their type from ``shared/reference/ecs/ecs_flat.yml``;
``wireguard.*`` fields take the type their values have in those documents.

Regenerate after adding an event or field: ``WGSIEM_REGEN=1 .venv/bin/pytest -q
tests/sinks/elasticsearch/test_mappings.py`` and review the diff.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.support.ecs import ecs_fields

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PACKAGED = Path(__file__).resolve().parents[3] / "src" / "wgsiem" / "sinks" / "elasticsearch" / "fields.yaml"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
# data_stream.* is added by the sink itself (bulk.encode_bulk)
SINK_FIELDS = {"data_stream.type": "x", "data_stream.dataset": "x", "data_stream.namespace": "x"}


def _alerts() -> Iterator[dict[str, Any]]:
    from wgsiem.detect.alert import build_alert, entity_of
    from wgsiem.detect.rule import BUILTIN_RULES, load_rules

    for rule in load_rules([BUILTIN_RULES]):
        for sample in rule.samples_match:
            yield build_alert(rule, sample, entity_of(rule, sample), at=1795622682.0, created=1795622682.5)


def observed_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((FIXTURES / "schema" / "ecs").glob("*/*.json")):
        docs.append(orjson.loads(path.read_bytes()))
    for path in sorted((FIXTURES / "enrich").glob("*_enriched.json")):
        docs.append(orjson.loads(path.read_bytes()))
    docs.extend(_alerts())
    return docs


def _leaves(doc: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in doc.items():
        name = prefix + key
        if isinstance(value, dict):
            yield from _leaves(value, name + ".")
        else:
            yield name, value


def _value_type(value: Any) -> str | None:
    values = value if isinstance(value, list) else [value]
    kinds: set[str] = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add("boolean")
        elif isinstance(v, int):
            kinds.add("long")
        elif isinstance(v, float):
            kinds.add("double")
        elif isinstance(v, str):
            kinds.add("date" if _DATE.match(v) else "keyword")
        elif isinstance(v, dict):
            kinds.add("object")
    if not kinds:
        return None
    if kinds == {"long", "double"}:
        return "double"
    if len(kinds) > 1:
        return "keyword" if "object" not in kinds else "object"
    return kinds.pop()


def _entry(name: str, kinds: set[str], ecs: dict[str, Any]) -> dict[str, Any]:
    spec = ecs.get(name)
    if spec is not None:
        entry: dict[str, Any] = {"type": spec["type"]}
        if spec.get("ignore_above"):
            entry["ignore_above"] = spec["ignore_above"]
        return entry
    if "object" in kinds:
        return {"type": "flattened"}
    if kinds == {"long", "double"}:
        return {"type": "double"}
    if len(kinds) > 1:
        return {"type": "keyword", "ignore_above": 1024}
    kind = next(iter(kinds))
    return {"type": kind} | ({"ignore_above": 1024} if kind == "keyword" else {})


def _table(observed: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    ecs = ecs_fields()
    table = {name: _entry(name, observed[name], ecs) for name in sorted(observed)}
    # A field that is a value in some documents and an object in others (the sources disagree) can
    # not have one mapping: keep it in _source only, so neither shape is ever rejected.
    for name in sorted(table):
        if name in table and any(other.startswith(name + ".") for other in table):
            for other in [o for o in table if o.startswith(name + ".")]:
                del table[other]
            table[name] = {"type": "object", "enabled": False}
    return table


def field_tables() -> dict[str, dict[str, dict[str, Any]]]:
    """``{dataset: {field: mapping}}`` per data stream dataset, plus ``"*"`` for all datasets."""
    from wgsiem.sinks.elasticsearch.bulk import data_stream_name

    per: dict[str, dict[str, set[str]]] = {}
    union: dict[str, set[str]] = {}
    for doc in observed_documents():
        _, dataset = data_stream_name(doc, "default")
        for name, value in [*_leaves(doc), *SINK_FIELDS.items()]:
            kind = _value_type(value)
            if kind is not None:
                per.setdefault(dataset, {}).setdefault(name, set()).add(kind)
                union.setdefault(name, set()).add(kind)
    tables = {dataset: _table(observed) for dataset, observed in sorted(per.items())}
    tables["*"] = _table(union)
    return tables


def render(tables: dict[str, dict[str, dict[str, Any]]]) -> str:
    header = (
        "# GENERATED by tests/sinks/elasticsearch/field_table.py from the project's real ECS documents\n"
        "# and shared/reference/ecs/ecs_flat.yml — do not edit by hand; regenerate with\n"
        "# WGSIEM_REGEN=1 .venv/bin/pytest -q tests/sinks/elasticsearch/test_mappings.py\n"
    )
    return header + yaml.safe_dump(tables, sort_keys=True, default_flow_style=None, width=110)
