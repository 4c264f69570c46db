"""The index templates and the ILM policy, as the request bodies of the documented APIs.

Why these choices:

* **One index template per dataset** (``logs-wireguard.<dataset>-*``, priority 200), each holding only
  the fields that dataset emits, like Elastic's own integrations do. A catch-all ``logs-wireguard.*-*``
  template (priority 150) covers datasets added later. All outrank the stack's built-in ``logs``
  template (priority 100).
* **The mappings are generated** from real documents (``fields.yaml``, see the header of that file):
  ECS fields take their ECS type, ``wireguard.*`` fields the type their values have. A field that is a
  value in some documents and an object in others within one data stream is kept in ``_source`` only
  (``enabled: false``) so neither shape is rejected.
* **OpenSearch** gets the same templates with the types it lacks replaced (``constant_keyword`` and
  ``wildcard`` → ``keyword``, ``match_only_text`` → ``text``, ``flattened`` → ``flat_object``) and no
  ILM setting (OpenSearch retention is ISM, configured by the operator).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Literal

import yaml

__all__ = [
    "CATCH_ALL",
    "ILM_POLICY",
    "SETTINGS_COMPONENT",
    "component_templates",
    "field_tables",
    "ilm_policy",
    "index_templates",
    "mappings",
]

Distribution = Literal["elasticsearch", "opensearch"]
ILM_POLICY = "wgsiem-logs"
SETTINGS_COMPONENT = "logs-wireguard@settings"
CATCH_ALL = "*"
_META = {"managed_by": "wgsiem", "description": "wgsiem WireGuard security events (ECS)"}
_OPENSEARCH_TYPES = {
    "constant_keyword": "keyword",
    "wildcard": "keyword",
    "match_only_text": "text",
    "flattened": "flat_object",
}
_DYNAMIC_TEMPLATES = [
    {
        "wireguard_strings": {
            "path_match": "wireguard.*",
            "match_mapping_type": "string",
            "mapping": {"type": "keyword", "ignore_above": 1024},
        }
    },
    {
        "strings_as_keyword": {
            "match_mapping_type": "string",
            "mapping": {"type": "keyword", "ignore_above": 1024},
        }
    },
]


@functools.cache
def field_tables() -> dict[str, dict[str, dict[str, Any]]]:
    """``{dataset: {field: mapping}}`` from the packaged ``fields.yaml``; ``"*"`` is every dataset."""
    text = (resources.files("wgsiem.sinks.elasticsearch") / "fields.yaml").read_text()
    tables: dict[str, dict[str, dict[str, Any]]] = yaml.safe_load(text)
    return tables


def mappings(dataset: str, distribution: Distribution = "elasticsearch") -> dict[str, Any]:
    """The ``mappings`` object for one dataset (``wireguard.state``…) or :data:`CATCH_ALL`."""
    properties: dict[str, Any] = {}
    for name, spec in field_tables()[dataset].items():
        node = properties
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {"properties": {}})["properties"]
        entry = dict(spec)
        if distribution == "opensearch":
            entry["type"] = _OPENSEARCH_TYPES.get(entry["type"], entry["type"])
            if entry["type"] == "flat_object":
                entry.pop("ignore_above", None)
        node[leaf] = entry
    return {"dynamic_templates": _DYNAMIC_TEMPLATES, "properties": properties}


def _stream_pattern(dataset: str) -> str:
    return "logs-wireguard.*-*" if dataset == CATCH_ALL else f"logs-{dataset}-*"


def _mappings_component(dataset: str) -> str:
    return "logs-wireguard@mappings" if dataset == CATCH_ALL else f"logs-{dataset}@mappings"


def _template_name(dataset: str) -> str:
    return "logs-wireguard" if dataset == CATCH_ALL else f"logs-{dataset}"


def component_templates(
    distribution: Distribution = "elasticsearch", *, ilm: bool = True
) -> dict[str, dict[str, Any]]:
    """``PUT _component_template/<name>`` bodies: the shared settings and one mappings per dataset."""
    settings: dict[str, Any] = {"index": {"mapping": {"total_fields": {"limit": 2000}}}}
    if ilm and distribution == "elasticsearch":
        settings["index"]["lifecycle"] = {"name": ILM_POLICY}
    out: dict[str, dict[str, Any]] = {
        SETTINGS_COMPONENT: {"template": {"settings": settings}, "_meta": _META},
    }
    for dataset in field_tables():
        out[_mappings_component(dataset)] = {
            "template": {"mappings": mappings(dataset, distribution)},
            "_meta": _META,
        }
    return out


def index_templates() -> dict[str, dict[str, Any]]:
    """``PUT _index_template/<name>`` bodies (composable templates for the data streams)."""
    out: dict[str, dict[str, Any]] = {}
    for dataset in field_tables():
        out[_template_name(dataset)] = {
            "index_patterns": [_stream_pattern(dataset)],
            "data_stream": {},
            "priority": 150 if dataset == CATCH_ALL else 200,
            "composed_of": [SETTINGS_COMPONENT, _mappings_component(dataset)],
            "_meta": _META,
        }
    return out


def ilm_policy(
    *, retention_days: int = 180, rollover_max_age_days: int = 1, rollover_max_primary_shard_size_gb: int = 50
) -> dict[str, Any]:
    """``PUT _ilm/policy/wgsiem-logs`` body: roll over in hot, force-merge in warm, delete at retention."""
    warm_after = min(7, max(1, retention_days // 2))
    phases: dict[str, Any] = {
        "hot": {
            "min_age": "0ms",
            "actions": {
                "rollover": {
                    "max_age": f"{rollover_max_age_days}d",
                    "max_primary_shard_size": f"{rollover_max_primary_shard_size_gb}gb",
                },
                "set_priority": {"priority": 100},
            },
        },
        "delete": {"min_age": f"{retention_days}d", "actions": {"delete": {}}},
    }
    if retention_days > warm_after:
        phases["warm"] = {
            "min_age": f"{warm_after}d",
            "actions": {"forcemerge": {"max_num_segments": 1}, "set_priority": {"priority": 50}},
        }
    return {"policy": {"phases": phases, "_meta": _META}}
