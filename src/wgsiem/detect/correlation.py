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

from .match import _MISS, Predicate, RuleCompileError, _walker, field_values

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
    """The text of ``name`` in ``doc`` for grouping: the nested value, else the first scalar Sigma's
    general lookup finds, else ``""``."""
    return _scalar_reader(name)(doc)


@functools.lru_cache(maxsize=1024)
def _scalar_reader(name: str) -> Callable[[dict[str, Any]], str]:
    walk = _walker(name)

    def scalar(doc: dict[str, Any]) -> str:
        v = walk(doc)  # nested objects first (what sources write), then Sigma's general lookup
        if v is not _MISS and v is not None and type(v) is not dict:
            return v if type(v) is str else str(v)
        for v in field_values(doc, name):
            if v is not None and not isinstance(v, dict | list):
                return str(v)
        return ""

    return scalar


class CorrelationState:
    """The windows of one correlation rule, bounded to ``max_groups`` groups.

    The per-event path is compiled at construction (the base predicates, the group-by readers, the
    window of the correlation's type), so an event costs its predicates and, on a match, a few dict
    and deque operations.
    """

    def __init__(self, corr: Correlation, max_groups: int = 50_000, max_evidence: int = 10) -> None:
        self.corr = corr
        self.max_groups = max_groups
        self.max_evidence = max_evidence
        # group key → [times deque | {value: time} | {rule: time}, evidence ids deque]
        self._groups: OrderedDict[str, list[Any]] = OrderedDict()
        self._group_readers = tuple(_scalar_reader(f) for f in corr.group_by)
        self._value_reader = _scalar_reader(corr.value_field) if corr.value_field else None
        self._counting = corr.type == "event_count"
        self.observe: Callable[[dict[str, Any], float, str | None], tuple[str, ...] | None]
        """``observe(doc, at, evidence_id)``: the group's values when this event makes the condition
        true, else ``None``."""
        self.observe = self._compile()

    def _compile(self) -> Callable[[dict[str, Any], float, str | None], tuple[str, ...] | None]:
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
        base = corr.base
        only = base[0] if len(base) == 1 else None

        def observe(doc: dict[str, Any], at: float, evidence_id: str | None) -> tuple[str, ...] | None:
            if only is not None:
                if not only[1](doc):
                    return None
                matched: tuple[str, ...] = (only[0],)
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
                group = groups[key] = [
                    deque(maxlen=keep) if counting else {},
                    deque(maxlen=max_evidence),
                ]
                if len(groups) > max_groups:
                    groups.popitem(last=False)
            else:
                groups.move_to_end(key)
            if evidence_id:
                group[1].append(evidence_id)
            horizon = at - timespan
            if counting:
                times: deque[float] = group[0]
                times.append(at)  # maxlen drops the oldest beyond `keep`
                while times and times[0] < horizon:
                    times.popleft()
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
                if len(seen) > 1:  # (a lone entry is this event's: inside the window)
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
            if self._counting and isinstance(win, list):
                window: Any = deque(
                    (float(t) for t in win if isinstance(t, int | float)), maxlen=self.corr.keep
                )
            elif not self._counting and isinstance(win, dict):
                window = {str(k): float(t) for k, t in win.items() if isinstance(t, int | float)}
            else:
                continue
            evidence = deque((str(e) for e in ev) if isinstance(ev, list) else (), maxlen=self.max_evidence)
            self._groups[key] = [window, evidence]
