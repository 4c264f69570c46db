"""The webhook body template: ``${field.path}`` substitution over a JSON *structure* (pure).

Why not Jinja2 (sandboxed or not): a webhook body is data, not a page. Substituting into the parsed
template — never into JSON text — means an event's value can never break out of its string or inject
keys (a peer name containing ``"}`` stays a string), the output is always valid JSON (orjson encodes
it), there is no expression language to escape from, no dependency, and a bad placeholder is found
when the config is loaded, not at 3 a.m. on the first event.

Rules:

* a string that is exactly ``${path}`` is replaced by the value at ``path`` with its JSON type
  (object, list, number, bool, string), or ``null`` if absent; ``${.}`` is the whole document;
* ``${path}`` inside a longer string is replaced by the value's text (strings as is, others as
  compact JSON, absent as the empty string);
* ``$${`` is a literal ``${``; keys are never templated;
* ``path`` is dot-separated; at each level the longest key that exists wins, so ECS's flat
  ``"@timestamp"`` and a key with a dot in it both resolve.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["Render", "compile_template", "lookup"]

Render = Callable[[dict[str, Any]], Any]

_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_PATH = re.compile(r"^(\.|[A-Za-z0-9_@][A-Za-z0-9_@\-]*(\.[A-Za-z0-9_@][A-Za-z0-9_@\-]*)*)$")
_MISSING = object()


def lookup(doc: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``doc`` (``.`` is ``doc``); ``None`` if absent."""
    if path == ".":
        return doc
    got = _walk(doc, path.split("."))
    return None if got is _MISSING else got


def _walk(node: Any, parts: list[str]) -> Any:
    if not parts:
        return node
    if not isinstance(node, dict):
        return _MISSING
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in node:
            got = _walk(node[key], parts[i:])
            if got is not _MISSING:
                return got
    return _MISSING


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode()


def _compile_str(s: str) -> Render | str:
    parts: list[str | tuple[str]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(s):
        parts.append(s[pos : m.start()])
        pos = m.end()
        if m.group(0) == "$${":
            parts.append("${")
            continue
        path = m.group(1).strip()
        if not _PATH.match(path):
            raise ValueError(
                f"body_template: bad placeholder ${{{m.group(1)}}} — use ${{field.path}} (letters, digits, "
                "_ - @, dot-separated) or ${.} for the whole document"
            )
        parts.append((path,))
    parts.append(s[pos:])
    parts = [p for p in parts if p != ""]
    if not any(isinstance(p, tuple) for p in parts):
        return "".join(p for p in parts if isinstance(p, str))
    if len(parts) == 1 and isinstance(parts[0], tuple):
        path = parts[0][0]
        return lambda doc: lookup(doc, path)
    frozen = tuple(parts)

    def render(doc: dict[str, Any]) -> str:
        return "".join(p if isinstance(p, str) else _text(lookup(doc, p[0])) for p in frozen)

    return render


def compile_template(template: Any) -> Render:
    """A function document → body value; raises :class:`ValueError` naming a bad placeholder."""
    if template is None:
        return lambda doc: doc
    node = _compile(template)
    return node if callable(node) else (lambda doc: node)


def _compile(t: Any) -> Any:
    if isinstance(t, str):
        return _compile_str(t)
    if isinstance(t, dict):
        items = [(str(k), _compile(v)) for k, v in t.items()]
        if not any(callable(v) for _, v in items):
            return dict(items)

        def render_dict(doc: dict[str, Any]) -> dict[str, Any]:
            return {k: (v(doc) if callable(v) else v) for k, v in items}

        return render_dict
    if isinstance(t, list):
        elems = [_compile(v) for v in t]
        if not any(callable(v) for v in elems):
            return elems

        def render_list(doc: dict[str, Any]) -> list[Any]:
            return [v(doc) if callable(v) else v for v in elems]

        return render_list
    if t is None or isinstance(t, bool | int | float):
        return t
    raise ValueError(f"body_template: unsupported value of type {type(t).__name__}")
