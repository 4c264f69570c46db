"""A small model of exactly the ingest processors ``wgsiem-wg-dump`` uses — NOT Elasticsearch.

There is no Elasticsearch here. This interprets, from the Elastic ingest processor reference, the
processors ``dissect``, ``set`` (``value``/``copy_from``, the ``{{ _ingest.on_failure_message }}``
template), ``gsub``, ``convert``, ``split``, ``date`` (``UNIX`` only), ``remove``, ``rename``, the
common options ``if``/``ignore_failure``/``on_failure``/``tag``, and pipeline-level ``on_failure``.
Anything else (another processor, a dissect modifier other than ``?``/``->``, a condition outside
``ctx.a?.b (==|!=) (null|'literal')`` joined by ``&&``) raises :class:`NotModelled`, so the
pipeline cannot drift into features this model would silently get wrong.

Semantics modelled (from the docs):

* dissect: delimiters are matched left to right, each at its first occurrence after the previous
  key's value; the last key takes the rest of the line; every key must get a non-empty value; a
  pattern that does not match sets nothing and fails; ``%{}``/``%{?name}`` match but are not
  stored; ``->`` skips repeated delimiters.
* convert ``long``: decimal (or 0x hex) strings; ``boolean``: ``true``/``false`` ignoring case;
  ``ip``: a valid IPv4/IPv6 address, kept as a string.
* date ``UNIX``: epoch seconds (fraction allowed) → ``yyyy-MM-dd'T'HH:mm:ss.SSSZ`` in UTC (``...Z``).
* gsub: Java regex replacement with ``$n`` group references (translated to Python's ``\\g<n>``).
* split: regex separator, trailing empty strings dropped.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from datetime import UTC, datetime
from typing import Any

__all__ = ["NotModelled", "ProcessorFailure", "run_pipeline"]


class NotModelled(Exception):
    """The pipeline uses something this model does not implement."""


class ProcessorFailure(Exception):
    pass


_MISSING = object()


def _get(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ProcessorFailure(f"cannot add field [{path}]: [{part}] is not an object")
        node = child
    node[leaf] = value


def _delete(doc: dict[str, Any], path: str) -> bool:
    *parents, leaf = path.split(".")
    node: Any = doc
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf in node:
        del node[leaf]
        return True
    return False


# ------------------------------------------------------------------ conditions
_COND = re.compile(r"^ctx((?:\??\.[A-Za-z_][A-Za-z0-9_]*)+)\s*(==|!=)\s*(null|'[^']*')$")


def _condition(expr: str, doc: dict[str, Any]) -> bool:
    result = True
    for clause in expr.split("&&"):
        m = _COND.match(clause.strip())
        if not m:
            raise NotModelled(f"condition {clause.strip()!r}")
        chain, op, literal = m.groups()
        parts = re.findall(r"(\?)?\.([A-Za-z_][A-Za-z0-9_]*)", chain)
        node: Any = doc
        for safe, name in parts:
            if node is None:
                if safe:  # a?.b on a null a is null
                    break
                raise ProcessorFailure(f"null pointer in {clause.strip()!r}")
            if not isinstance(node, dict):
                raise NotModelled(f"field access on a non-map in {clause.strip()!r}")
            node = node.get(name)
        value = None if literal == "null" else literal[1:-1]
        equal = node == value
        result = result and (equal if op == "==" else not equal)
    return result


# ------------------------------------------------------------------ dissect
_KEY = re.compile(r"%\{([^}]*)\}")


def _dissect(pattern: str, text: str) -> dict[str, str] | None:
    keys: list[tuple[str, bool, bool]] = []  # (name, skip, right padding)
    delims: list[str] = []
    pos = 0
    prefix = ""
    for m in _KEY.finditer(pattern):
        between = pattern[pos : m.start()]
        if not keys:
            prefix = between
        else:
            delims.append(between)
        raw = m.group(1)
        pad = raw.endswith("->")
        raw = raw.removesuffix("->")
        if raw[:1] in ("+", "*", "&") or "/" in raw:
            raise NotModelled(f"dissect modifier in %{{{m.group(1)}}}")
        skip = raw == "" or raw.startswith("?")
        keys.append((raw.lstrip("?"), skip, pad))
        pos = m.end()
    suffix = pattern[pos:]
    if suffix:
        raise NotModelled("dissect pattern with trailing literal text")
    if not text.startswith(prefix):
        return None
    rest = text[len(prefix) :]
    out: dict[str, str] = {}
    for i, (name, skip, pad) in enumerate(keys):
        if i == len(keys) - 1:
            value = rest
        else:
            delim = delims[i]
            at = rest.find(delim)
            if at < 0 or delim == "":
                return None
            value = rest[:at]
            rest = rest[at + len(delim) :]
            if pad:
                while rest.startswith(delim):
                    rest = rest[len(delim) :]
        if not skip:
            if value == "":  # "Successful matches require all keys in a pattern to have a value"
                return None
            out[name] = value
    return out


# ------------------------------------------------------------------ processors
def _convert(value: Any, kind: str) -> Any:
    text = str(value)
    if kind in ("long", "integer"):
        try:
            return int(text, 16) if text.lower().startswith(("0x", "-0x")) else int(text, 10)
        except ValueError:
            raise ProcessorFailure(f"unable to convert [{text}] to {kind}") from None
    if kind == "boolean":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ProcessorFailure(f"[{text}] is not a boolean value, cannot convert to boolean")
    if kind == "ip":
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise ProcessorFailure(f"'{text}' is not a valid ip address") from None
        return text
    if kind == "string":
        return text
    raise NotModelled(f"convert type {kind}")


def _render(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str) and "{{" in value:
        if value.strip() != "{{ _ingest.on_failure_message }}":
            raise NotModelled(f"template {value!r}")
        return context.get("on_failure_message", "")
    return copy.deepcopy(value)


def _apply(kind: str, opts: dict[str, Any], doc: dict[str, Any], context: dict[str, Any]) -> None:
    field = opts.get("field")
    if kind == "dissect":
        text = _get(doc, field)
        if text is _MISSING:
            if opts.get("ignore_missing"):
                return
            raise ProcessorFailure(f"field [{field}] not present as part of path [{field}]")
        found = _dissect(opts["pattern"], str(text))
        if found is None:
            raise ProcessorFailure(
                f"Unable to find match for dissect pattern: {opts['pattern']} against source"
            )
        for name, value in found.items():
            _put(doc, name, value)
    elif kind == "set":
        if "copy_from" in opts:
            value = _get(doc, opts["copy_from"])
            if value is _MISSING:
                raise ProcessorFailure(f"field [{opts['copy_from']}] not present")
            value = copy.deepcopy(value)
        else:
            value = _render(opts["value"], context)
        if opts.get("override", True) or _get(doc, field) is _MISSING:
            _put(doc, field, value)
    elif kind in ("gsub", "convert", "split", "date", "rename"):
        value = _get(doc, field)
        if value is _MISSING:
            if opts.get("ignore_missing"):
                return
            raise ProcessorFailure(f"field [{field}] not present as part of path [{field}]")
        target = opts.get("target_field", field)
        if kind == "gsub":
            replacement = re.sub(r"\$(\d+)", r"\\g<\1>", opts["replacement"])
            _put(doc, target, re.sub(opts["pattern"], replacement, str(value)))
        elif kind == "convert":
            _put(doc, target, _convert(value, opts["type"]))
        elif kind == "split":
            parts = re.split(opts["separator"], str(value))
            while parts and parts[-1] == "" and not opts.get("preserve_trailing"):
                parts.pop()
            _put(doc, target, parts)
        elif kind == "date":
            if opts["formats"] != ["UNIX"]:
                raise NotModelled(f"date formats {opts['formats']}")
            try:
                seconds = float(str(value))
            except ValueError:
                raise ProcessorFailure(f"unable to parse date [{value}]") from None
            when = datetime.fromtimestamp(seconds, UTC)
            _put(doc, target, when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z")
        else:  # rename
            if _get(doc, opts["target_field"]) is not _MISSING and not opts.get("override"):
                raise ProcessorFailure(f"field [{opts['target_field']}] already exists")
            _delete(doc, field)
            _put(doc, opts["target_field"], value)
    elif kind == "remove":
        for name in field if isinstance(field, list) else [field]:
            if not _delete(doc, name) and not opts.get("ignore_missing"):
                raise ProcessorFailure(f"field [{name}] not present as part of path [{name}]")
    else:
        raise NotModelled(f"processor {kind}")


_COMMON = {"if", "tag", "ignore_failure", "on_failure", "description"}


def _run(processors: list[dict[str, Any]], doc: dict[str, Any], context: dict[str, Any]) -> None:
    for proc in processors:
        ((kind, opts),) = proc.items()
        cond = opts.get("if")
        if cond is not None and not _condition(cond, doc):
            continue
        try:
            _apply(kind, {k: v for k, v in opts.items() if k not in _COMMON}, doc, context)
        except ProcessorFailure as exc:
            if opts.get("ignore_failure"):
                continue
            if "on_failure" in opts:
                _run(opts["on_failure"], doc, {**context, "on_failure_message": str(exc)})
                continue
            raise


def run_pipeline(pipeline: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """The document after the pipeline (a copy); pipeline ``on_failure`` handles the first failure."""
    out = copy.deepcopy(doc)
    try:
        _run(pipeline["processors"], out, {})
    except ProcessorFailure as exc:
        if "on_failure" not in pipeline:
            raise
        _run(pipeline["on_failure"], out, {"on_failure_message": str(exc)})
    return out
