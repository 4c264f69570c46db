"""Target schemas: ECS stays primary; Splunk CIM and OCSF 1.x are pure mappings of the ECS document.

A mapper is ``ECS document -> document`` with no I/O and no state, so any sink can choose its schema
(``schema: cim`` on the NDJSON sink) and a consumer can re-map stored ECS documents later. The mapped
document shares nested parts (``unmapped.wireguard``) with the ECS document it came from: treat both as
read-only, as sinks already do with envelopes. See ``docs/schema.md`` for the field tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, get_args

from .cim import to_cim
from .families import FAMILIES, Family, family
from .ocsf import to_ocsf

__all__ = [
    "FAMILIES",
    "MAPPERS",
    "SCHEMAS",
    "Family",
    "Schema",
    "family",
    "map_document",
    "to_cim",
    "to_ocsf",
]

Schema = Literal["ecs", "cim", "ocsf"]
SCHEMAS: Final[tuple[Schema, ...]] = get_args(Schema)


def _ecs(doc: Mapping[str, Any]) -> dict[str, Any]:
    return doc if isinstance(doc, dict) else dict(doc)


MAPPERS: Final[dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]]] = {
    "ecs": _ecs,
    "cim": to_cim,
    "ocsf": to_ocsf,
}
"""Schema name → mapper. ``ecs`` is the identity (the same object, not a copy)."""


def map_document(doc: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """``doc`` (an ECS document) in ``schema``; raises ``ValueError`` for an unknown schema name."""
    try:
        mapper = MAPPERS[schema]
    except KeyError:
        raise ValueError(f"unknown schema {schema!r}; expected one of {', '.join(SCHEMAS)}") from None
    return mapper(doc)
