"""Compile a pySigma condition tree into a predicate over one ECS document.

pySigma parses the rule and post-processes its condition into a tree whose inner nodes are
``ConditionAND`` / ``ConditionOR`` / ``ConditionNOT`` (``1 of`` / ``all of`` already resolved into
OR / AND of the named detections) and whose leaves are ``ConditionFieldEqualsValueExpression``
(field, typed value — modifiers already applied) or ``ConditionValueExpression`` (a keyword). We walk
that tree once per rule and build nested closures, so an event costs only the closures it reaches.

Semantics (Sigma specification, applied to ECS documents):

* field names are dotted ECS names, looked up through nested objects (``event.action`` →
  ``doc["event"]["action"]``) or as a flat key; a list on the way (``event.category``) matches when
  any element matches;
* plain strings compare case-insensitively (``cased`` makes them exact), ``*`` / ``?`` are wildcards
  (``contains`` / ``startswith`` / ``endswith`` are wildcards added by pySigma);
* ``re`` searches (unanchored, Sigma's meaning) with the rule's flags; ``cidr`` matches IP values in
  the network; ``gt/gte/lt/lte`` compare numbers; ``exists`` tests presence; ``null`` matches a
  missing field or a ``None`` value;
* a keyword (value without a field) matches any string anywhere in the document.

A value type the matcher does not implement (field references, placeholders, query expressions) is a
:class:`RuleCompileError` when the rule loads — never a silent non-match at run time.

**Per action** (:func:`compile_for_action`): the engine routes each event by its ``event.action`` and
knows that value before any rule runs, so it compiles each rule once per action it meets with every
leaf on ``event.action`` replaced by its outcome for that value (folded through AND / OR / NOT). A
rule such as ``event.dataset: x and event.action: [a, b]`` then costs one leaf on an ``a`` event, and
a rule or correlation base rule that cannot match the action is not called at all. This holds for
documents whose ``event`` is an object holding a string ``action`` — the nested walk then ends on that
string, so the leaf never reads anything else; the engine uses the general predicates otherwise.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

__all__ = [
    "ALWAYS",
    "NEVER",
    "Predicate",
    "RuleCompileError",
    "compile_condition",
    "compile_for_action",
    "field_values",
    "predicate_for",
    "referenced_fields",
    "required_values",
]

Predicate = Callable[[dict[str, Any]], bool]


class RuleCompileError(Exception):
    """The rule uses something the in-process matcher cannot evaluate."""


def ALWAYS(doc: dict[str, Any]) -> bool:
    """The predicate of a condition that holds for every document of the action it was compiled for."""
    return True


def NEVER(doc: dict[str, Any]) -> bool:
    """The predicate of a condition that cannot hold for the action it was compiled for."""
    return False


ACTION_FIELD = "event.action"


def field_values(doc: Any, name: str) -> list[Any]:
    """Every value at dotted ``name`` (nested or flat keys, lists flattened); empty when absent."""
    return _reader(name)(doc)


@functools.lru_cache(maxsize=4096)
def _reader(name: str) -> Callable[[Any], list[Any]]:
    """A compiled reader of dotted ``name``: a nested-dict walk first, the general search on a miss."""
    parts = name.split(".")

    def read(doc: Any) -> list[Any]:
        node = doc
        for part in parts:
            if type(node) is dict and part in node:
                node = node[part]
            else:
                break
        else:
            if type(node) is not list:
                return [node]
        out: list[Any] = []
        _collect(doc, parts, out)
        return out

    return read


_MISS: Any = object()
"""What a walker returns when the nested walk does not end on one non-array value."""


@functools.lru_cache(maxsize=4096)
def _walker(name: str) -> Callable[[Any], Any]:
    """The value at dotted ``name`` through nested objects, or ``_MISS`` when a step is missing or the
    value is an array — exactly the cases where :func:`_reader` takes its general path, which the
    compiled leaves then take too. The common depths are unrolled: this runs for every event a rule
    sees."""
    parts = name.split(".")
    if len(parts) == 1:
        (a,) = parts

        def walk1(doc: Any) -> Any:
            v = doc.get(a, _MISS) if type(doc) is dict else _MISS
            return v if type(v) is not list else _MISS

        return walk1
    if len(parts) == 2:
        a, b = parts

        def walk2(doc: Any) -> Any:
            n = doc.get(a) if type(doc) is dict else None
            v = n.get(b, _MISS) if type(n) is dict else _MISS
            return v if type(v) is not list else _MISS

        return walk2
    if len(parts) == 3:
        a, b, c = parts

        def walk3(doc: Any) -> Any:
            n = doc.get(a) if type(doc) is dict else None
            n = n.get(b) if type(n) is dict else None
            v = n.get(c, _MISS) if type(n) is dict else _MISS
            return v if type(v) is not list else _MISS

        return walk3

    def walk(doc: Any) -> Any:
        node = doc
        for part in parts:
            if type(node) is dict and part in node:
                node = node[part]
            else:
                return _MISS
        return node if type(node) is not list else _MISS

    return walk


def _collect(node: Any, parts: list[str], out: list[Any]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect(item, parts, out)
        return
    if not parts:
        out.append(node)
        return
    if not isinstance(node, dict):
        return
    # Longest flat key first: {"event.action": x} and {"event": {"action": x}} are the same field.
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in node:
            _collect(node[key], parts[i:], out)


def _leaves(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for v in node.values():
            yield from _leaves(v)
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v)
    else:
        yield node


def _text(v: Any) -> str | None:
    """The text a string comparison sees: strings, and numbers as written; ``None`` for anything else."""
    if type(v) is str:
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    return None


def _string_matcher(value: SigmaString) -> Callable[[Any], bool]:
    cased = isinstance(value, SigmaCasedString)
    if not value.contains_special():
        plain = value.to_plain()
        if cased:
            return lambda v: _text(v) == plain
        folded = plain.casefold()

        def equal(v: Any) -> bool:
            t = _text(v)
            return t is not None and t.casefold() == folded

        return equal
    pattern = ""
    for part in value.s:
        if part is SpecialChars.WILDCARD_MULTI:
            pattern += ".*"
        elif part is SpecialChars.WILDCARD_SINGLE:
            pattern += "."
        elif isinstance(part, str):
            pattern += re.escape(part)
        else:
            raise RuleCompileError(f"placeholder {part!r} is not supported; expand it before loading")
    rx = re.compile(pattern, re.DOTALL | (0 if cased else re.IGNORECASE))

    def wildcard(v: Any) -> bool:
        t = _text(v)
        return t is not None and rx.fullmatch(t) is not None

    return wildcard


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}

_RE_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}


def _value_matcher(value: Any) -> Callable[[Any], bool]:
    """A test of one field value against one Sigma value (for every type but exists/null)."""
    if isinstance(value, SigmaString):
        return _string_matcher(value)
    if isinstance(value, SigmaBool):
        b = value.boolean
        return lambda v: isinstance(v, bool) and v is b
    if isinstance(value, SigmaNumber):
        n = float(value.number)
        return lambda v: _number(v) == n
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for flag in value.flags:
            flags |= _RE_FLAGS[flag]
        rx = re.compile(str(value.regexp), flags)
        return lambda v: isinstance(v, str) and rx.search(v) is not None
    if isinstance(value, SigmaCIDRExpression):
        net = value.network

        def in_net(v: Any) -> bool:
            if not isinstance(v, str):
                return False
            try:
                return ipaddress.ip_address(v) in net
            except ValueError:
                return False

        return in_net
    if isinstance(value, SigmaCompareExpression):
        op = _COMPARE[value.op]
        ref = float(value.number.number)

        def compare(v: Any) -> bool:
            n = _number(v)
            return n is not None and op(n, ref)

        return compare
    if isinstance(value, SigmaExpansion):
        subs = [_value_matcher(v) for v in value.values]
        return lambda v: any(m(v) for m in subs)
    raise RuleCompileError(f"value type {type(value).__name__} is not supported by the in-process matcher")


def _leaf(field: str, value: Any) -> Predicate:
    read = _reader(field)
    if isinstance(value, SigmaExists):
        want = value.exists
        return lambda doc: any(v is not None for v in read(doc)) is want
    if isinstance(value, SigmaNull):
        return lambda doc: all(v is None for v in read(doc))
    test = _value_matcher(value)
    walk = _walker(field)

    def general(doc: dict[str, Any]) -> bool:  # a loop, not any(genexpr): this runs for every event
        for v in read(doc):  # noqa: SIM110
            if test(v):
                return True
        return False

    if type(value) is SigmaString and not value.contains_special():
        folded = value.to_plain().casefold()
        parts = field.split(".")
        if len(parts) == 2:  # `event.dataset: x`: the walk inlined too (a call costs a dozen lookups)
            a, b = parts

            def equals2(doc: dict[str, Any]) -> bool:
                n = doc.get(a) if type(doc) is dict else None
                v = n.get(b, _MISS) if type(n) is dict else _MISS
                if type(v) is str:
                    return v.casefold() == folded
                if v is _MISS or type(v) is list:
                    return general(doc)
                return test(v)

            return equals2

        def equals(doc: dict[str, Any]) -> bool:  # `field: value`, the commonest leaf, inlined
            v = walk(doc)
            if type(v) is str:
                return v.casefold() == folded
            return general(doc) if v is _MISS else test(v)

        return equals

    def leaf(doc: dict[str, Any]) -> bool:
        v = walk(doc)
        return general(doc) if v is _MISS else test(v)

    return leaf


def compile_condition(node: Any) -> Predicate:
    """Build a predicate from a post-processed pySigma condition tree."""
    if isinstance(node, ConditionAND):
        parts = [compile_condition(a) for a in node.args]
        if len(parts) == 2:  # the common shape, without a generator per event
            first, second = parts
            return lambda doc: first(doc) and second(doc)
        return lambda doc: all(p(doc) for p in parts)
    if isinstance(node, ConditionOR):
        if (one_of := _plain_one_of(node)) is not None:
            return one_of
        parts = [compile_condition(a) for a in node.args]
        if len(parts) == 2:
            left, right = parts
            return lambda doc: left(doc) or right(doc)
        return lambda doc: any(p(doc) for p in parts)
    if isinstance(node, ConditionNOT):
        inner = compile_condition(node.args[0])
        return lambda doc: not inner(doc)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _leaf(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        test = _value_matcher(node.value)
        return lambda doc: any(test(v) for v in _leaves(doc) if isinstance(v, str))
    raise RuleCompileError(f"condition node {type(node).__name__} is not supported")


def compile_for_action(node: Any, action: str) -> Predicate:
    """:func:`compile_condition` for documents whose ``event.action`` is ``action`` (nested, a string;
    see the module doc): :data:`ALWAYS` or :data:`NEVER` when the action alone decides."""
    out = _partial(node, action)
    if out is True:
        return ALWAYS
    if out is False:
        return NEVER
    return out


def predicate_for(conditions: tuple[Any, ...], action: str | None = None) -> Predicate:
    """The predicate of a rule's condition trees (any of them holds), compiled for ``action`` when
    given (:func:`compile_for_action`), else in general."""
    if action is None:
        preds = [compile_condition(c) for c in conditions]
    else:
        preds = [p for p in (compile_for_action(c, action) for c in conditions) if p is not NEVER]
        if not preds:
            return NEVER
        if any(p is ALWAYS for p in preds):
            return ALWAYS
    if len(preds) == 1:
        return preds[0]
    return lambda doc: any(p(doc) for p in preds)


def _partial(node: Any, action: str) -> Predicate | bool:
    """The condition with what ``action`` decides folded in: ``True``/``False``, or a predicate of the
    rest."""
    if isinstance(node, ConditionAND | ConditionOR):
        is_and = isinstance(node, ConditionAND)
        if isinstance(node, ConditionOR) and (one_of := _plain_one_of(node)) is not None:
            if next(iter(node.args)).field != ACTION_FIELD:  # type: ignore[union-attr]
                return one_of
            return action.casefold() in frozenset(
                a.value.to_plain().casefold()  # type: ignore[union-attr]
                for a in node.args
            )
        rest: list[Predicate] = []
        for arg in node.args:
            part = _partial(arg, action)
            if part is (not is_and):  # False in an AND, True in an OR decides it
                return part
            if part is not is_and:  # (True in an AND, False in an OR: no effect)
                rest.append(part)  # type: ignore[arg-type]
        if not rest:
            return is_and
        if len(rest) == 1:
            return rest[0]
        if len(rest) == 2:
            first, second = rest
            if is_and:
                return lambda doc: first(doc) and second(doc)
            return lambda doc: first(doc) or second(doc)
        if is_and:
            return lambda doc: all(p(doc) for p in rest)
        return lambda doc: any(p(doc) for p in rest)
    if isinstance(node, ConditionNOT):
        inner = _partial(node.args[0], action)
        if isinstance(inner, bool):
            return not inner
        return lambda doc: not inner(doc)
    if isinstance(node, ConditionFieldEqualsValueExpression) and node.field == ACTION_FIELD:
        # the nested walk ends on `action` itself (a string): what each leaf kind makes of it
        if isinstance(node.value, SigmaExists):
            return node.value.exists is True
        if isinstance(node.value, SigmaNull):
            return False
        return bool(_value_matcher(node.value)(action))
    return compile_condition(node)


def _plain_one_of(node: ConditionOR) -> Predicate | None:
    """``field: [a, b, c]`` of plain case-insensitive strings as one set lookup (the common shape)."""
    args = node.args
    if not args or not all(
        isinstance(a, ConditionFieldEqualsValueExpression)
        and type(a.value) is SigmaString
        and not a.value.contains_special()
        for a in args
    ):
        return None
    fields = {a.field for a in args}  # type: ignore[union-attr]
    if len(fields) != 1:
        return None
    name = fields.pop()
    read, walk = _reader(name), _walker(name)
    wanted = frozenset(a.value.to_plain().casefold() for a in args)  # type: ignore[union-attr]

    def general(doc: dict[str, Any]) -> bool:
        for v in read(doc):
            if type(v) is str:
                if v.casefold() in wanted:
                    return True
            elif isinstance(v, int | float) and not isinstance(v, bool) and str(v).casefold() in wanted:
                return True
        return False

    def one_of(doc: dict[str, Any]) -> bool:
        v = walk(doc)
        if type(v) is str:
            return v.casefold() in wanted
        if v is _MISS:
            return general(doc)
        return isinstance(v, int | float) and not isinstance(v, bool) and str(v).casefold() in wanted

    return one_of


def referenced_fields(node: Any) -> set[str]:
    """The field names a condition tree reads (for linting rules against ECS)."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return {node.field}
    out: set[str] = set()
    for arg in getattr(node, "args", None) or []:
        if not isinstance(arg, str):
            out |= referenced_fields(arg)
    return out


def required_values(node: Any, field: str) -> frozenset[str] | None:
    """The plain values ``field`` must (case-insensitively) equal for the condition to hold, or ``None``
    when the condition does not pin the field down (wildcards, negations, other fields).

    The engine uses it for ``event.action`` to skip, per event, the rules that cannot match.
    """
    if isinstance(node, ConditionFieldEqualsValueExpression):
        value = node.value
        if node.field == field and type(value) is SigmaString and not value.contains_special():
            return frozenset({value.to_plain().casefold()})
        return None
    if isinstance(node, ConditionOR):
        parts = [required_values(a, field) for a in node.args]
        if any(p is None for p in parts):
            return None
        return frozenset().union(*parts)  # type: ignore[arg-type]
    if isinstance(node, ConditionAND):
        known = [p for p in (required_values(a, field) for a in node.args) if p is not None]
        if not known:
            return None
        out = known[0]
        for p in known[1:]:
            out &= p
        return out
    return None
