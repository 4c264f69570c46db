"""The packaged field table stays generated from the real documents and ECS; templates are well formed."""

from __future__ import annotations

import os

from tests.support.ecs import ecs_fields
from wgsiem.sinks.elasticsearch.templates import component_templates, field_tables, ilm_policy, mappings

from . import field_table
from .contract_server import check_ilm, check_mappings
from .field_table import PACKAGED, render
from .field_table import field_tables as generated


def test_fields_yaml_is_generated_from_the_real_documents() -> None:
    text = render(generated())
    if os.environ.get("WGSIEM_REGEN"):
        PACKAGED.write_text(text)
    assert PACKAGED.read_text() == text, (
        "regenerate: WGSIEM_REGEN=1 pytest tests/sinks/elasticsearch/test_mappings.py"
    )


def test_ecs_fields_have_their_ecs_type() -> None:
    ecs = ecs_fields()
    for dataset, table in field_tables().items():
        for name, spec in table.items():
            if name in ecs:
                assert spec["type"] == ecs[name]["type"], (dataset, name)


def test_every_mapping_is_well_formed_for_both_distributions() -> None:
    for dataset in field_tables():
        assert check_mappings(mappings(dataset), dataset) == []
        assert check_mappings(mappings(dataset, "opensearch"), dataset) == []
    os_types = {
        spec.get("type")
        for body in component_templates("opensearch").values()
        for spec in _leaves(body["template"].get("mappings", {}).get("properties", {}))
    }
    assert not os_types & {"constant_keyword", "match_only_text", "wildcard", "flattened"}


def _leaves(props: dict) -> list[dict]:
    out = []
    for spec in props.values():
        out.extend(_leaves(spec["properties"]) if "properties" in spec else [spec])
    return out


def test_ilm_policy_retention() -> None:
    for days in (1, 90, 365):
        body = ilm_policy(retention_days=days)
        assert check_ilm(body) == []
        assert body["policy"]["phases"]["delete"]["min_age"] == f"{days}d"


def test_every_field_has_one_type_and_one_shape_across_every_source() -> None:
    """One SIEM mapping per field: no source emits a field as a string where another emits a number,
    a boolean or an object (``wireguard.endpoint``, ``wireguard.peer.attribution`` and
    ``wireguard.config_run.changed`` once did)."""
    kinds: dict[str, set[str]] = {}
    for doc in field_table.observed_documents():
        for name, value in field_table._leaves(doc):
            kind = field_table._value_type(value)
            if kind is not None:
                kinds.setdefault(name, set()).add("double" if kind == "long" else kind)
    mixed = {name: sorted(k) for name, k in kinds.items() if len(k - {"date"}) > 1}
    assert not mixed
    shapes = {n for n in kinds if any(o.startswith(n + ".") for o in kinds)}
    assert not shapes, "fields that are a value in some documents and an object in others"
