"""Templates (NetFlow v9, IPFIX): compiled once into a ``struct.Struct``, cached per exporter and domain.

Why compiled: a data record of a fixed-length template is decoded by one ``Struct.iter_unpack`` over the
whole set (C speed) and mapped onto the canonical slots of :mod:`.fields` by one ``itemgetter``; every
element the decoder does not use is a pad byte run (``Nx``) that never becomes a Python object.
Templates with variable-length elements (IPFIX, RFC 7011 §7) take a slower field-by-field path.

Templates live per ``(exporter address, observation domain / source id)`` as RFC 7011 §8 and RFC 3954
§9 scope them, expire when not refreshed within ``timeout_secs`` (RFC 7011 §8.4 for UDP), and are
withdrawn by an IPFIX template record with field count 0 (one id, or all of a set with id 2/3).

Every table is bounded: templates per domain, templates overall and domains overall. A flood of new
templates or exporters is refused (and counted) rather than allowed to grow memory or to evict the
templates of exporters already known.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from wgsiem.sources.netflow.fields import ADDR4, ADDR6, IE_SLOTS, NSLOTS, Slot

__all__ = [
    "VARIABLE",
    "Domain",
    "DomainKey",
    "Template",
    "TemplateCache",
    "compile_template",
]

VARIABLE = 65535  # IPFIX field length meaning "variable-length element"
_INT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}
_NONES = (None,) * NSLOTS
_TEXT_SLOTS = frozenset({Slot.IFNAME})

DomainKey = tuple[str, int]  # (exporter address, observation domain / source id)
FieldSpec = tuple[int, int, int]  # (enterprise number or -1 for a v9 scope field, element id, length)


@dataclass(slots=True)
class Template:
    """A template as learned, plus what decoding its records needs."""

    template_id: int
    fields: tuple[FieldSpec, ...]
    options: bool
    scope_count: int
    learned_at: float
    variable: bool  # has variable-length elements
    record_len: int  # fixed records: exact length; variable: minimum length
    struct: struct.Struct | None  # fixed-length templates only
    getter: Any  # itemgetter(vals + NONES) -> canonical slots
    odd_slots: tuple[int, ...]  # slots holding big-endian bytes of an odd-size integer
    field_slots: tuple[int | None, ...]  # per field, for the variable-length path
    is_flow: bool  # carries a source and a destination address


def _usable(slot: int | None, length: int) -> bool:
    if slot is None:
        return False
    if slot in ADDR4:
        return length == 4
    if slot in ADDR6:
        return length == 16
    if slot in _TEXT_SLOTS:
        return True
    return 1 <= length <= 8 or length == VARIABLE


def compile_template(
    template_id: int, fields: tuple[FieldSpec, ...], *, options: bool, scope_count: int, at: float
) -> Template:
    """Build the decoding plan of one template. ``fields`` were bounds-checked by the decoder."""
    fmt = [">"]
    slot_index: dict[int, int] = {}
    odd: list[int] = []
    field_slots: list[int | None] = []
    variable = False
    fixed_len = 0
    n_vals = 0
    for pen, ie, length in fields:
        slot = IE_SLOTS.get((pen, ie)) if pen >= 0 else None
        if not _usable(slot, length):
            slot = None
        field_slots.append(slot)
        if length == VARIABLE:
            variable = True
            fixed_len += 1  # at least the one length octet
            continue
        fixed_len += length
        if slot is None:
            if length:
                fmt.append(f"{length}x")
            continue
        if slot in ADDR4 or slot in ADDR6 or slot in _TEXT_SLOTS:
            fmt.append(f"{length}s")
        elif length in _INT_CODES:
            fmt.append(_INT_CODES[length])
        else:
            fmt.append(f"{length}s")
            odd.append(slot)
        slot_index[slot] = n_vals
        n_vals += 1
    order = [slot_index.get(s, n_vals + s) for s in range(NSLOTS)]
    present = set(slot_index) | {s for s in field_slots if s is not None}
    is_flow = (Slot.SRC4 in present and Slot.DST4 in present) or (
        Slot.SRC6 in present and Slot.DST6 in present
    )
    return Template(
        template_id=template_id,
        fields=fields,
        options=options,
        scope_count=scope_count,
        learned_at=at,
        variable=variable,
        record_len=fixed_len,
        struct=None if variable else struct.Struct("".join(fmt)),
        getter=itemgetter(*order),
        odd_slots=tuple(odd),
        field_slots=tuple(field_slots),
        is_flow=is_flow,
    )


@dataclass(slots=True)
class Domain:
    """What is known of one (exporter, domain): its templates and what its options records said."""

    templates: dict[int, Template] = field(default_factory=dict)
    sampling_interval: int = 1
    sys_init_ms: int | None = None  # IPFIX systemInitTimeMilliseconds (IE 160), from options data
    last_seen: float = 0.0
    next_sequence: int | None = None


class TemplateCache:
    """Bounded template store shared by every packet of one collector (or one replay)."""

    def __init__(
        self,
        *,
        timeout_secs: float = 1800.0,
        max_templates: int = 10_000,
        max_templates_per_domain: int = 512,
        max_domains: int = 1024,
    ) -> None:
        self.timeout_secs = timeout_secs
        self.max_templates = max_templates
        self.max_templates_per_domain = max_templates_per_domain
        self.max_domains = max_domains
        self.domains: dict[DomainKey, Domain] = {}
        self.count = 0
        self.expired = 0
        self.refused = 0

    def __len__(self) -> int:
        return self.count

    def domain(self, key: DomainKey, at: float) -> Domain | None:
        """The state of ``key``, created on first sight; ``None`` when the domain table is full."""
        d = self.domains.get(key)
        if d is None:
            if len(self.domains) >= self.max_domains:
                self.expire(at)
                if len(self.domains) >= self.max_domains:
                    self.refused += 1
                    return None
            d = self.domains[key] = Domain()
        if at > d.last_seen:
            d.last_seen = at
        return d

    def get(self, key: DomainKey, template_id: int, at: float) -> Template | None:
        d = self.domains.get(key)
        if d is None:
            return None
        t = d.templates.get(template_id)
        if t is not None and at - t.learned_at > self.timeout_secs:
            del d.templates[template_id]
            self.count -= 1
            self.expired += 1
            return None
        return t

    def learn(
        self,
        key: DomainKey,
        template_id: int,
        fields: tuple[FieldSpec, ...],
        *,
        options: bool,
        scope_count: int,
        at: float,
    ) -> str:
        """Add or refresh a template: ``"new"``, ``"refreshed"``, ``"changed"`` or ``"refused"``."""
        d = self.domain(key, at)
        if d is None:
            return "refused"
        old = d.templates.get(template_id)
        if old is not None and old.fields == fields and old.options == options:
            old.learned_at = max(old.learned_at, at)
            return "refreshed"
        if old is None:
            if len(d.templates) >= self.max_templates_per_domain or self.count >= self.max_templates:
                self.expire(at)
            if len(d.templates) >= self.max_templates_per_domain or self.count >= self.max_templates:
                self.refused += 1
                return "refused"
            self.count += 1
        d.templates[template_id] = compile_template(
            template_id, fields, options=options, scope_count=scope_count, at=at
        )
        return "new" if old is None else "changed"

    def withdraw(self, key: DomainKey, template_id: int) -> bool:
        d = self.domains.get(key)
        if d is None or d.templates.pop(template_id, None) is None:
            return False
        self.count -= 1
        return True

    def withdraw_all(self, key: DomainKey, *, options: bool) -> int:
        d = self.domains.get(key)
        if d is None:
            return 0
        gone = [tid for tid, t in d.templates.items() if t.options == options]
        for tid in gone:
            del d.templates[tid]
        self.count -= len(gone)
        return len(gone)

    def expire(self, at: float) -> int:
        """Drop templates not refreshed for ``timeout_secs`` and domains left with nothing recent."""
        n = 0
        for key in list(self.domains):
            d = self.domains[key]
            stale = [tid for tid, t in d.templates.items() if at - t.learned_at > self.timeout_secs]
            for tid in stale:
                del d.templates[tid]
            n += len(stale)
            if not d.templates and at - d.last_seen > self.timeout_secs:
                del self.domains[key]
        self.count -= n
        self.expired += n
        return n
