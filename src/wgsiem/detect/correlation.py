"""Sigma correlation rules (``event_count``, ``value_count``, ``temporal``) evaluated over event time.

A correlation rule file is a multi-document YAML file: the base rules (plain Sigma rules with a
``name``) and then the correlation rule, which carries wgsiem's ``wgsiem:`` block. pySigma's
:class:`~sigma.collection.SigmaCollection` parses it and resolves the references; the base rules are
*hidden* — they feed the correlation and raise no alert of their own (Sigma's ``generate: false``,
the default; ``generate: true`` is refused because each alert needs its own metadata file).

Evaluation, per group (the values of ``group-by`` in the event; a missing field groups as ``""``):

* ``event_count``: the times of base-rule matches within ``timespan``; the condition is tested on
  their number after each match;
* ``value_count``: the distinct values of ``condition.field`` within ``timespan`` (last time each was
  seen); tested on how many there are;
* ``temporal``: the last time each referenced rule matched; fires when the number of rules matched
  within ``timespan`` satisfies the condition (default: all of them).

It fires on the event that makes the condition true; the engine's gate then throttles repeats per
rule and entity. State is bounded: at most ``max_groups`` groups (least recently used go first), each
holding at most ``threshold + 1`` times or values — enough to decide ``gte``/``gt``/``eq`` — and
nothing older than the timespan.
"""

from __future__ import annotations

import functools
import operator
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)

from .match import _MISS, ALWAYS, NEVER, Predicate, RuleCompileError, _walker, field_values, predicate_for

__all__ = ["Correlation", "CorrelationState", "compile_correlation"]

_OPS: dict[SigmaCorrelationConditionOperator, Callable[[float, float], bool]] = {
    SigmaCorrelationConditionOperator.LT: operator.lt,
    SigmaCorrelationConditionOperator.LTE: operator.le,
    SigmaCorrelationConditionOperator.GT: operator.gt,
    SigmaCorrelationConditionOperator.GTE: operator.ge,
    SigmaCorrelationConditionOperator.EQ: operator.eq,
    SigmaCorrelationConditionOperator.NEQ: operator.ne,
}
_SUPPORTED = {
    SigmaCorrelationType.EVENT_COUNT,
    SigmaCorrelationType.VALUE_COUNT,
    SigmaCorrelationType.TEMPORAL,
}


@dataclass(frozen=True, slots=True)
class Correlation:
    """A compiled correlation: the base predicates (by rule name) and the window logic."""

    type: str
    base: tuple[tuple[str, Predicate], ...]
    group_by: tuple[str, ...]
    timespan_secs: float
    op: Callable[[float, float], bool]
    threshold: float
    value_field: str | None
    base_conditions: tuple[tuple[Any, ...], ...] = ()
    """Per base rule (as ``base``), its parsed condition trees — to compile it per ``event.action``
    (:meth:`CorrelationState.observer`); empty: only the general predicates."""
    base_compiled: tuple[Predicate, ...] = ()
    """The predicates ``base_conditions`` compiled to: a base rule whose predicate in ``base`` is no
    longer that one (a copy with another predicate) is not compiled per action."""

    @property
    def keep(self) -> int:
        """How many times/values a group must hold to decide the condition."""
        return int(self.threshold) + 1


def compile_correlation(
    rule: SigmaCorrelationRule,
    base: dict[str, Predicate],
    conditions: dict[str, tuple[Any, ...]] | None = None,
) -> Correlation:
    """``base`` maps each referenced rule's name (and id) to its compiled predicate, ``conditions`` to
    its parsed condition trees (for the per-action predicates)."""
    if rule.type not in _SUPPORTED:
        raise RuleCompileError(f"correlation type {rule.type.name.lower()} is not supported in-process")
    if rule.generate:
        raise RuleCompileError("`generate: true` is not supported: give each alerting rule its own file")
    if len(rule.aliases):
        raise RuleCompileError("field aliases are not supported; use the same field name in the base rules")
    preds: list[tuple[str, Predicate]] = []
    trees: list[tuple[Any, ...]] = []
    for ref in rule.rules or []:
        if ref.reference not in base:
            raise RuleCompileError(f"referenced rule {ref.reference!r} is not in the same file")
        preds.append((ref.reference, base[ref.reference]))
        trees.append((conditions or {}).get(ref.reference, ()))
    cond = rule.condition
    if isinstance(cond, SigmaCorrelationCondition):
        op, threshold = _OPS[cond.op], float(cond.count)
        fieldref = cond.fieldref if isinstance(cond.fieldref, str) else None
    elif rule.type is SigmaCorrelationType.TEMPORAL and cond is None:
        op, threshold, fieldref = operator.ge, float(len(preds)), None
    else:
        raise RuleCompileError("extended correlation conditions are not supported in-process")
    if rule.type is SigmaCorrelationType.VALUE_COUNT and not fieldref:
        raise RuleCompileError("value_count needs condition.field")
    return Correlation(
        type=rule.type.name.lower(),
        base=tuple(preds),
        group_by=tuple(rule.group_by or ()),
        timespan_secs=float(rule.timespan.seconds),
        op=op,
        threshold=threshold,
        value_field=fieldref,
        base_conditions=tuple(trees) if all(trees) else (),
        base_compiled=tuple(p for _, p in preds) if all(trees) else (),
    )


def _scalar(doc: dict[str, Any], name: str) -> str:
    """The text of ``name`` in ``doc`` for grouping: the nested value, else the first scalar Sigma's
    general lookup finds, else ``""``."""
    return _scalar_reader(name)(doc)


@functools.lru_cache(maxsize=1024)
def _scalar_reader(name: str) -> Callable[[dict[str, Any]], str]:
    walk = _walker(name)

    def slow(doc: dict[str, Any], v: Any) -> str:
        if v is not _MISS and v is not None and type(v) is not dict:
            return v if type(v) is str else str(v)
        for v in field_values(doc, name):
            if v is not None and not isinstance(v, dict | list):
                return str(v)
        return ""

    parts = name.split(".")
    if len(parts) == 3:  # `wireguard.peer.public_key`: the walk inlined (a call costs a dozen lookups)
        a, b, c = parts

        def scalar3(doc: dict[str, Any]) -> str:
            n = doc.get(a) if type(doc) is dict else None
            n = n.get(b) if type(n) is dict else None
            v = n.get(c, _MISS) if type(n) is dict else _MISS
            return v if type(v) is str else slow(doc, v if type(v) is not list else _MISS)

        return scalar3
    if len(parts) == 2:
        a, b = parts

        def scalar2(doc: dict[str, Any]) -> str:
            n = doc.get(a) if type(doc) is dict else None
            v = n.get(b, _MISS) if type(n) is dict else _MISS
            return v if type(v) is str else slow(doc, v if type(v) is not list else _MISS)

        return scalar2

    def scalar(doc: dict[str, Any]) -> str:
        # nested objects first (what sources write), then Sigma's general lookup
        return slow(doc, walk(doc))

    return scalar


class CorrelationState:
    """The windows of one correlation rule, bounded to ``max_groups`` groups.

    The per-event path is compiled at construction (the base predicates, the group-by readers, the
    window of the correlation's type), so an event costs its predicates and, on a match, a few dict
    and list operations.
    """

    def __init__(self, corr: Correlation, max_groups: int = 50_000, max_evidence: int = 10) -> None:
        self.corr = corr
        self.max_groups = max_groups
        self.max_evidence = max_evidence
        # group key → [times | {value: time} | {rule: time}, evidence ids]: plain lists trimmed by
        # hand (a deque allocates a 64-slot block: 600 bytes per group, the bulk of the state)
        self._groups: OrderedDict[str, list[Any]] = OrderedDict()
        self._group_readers = tuple(_scalar_reader(f) for f in corr.group_by)
        self._value_reader = _scalar_reader(corr.value_field) if corr.value_field else None
        self._counting = corr.type == "event_count"
        self.observe: Callable[[dict[str, Any], float, str | None], tuple[str, ...] | None]
        """``observe(doc, at, evidence_id)``: the group's values when this event makes the condition
        true, else ``None``."""
        self.observe = self._compile(corr.base)
        self._observers: dict[str, Callable[[dict[str, Any], float, str | None], Any] | None] = {}

    def observer(self, action: str) -> Callable[[dict[str, Any], float, str | None], Any] | None:
        """``observe`` for documents whose ``event.action`` is ``action`` (nested, a string): the base
        rules compiled for that action (:func:`.match.compile_for_action`), those that cannot match it
        left out — ``None`` when none can. Same windows and state as :attr:`observe`."""
        if action in self._observers:
            return self._observers[action]
        corr = self.corr
        if not corr.base_conditions or len(corr.base_compiled) != len(corr.base):
            fn: Any = self.observe
        else:
            base = tuple(
                (name, pred)
                for (name, general), trees, compiled in zip(
                    corr.base, corr.base_conditions, corr.base_compiled, strict=True
                )
                if (pred := predicate_for(trees, action) if general is compiled else general) is not NEVER
            )
            fn = self._compile(base) if base else None
        if len(self._observers) < 4096:  # actions come from our normalizers: a few dozen
            self._observers[action] = fn
        return fn

    def _compile(
        self, base: tuple[tuple[str, Predicate], ...]
    ) -> Callable[[dict[str, Any], float, str | None], tuple[str, ...] | None]:
        corr = self.corr
        groups = self._groups
        max_groups = self.max_groups
        max_evidence = self.max_evidence
        readers = self._group_readers
        single = readers[0] if len(readers) == 1 else None
        timespan = corr.timespan_secs
        keep = corr.keep
        op, threshold = corr.op, corr.threshold
        counting = self._counting
        value_reader = self._value_reader
        temporal = corr.type == "temporal"
        only = base[0] if len(base) == 1 else None
        only_matched = (only[0],) if only is not None else ()
        only_pred = only[1] if only is not None and only[1] is not ALWAYS else None

        def observe(doc: dict[str, Any], at: float, evidence_id: str | None) -> tuple[str, ...] | None:
            if only is not None:
                if only_pred is not None and not only_pred(doc):
                    return None
                matched: tuple[str, ...] = only_matched
            else:
                matched = tuple(name for name, pred in base if pred(doc))
                if not matched:
                    return None
            if single is not None:
                key = single(doc)
                values: tuple[str, ...] = (key,)
            else:
                values = tuple(r(doc) for r in readers)
                key = "\x1f".join(values)
            group = groups.get(key)
            if group is None:
                group = groups[key] = [[] if counting else {}, []]
                if len(groups) > max_groups:
                    groups.popitem(last=False)
            else:
                groups.move_to_end(key)
            if evidence_id:
                evidence: list[str] = group[1]
                evidence.append(evidence_id)
                if len(evidence) > max_evidence:
                    del evidence[0]
            horizon = at - timespan
            if counting:
                times: list[float] = group[0]
                times.append(at)
                if len(times) > keep:  # the oldest beyond `keep` go
                    del times[0]
                if times[0] < horizon:
                    i = 1
                    while i < len(times) and times[i] < horizon:
                        i += 1
                    del times[:i]
                n = len(times)
            else:
                seen: dict[str, float] = group[0]
                if temporal:
                    for name in matched:
                        seen.pop(name, None)
                        seen[name] = at
                else:
                    val = value_reader(doc)  # type: ignore[misc]
                    if not val:
                        return None
                    seen.pop(val, None)
                    seen[val] = at
                # (a lone entry is this event's: inside the window; min() first: nothing expired is
                # the common case, and it needs no list)
                if len(seen) > 1 and min(seen.values()) < horizon:
                    for k in [k for k, t in seen.items() if t < horizon]:
                        del seen[k]
                while len(seen) > keep:
                    del seen[next(iter(seen))]
                n = len(seen)
            return values if op(n, threshold) else None

        return observe

    def evidence(self, values: tuple[str, ...]) -> tuple[str, ...]:
        group = self._groups.get("\x1f".join(values))
        return tuple(group[1]) if group else ()

    def __len__(self) -> int:
        return len(self._groups)

    def snapshot(self) -> list[Any]:
        out = []
        for key, (win, ev) in self._groups.items():
            out.append([key, list(win) if isinstance(win, list) else dict(win), list(ev)])
        return out

    def restore(self, rows: Any) -> None:
        self._groups.clear()
        if not isinstance(rows, list):
            return
        for row in rows[-self.max_groups :]:
            if not (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)):
                continue
            key, win, ev = row
            if self._counting and isinstance(win, list):
                times = [float(t) for t in win if isinstance(t, int | float)]
                window: Any = times[len(times) - self.corr.keep :] if len(times) > self.corr.keep else times
            elif not self._counting and isinstance(win, dict):
                window = {str(k): float(t) for k, t in win.items() if isinstance(t, int | float)}
            else:
                continue
            evidence = [str(e) for e in ev] if isinstance(ev, list) else []
            if len(evidence) > self.max_evidence:
                evidence = evidence[len(evidence) - self.max_evidence :]
            self._groups[key] = [window, evidence]
