"""OCSF events checked against OCSF's own published schema, not against tables we wrote.

The schema is the export of schema.ocsf.io (``/<version>/export/schema``) that the PyPI package
``ocsf-json-schema`` ships for every release from 1.0.0 to 1.8.0; that package turns a class of it
into a JSON Schema (draft 2020-12: required attributes, types and their regexes, closed enums such as
``activity_id``/``type_uid``/``category_uid``/``severity_id``/``status_id``, no attribute outside the
class or object — ``unmapped`` is the open ``object`` type — and the ``at_least_one``/``just_one``
constraints), and ``jsonschema`` checks the event against it.

On top, what the OCSF server's event validator (``ocsf-server`` ``lib/schema/validator2.ex``) checks
and a JSON Schema cannot express, read from the same export:

* the profiles: only attributes of the profiles the event lists in ``metadata.profiles`` exist
  (``device`` is a ``host`` profile attribute of Network Activity, for example);
* ``type_uid == class_uid * 100 + activity_id``;
* ``metadata.version`` names a release (it is the one validated against unless a test asks for
  another);
* an enum's sibling (``activity_name``, ``severity``, ``status``, ``class_name``, ``type_name``,
  ``direction``, …) equals the enum caption, except for 99 (Other), whose sibling carries the source's
  own word (the server warns; here it is a problem);
* no attribute the release marks ``@deprecated`` is used.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema, get_packaged_versions

__all__ = ["NEWEST", "problems"]


def _release_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


NEWEST = max((v for v in get_packaged_versions() if "-" not in v), key=_release_key)
"""The newest OCSF release the installed ``ocsf-json-schema`` ships."""


@cache
def _export(version: str) -> dict[str, Any]:
    export: dict[str, Any] = get_ocsf_schema(version=version)
    return export


@cache
def _validator(version: str, class_uid: int, profiles: tuple[str, ...]) -> Draft202012Validator:
    schema = OcsfJsonSchemaEmbedded(_export(version))
    name = schema.lookup_class_name_from_uid(class_uid)
    return Draft202012Validator(schema.get_class_schema(name, list(profiles)))


def _class(version: str, class_uid: int) -> dict[str, Any] | None:
    for cls in _export(version)["classes"].values():
        if cls["uid"] == class_uid:
            found: dict[str, Any] = cls
            return found
    return None


def _in_profiles(attribute: dict[str, Any], profiles: frozenset[str]) -> bool:
    """An attribute of no profile always exists; one of a profile only when the event lists it
    (``profile`` in 1.x exports, ``profiles`` in the v2 export of 1.8.0)."""
    owners = attribute.get("profiles") or ([attribute["profile"]] if attribute.get("profile") else [])
    return not owners or any(p in profiles for p in owners)


def _walk(
    item: dict[str, Any],
    node: dict[str, Any],
    path: str,
    profiles: frozenset[str],
    objects: dict[str, Any],
    out: list[str],
) -> None:
    attributes = node.get("attributes") or {}
    for name, value in item.items():
        attribute = attributes.get(name)
        if attribute is None or not _in_profiles(attribute, profiles):
            continue  # unknown attributes are the JSON Schema's to report
        where = f"{path}.{name}" if path else name
        if "@deprecated" in attribute:
            out.append(f"{where}: deprecated in this release")
        sibling = attribute.get("sibling")
        enum = attribute.get("enum")
        if enum and sibling in item and value != 99 and not attribute.get("is_array"):
            caption = (enum.get(str(value)) or {}).get("caption")
            if caption is not None and item[sibling] != caption:
                out.append(f"{where}: {value} is {caption!r} but {sibling} is {item[sibling]!r}")
        if attribute.get("type") == "object_t":
            obj = objects.get(attribute.get("object_type") or "")
            if not obj or not obj.get("attributes"):
                continue  # ``object`` (unmapped, xattributes) is open
            for one in value if isinstance(value, list) else [value]:
                if isinstance(one, dict):
                    _walk(one, obj, where, profiles, objects, out)


def problems(doc: dict[str, Any], version: str | None = None) -> list[str]:
    """Everything OCSF's schema of ``version`` (default: the event's own ``metadata.version``) finds
    wrong with one event, all at once; ``[]`` when it is valid."""
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    declared = metadata.get("version") if isinstance(metadata, dict) else None
    release = version or declared
    if not isinstance(release, str) or release not in get_packaged_versions():
        return [f"metadata.version {declared!r} is no OCSF release the schema package ships"]
    class_uid = doc.get("class_uid")
    cls = _class(release, class_uid) if isinstance(class_uid, int) else None
    if cls is None:
        return [f"class_uid {class_uid!r} is no class of OCSF {release}"]
    listed = metadata.get("profiles") if isinstance(metadata, dict) else None
    profiles = tuple(sorted(p for p in listed if isinstance(p, str))) if isinstance(listed, list) else ()
    out = [
        f"{'.'.join(map(str, e.absolute_path)) or '<event>'}: {e.message}"
        for e in _validator(release, class_uid, profiles).iter_errors(doc)
    ]
    activity_id, type_uid = doc.get("activity_id"), doc.get("type_uid")
    if (
        isinstance(activity_id, int)
        and isinstance(type_uid, int)
        and type_uid != class_uid * 100 + activity_id
    ):
        out.append(
            f"type_uid {type_uid} is not class_uid*100 + activity_id = {class_uid * 100 + activity_id}"
        )
    _walk(doc, cls, "", frozenset(profiles), _export(release)["objects"], out)
    return out
