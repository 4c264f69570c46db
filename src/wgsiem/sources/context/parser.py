"""Pure parser: NDJSON bytes → typed context records, or a ParseError saying which line, which field,
and what was expected.

A body is NDJSON: one JSON object per line, each validated against the model of its kind (from the
URL or the file's config, else the record's own ``kind`` field). Ansible's json callback prints one
pretty-printed document instead of lines; a body whose first line is not JSON on its own but which is
one JSON object with ``plays`` and ``stats`` as a whole is taken as that document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from wgsiem.errors import Location, ParseError
from wgsiem.sources.context.schema import MODELS, AnsibleRun, ContextRecord

__all__ = ["KINDS", "ParsedLine", "detect_kind", "parse_body", "parse_record"]

KINDS = ("identity", "edr", "change", "config_run")
MAX_LINE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParsedLine:
    line: int  # 1-based
    record: ContextRecord


def _expected(err: dict[str, Any]) -> str:
    etype = err.get("type", "")
    ctx = err.get("ctx") or {}
    if etype == "missing":
        return "field is required"
    if etype == "extra_forbidden":
        return "unknown field (see docs/sources/context.md for the schema)"
    if etype == "literal_error":
        return f"expected {ctx.get('expected', 'one of the documented values')}, got {err.get('input')!r}"
    if etype.startswith("timezone_aware") or etype.startswith("datetime"):
        return (
            f"expected an RFC 3339 time with a timezone, e.g. 2026-01-31T12:00:00Z, got {err.get('input')!r}"
        )
    if etype in ("ip_any_address",):
        return f"expected an IPv4 or IPv6 address, got {err.get('input')!r}"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    value = err.get("input")
    if etype.endswith("_type") or etype.endswith("_parsing"):
        msg = msg.replace("Input should be", "expected")
        if isinstance(value, str | int | float | bool) or value is None:
            return f"{msg}, got {value!r}"
        return f"{msg}, got {type(value).__name__}"
    return msg


def _error(origin: str, line: int, what: str, fix: str | None = None) -> ParseError:
    return ParseError(f"line {line}: {what}", location=Location(origin, line=line), fix=fix)


def detect_kind(obj: dict[str, Any]) -> str | None:
    """The record's kind when the sender did not say: its ``kind`` field, or Ansible's document shape."""
    kind = obj.get("kind")
    if isinstance(kind, str):
        return kind
    if "plays" in obj and "stats" in obj:
        return "config_run"
    return None


def parse_record(obj: Any, kind: str | None, origin: str, line: int) -> ContextRecord:
    """One decoded JSON value → a record, or a ParseError naming the field and what it should be."""
    if not isinstance(obj, dict):
        raise _error(origin, line, f"expected a JSON object, got {type(obj).__name__}")
    own = detect_kind(obj)
    if kind is None:
        kind = own
        if kind is None:
            raise _error(
                origin, line, "cannot tell the record's kind", f'add "kind": one of {", ".join(KINDS)}'
            )
    elif "kind" in obj and obj["kind"] != kind:
        raise _error(origin, line, f"field `kind`: {obj['kind']!r} sent to the {kind!r} endpoint or file")
    if kind not in MODELS:
        raise _error(origin, line, f"field `kind`: unknown kind {kind!r}", f"use one of {', '.join(KINDS)}")
    try:
        if kind == "config_run" and "plays" in obj:
            return AnsibleRun.model_validate(obj)
        record: ContextRecord = MODELS[kind].model_validate(obj)  # type: ignore[assignment]
        return record
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "record"
            parts.append(f"field `{field}`: {_expected(dict(err))}")
        raise _error(origin, line, "; ".join(parts)) from None


def parse_body(
    data: bytes, kind: str | None = None, origin: str = "body", first_line: int = 1
) -> tuple[list[ParsedLine], list[ParseError]]:
    """Every good record with its line number, and a ParseError per bad line; never raises."""
    records: list[ParsedLine] = []
    errors: list[ParseError] = []
    lines = data.split(b"\n")
    whole = _whole_document(data, lines, kind)
    if whole is not None:
        try:
            return [ParsedLine(first_line, parse_record(whole, kind, origin, first_line))], []
        except ParseError as exc:
            return [], [exc]
    for i, raw in enumerate(lines):
        n = first_line + i
        raw = raw.strip()
        if not raw:
            continue
        if len(raw) > MAX_LINE_BYTES:
            errors.append(_error(origin, n, f"line is {len(raw)} bytes, over {MAX_LINE_BYTES}"))
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            errors.append(_error(origin, n, f"invalid JSON ({exc})", "send one JSON object per line"))
            continue
        try:
            records.append(ParsedLine(n, parse_record(obj, kind, origin, n)))
        except ParseError as exc:
            errors.append(exc)
    return records, errors


def _whole_document(data: bytes, lines: list[bytes], kind: str | None) -> Any:
    if kind not in (None, "config_run"):
        return None
    first = next((ln.strip() for ln in lines if ln.strip()), b"")
    if first != b"{":  # a pretty-printed document opens with a lone brace
        return None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) and "plays" in obj else None
