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

import operator
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)

from .match import Predicate, RuleCompileError, field_values

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

    @property
    def keep(self) -> int:
        """How many times/values a group must hold to decide the condition."""
        return int(self.threshold) + 1


def compile_correlation(rule: SigmaCorrelationRule, base: dict[str, Predicate]) -> Correlation:
    """``base`` maps each referenced rule's name (and id) to its compiled predicate."""
    if rule.type not in _SUPPORTED:
        raise RuleCompileError(f"correlation type {rule.type.name.lower()} is not supported in-process")
    if rule.generate:
        raise RuleCompileError("`generate: true` is not supported: give each alerting rule its own file")
    if len(rule.aliases):
        raise RuleCompileError("field aliases are not supported; use the same field name in the base rules")
    preds: list[tuple[str, Predicate]] = []
    for ref in rule.rules or []:
        if ref.reference not in base:
            raise RuleCompileError(f"referenced rule {ref.reference!r} is not in the same file")
        preds.append((ref.reference, base[ref.reference]))
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
    )


def _scalar(doc: dict[str, Any], name: str) -> str:
    node: Any = doc
    for part in name.split("."):  # nested objects first (what sources write), then Sigma's general lookup
        if type(node) is dict and part in node:
            node = node[part]
        else:
            break
    else:
        if node is not None and type(node) is not dict and type(node) is not list:
            return str(node)
    for v in field_values(doc, name):
        if v is not None and not isinstance(v, dict | list):
            return str(v)
    return ""


class CorrelationState:
    """The windows of one correlation rule, bounded to ``max_groups`` groups."""

    def __init__(self, corr: Correlation, max_groups: int = 50_000, max_evidence: int = 10) -> None:
        self.corr = corr
        self.max_groups = max_groups
        self.max_evidence = max_evidence
        # group key → [times deque | {value: time} | {rule: time}, evidence ids deque]
        self._groups: OrderedDict[str, list[Any]] = OrderedDict()

    def observe(self, doc: dict[str, Any], at: float, evidence_id: str | None) -> tuple[str, ...] | None:
        """The group's values when this event makes the condition true, else ``None``."""
        corr = self.corr
        if len(corr.base) == 1:
            name, pred = corr.base[0]
            if not pred(doc):
                return None
            matched = [name]
        else:
            matched = [name for name, pred in corr.base if pred(doc)]
            if not matched:
                return None
        values = tuple(_scalar(doc, f) for f in corr.group_by)
        key = "\x1f".join(values)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = [deque() if corr.type == "event_count" else {}, deque()]
            if len(self._groups) > self.max_groups:
                self._groups.popitem(last=False)
        else:
            self._groups.move_to_end(key)
        if evidence_id:
            ev: deque[str] = group[1]
            ev.append(evidence_id)
            while len(ev) > self.max_evidence:
                ev.popleft()
        horizon = at - corr.timespan_secs
        if corr.type == "event_count":
            times: deque[float] = group[0]
            times.append(at)
            while times and (times[0] < horizon or len(times) > corr.keep):
                times.popleft()
            n = len(times)
        else:
            seen: dict[str, float] = group[0]
            if corr.type == "value_count":
                assert corr.value_field is not None
                val = _scalar(doc, corr.value_field)
                if not val:
                    return None
                seen.pop(val, None)
                seen[val] = at
            else:
                for name in matched:
                    seen.pop(name, None)
                    seen[name] = at
            for k in [k for k, t in seen.items() if t < horizon]:
                del seen[k]
            while len(seen) > corr.keep:
                del seen[next(iter(seen))]
            n = len(seen)
        return values if corr.op(n, corr.threshold) else None

    def evidence(self, values: tuple[str, ...]) -> tuple[str, ...]:
        group = self._groups.get("\x1f".join(values))
        return tuple(group[1]) if group else ()

    def __len__(self) -> int:
        return len(self._groups)

    def snapshot(self) -> list[Any]:
        out = []
        for key, (win, ev) in self._groups.items():
            out.append([key, list(win) if isinstance(win, deque) else dict(win), list(ev)])
        return out

    def restore(self, rows: Any) -> None:
        self._groups.clear()
        if not isinstance(rows, list):
            return
        for row in rows[-self.max_groups :]:
            if not (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)):
                continue
            key, win, ev = row
            if self.corr.type == "event_count" and isinstance(win, list):
                window: Any = deque(float(t) for t in win if isinstance(t, int | float))
            elif self.corr.type != "event_count" and isinstance(win, dict):
                window = {str(k): float(t) for k, t in win.items() if isinstance(t, int | float)}
            else:
                continue
            evidence = deque(str(e) for e in ev) if isinstance(ev, list) else deque()
            self._groups[key] = [window, evidence]
