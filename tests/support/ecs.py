"""Validate documents against the ECS field definitions in shared/reference/ecs/ecs_flat.yml.

Checks, for every leaf of a document outside the custom ``wireguard.*`` namespace: the field exists in
ECS; its value has the field's type (keyword, long, ip, date, …; arrays where ECS says ``array`` or the
value is a list); the categorization fields (event.kind/category/type/outcome) use allowed values; and
every ``event.type`` is expected for at least one of the event's categories.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ecs" / "ecs_flat.yml"
CUSTOM_NAMESPACES = ("wireguard.",)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@functools.cache
def ecs_fields() -> dict[str, dict[str, Any]]:
    path = REFERENCE
    if not path.exists():  # CI clones main beside a copy of shared/
        path = Path.cwd().parent / "shared" / "reference" / "ecs" / "ecs_flat.yml"
    return yaml.safe_load(path.read_text())


def _flatten(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in doc.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_flatten(v, name + "."))
        else:
            out.append((name, v))
    return out


def _type_ok(ftype: str, v: Any) -> bool:
    if ftype in ("keyword", "constant_keyword", "wildcard", "match_only_text", "text"):
        return isinstance(v, str)
    if ftype == "long":
        return isinstance(v, int) and not isinstance(v, bool)
    if ftype in ("float", "scaled_float", "double"):
        return isinstance(v, int | float) and not isinstance(v, bool)
    if ftype == "boolean":
        return isinstance(v, bool)
    if ftype == "ip":
        try:
            ipaddress.ip_address(v)
            return True
        except (ValueError, TypeError):
            return False
    if ftype == "date":
        if not isinstance(v, str) or not _DATE.match(v):
            return False
        datetime.fromisoformat(v.replace("Z", "+00:00"))
        return True
    if ftype in ("object", "flattened", "nested"):
        return isinstance(v, dict | list)
    return True


def validate(doc: dict[str, Any]) -> list[str]:
    """Every problem found in ``doc`` (empty list = valid)."""
    fields = ecs_fields()
    problems: list[str] = []
    for name, value in _flatten(doc):
        if name.startswith(CUSTOM_NAMESPACES):
            continue
        spec = fields.get(name)
        if spec is None:
            problems.append(f"{name}: not an ECS field")
            continue
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and "array" not in spec.get("normalize", []):
            problems.append(f"{name}: ECS does not define it as an array")
        for v in values:
            if not _type_ok(spec["type"], v):
                problems.append(f"{name}: {v!r} is not a valid {spec['type']}")
        allowed = spec.get("allowed_values")
        if allowed:
            names = {a["name"] for a in allowed}
            for v in values:
                if v not in names:
                    problems.append(f"{name}: {v!r} is not an allowed value")
    if "@timestamp" not in doc:
        problems.append("@timestamp: required")
    ev = doc.get("event", {})
    cats = {a["name"]: a.get("expected_event_types", []) for a in fields["event.category"]["allowed_values"]}
    for t in ev.get("type", []):
        if not any(t in cats.get(c, []) for c in ev.get("category", [])):
            problems.append(f"event.type: {t!r} is not expected for categories {ev.get('category')}")
    return problems
