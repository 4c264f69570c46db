"""Pure NetFlow v5 / v9 / IPFIX decoder: one datagram + its exporter + the template cache → records.

No I/O: the runtime hands in the bytes, who sent them, when (``at``, event time) and the
:class:`~.templates.TemplateCache` it keeps; the decoder returns flow records and located errors
(``exporter@offset``) and updates the cache (templates, options-derived sampling rate and system init
time). The same bytes with the same cache state always give the same result.

Everything a packet claims is checked against what it holds before it is used: header counts, set
lengths, template field counts and variable-length prefixes. Every loop advances by at least four
bytes (sets, template records) or one record (data), so a datagram of at most 64 KiB is decoded in
bounded time and memory whatever it contains; errors per datagram are capped too.

Times: v5/v9 ``First``/``Last`` are sysUpTime milliseconds, placed with the header's ``unix_secs`` and
``sysUpTime`` (modulo-2^32 arithmetic, so an uptime wrap between flow start and export is harmless).
IPFIX ``flowStart/EndSysUpTime`` need ``systemInitTimeMilliseconds`` (IE 160), which softflowd sends
in its options record; until one arrived such flows have no start/end. Absolute time elements
(150–157) are used as they are (154–157 are NTP-format timestamps, RFC 7011 §6.1.9).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from socket import AF_INET6, inet_ntoa, inet_ntop
from typing import Any

from wgsiem.errors import Location, ParseError
from wgsiem.sources.netflow.fields import NSLOTS, Slot
from wgsiem.sources.netflow.records import FlowRecord
from wgsiem.sources.netflow.templates import VARIABLE, Domain, DomainKey, FieldSpec, Template, TemplateCache

__all__ = ["MAX_ERRORS_PER_DATAGRAM", "MAX_TEMPLATE_FIELDS", "Decoded", "decode"]

MAX_TEMPLATE_FIELDS = 512
"""More fields than any real exporter sends (softflowd: < 30); a template claiming more is refused."""
MAX_ERRORS_PER_DATAGRAM = 16
"""Errors kept per datagram; the rest are only counted, so a crafted packet cannot amplify into
thousands of error objects."""

_V5_HDR = struct.Struct(">HHIIIIBBH")
_V5_REC = struct.Struct(">4s4s4sHHIIIIHHxBBBHHBBxx")
_V9_HDR = struct.Struct(">HHIIII")
_IPFIX_HDR = struct.Struct(">HHIII")
_SET = struct.Struct(">HH")
_U16 = struct.Struct(">H")
_U16x3 = struct.Struct(">HHH")
_V5_MAX_RECORDS = 30
_NTP_EPOCH = 2208988800  # seconds from 1900-01-01 to 1970-01-01
_M32 = 0xFFFFFFFF
_NONES = (None,) * NSLOTS
_ICMP = (1, 58)

_FIX_VERSION = "check that the sender is a NetFlow v5/v9 or IPFIX exporter and the port is right"
_FIX_TRUNC = "the datagram was cut short: check the exporter's MTU / packet size setting"


@dataclass(slots=True)
class Decoded:
    """What one datagram gave: records, errors and what happened to templates."""

    version: int = 0
    records: list[FlowRecord] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
    error_count: int = 0
    templates_learned: int = 0
    templates_withdrawn: int = 0
    templates_refused: int = 0
    options_records: int = 0
    non_flow_records: int = 0
    unknown_template_sets: int = 0
    sequence_gap: int = 0

    def error(self, exporter: str, offset: int, what: str, fix: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_PER_DATAGRAM:
            self.errors.append(ParseError(what, location=Location(exporter, offset=offset), fix=fix))


@dataclass(slots=True)
class _Ctx:
    """Per-datagram facts every record of it shares."""

    version: int
    exporter: str
    domain_id: int
    export_time: float
    export_ms: int
    uptime_ms: int  # header sysUpTime (v5/v9)
    sequence: int
    domain: Domain | None


def decode(data: bytes, exporter: str, cache: TemplateCache, at: float) -> Decoded:
    """Decode one export datagram from ``exporter`` received at ``at`` (epoch seconds)."""
    out = Decoded()
    if len(data) < 2:
        out.error(
            exporter, 0, f"datagram of {len(data)} bytes is too short for a NetFlow header", _FIX_VERSION
        )
        return out
    version = _U16.unpack_from(data)[0]
    out.version = version
    if version == 5:
        _decode_v5(data, exporter, cache, at, out)
    elif version == 9:
        _decode_v9(data, exporter, cache, at, out)
    elif version == 10:
        _decode_ipfix(data, exporter, cache, at, out)
    else:
        out.error(exporter, 0, f"unsupported NetFlow version {version}", _FIX_VERSION)
    return out


# ---------------------------------------------------------------------------------------------- v5


def _decode_v5(data: bytes, exporter: str, cache: TemplateCache, at: float, out: Decoded) -> None:
    if len(data) < _V5_HDR.size:
        out.error(exporter, 0, f"NetFlow v5 header needs 24 bytes, got {len(data)}", _FIX_TRUNC)
        return
    _, count, uptime, secs, nsecs, seq, engine_type, engine_id, sampling = _V5_HDR.unpack_from(data)
    domain_id = engine_type << 8 | engine_id
    available = (len(data) - _V5_HDR.size) // _V5_REC.size
    if count > _V5_MAX_RECORDS:
        out.error(exporter, 2, f"NetFlow v5 count {count} exceeds the maximum of 30", _FIX_VERSION)
        count = _V5_MAX_RECORDS
    if count > available:
        out.error(
            exporter,
            2,
            f"NetFlow v5 header announces {count} records, datagram holds {available}",
            _FIX_TRUNC,
        )
        count = available
    interval = sampling & 0x3FFF or 1
    d = cache.domain((exporter, domain_id), at)
    if d is not None:
        out.sequence_gap = _gap(d, seq, count)
    export_ms = secs * 1000 + nsecs // 1_000_000
    export_time = secs + nsecs / 1e9
    append = out.records.append
    off = _V5_HDR.size
    for i, r in enumerate(_V5_REC.iter_unpack(data[off : off + count * _V5_REC.size])):
        src, dst, nh, in_if, out_if, pkts, octets, first, last, sport, dport, flags, proto, tos = r[:14]
        icmp_type = icmp_code = None
        if proto in _ICMP:  # Cisco convention: ICMP type/code in the destination port
            icmp_type, icmp_code = dport >> 8, dport & 0xFF
        append(
            FlowRecord(
                5,
                exporter,
                domain_id,
                0,
                export_time,
                seq,
                off + i * _V5_REC.size,
                inet_ntoa(src),
                inet_ntoa(dst),
                sport,
                dport,
                proto,
                4,
                octets,
                pkts,
                None,
                None,
                (export_ms - _signed_delta(uptime, first)) / 1000,
                (export_ms - _signed_delta(uptime, last)) / 1000,
                flags,
                tos,
                icmp_type,
                icmp_code,
                in_if,
                out_if,
                None,
                None,
                None,
                inet_ntoa(nh),
                interval,
            )
        )


def _signed_delta(uptime: int, t: int) -> int:
    """``uptime - t`` in ms, modulo 2^32, as a signed value (a flow time just after a wrap)."""
    d = (uptime - t) & _M32
    return d - 0x100000000 if d >= 0x80000000 else d


def _gap(d: Domain, seq: int, advance: int) -> int:
    gap = 0
    if d.next_sequence is not None and seq != d.next_sequence:
        delta = (seq - d.next_sequence) & _M32
        gap = delta if delta < 0x80000000 else 0  # behind = reordered or exporter restart
    d.next_sequence = (seq + advance) & _M32
    return gap


# ---------------------------------------------------------------------------------------------- v9


def _decode_v9(data: bytes, exporter: str, cache: TemplateCache, at: float, out: Decoded) -> None:
    if len(data) < _V9_HDR.size:
        out.error(exporter, 0, f"NetFlow v9 header needs 20 bytes, got {len(data)}", _FIX_TRUNC)
        return
    _, _count, uptime, secs, seq, source_id = _V9_HDR.unpack_from(data)
    key = (exporter, source_id)
    d = cache.domain(key, at)
    if d is None:
        out.error(exporter, 16, f"too many exporters/source ids; source id {source_id} ignored", _FIX_FLOOD)
        return
    out.sequence_gap = _gap(d, seq, 1)
    ctx = _Ctx(9, exporter, source_id, float(secs), secs * 1000, uptime, seq, d)
    _sets(data, _V9_HDR.size, len(data), key, ctx, cache, at, out, template_set=0, options_set=1)


_FIX_FLOOD = "raise max_domains / max_templates if this exporter is legitimate, or restrict allowed_exporters"


# ---------------------------------------------------------------------------------------------- IPFIX


def _decode_ipfix(data: bytes, exporter: str, cache: TemplateCache, at: float, out: Decoded) -> None:
    if len(data) < _IPFIX_HDR.size:
        out.error(exporter, 0, f"IPFIX message header needs 16 bytes, got {len(data)}", _FIX_TRUNC)
        return
    _, length, export_time, seq, domain_id = _IPFIX_HDR.unpack_from(data)
    end = len(data)
    if length < _IPFIX_HDR.size:
        out.error(exporter, 2, f"IPFIX message length {length} is shorter than its header", _FIX_VERSION)
        return
    if length > len(data):
        out.error(
            exporter, 2, f"IPFIX message length {length} but the datagram has {len(data)} bytes", _FIX_TRUNC
        )
    else:
        end = length
    key = (exporter, domain_id)
    d = cache.domain(key, at)
    if d is None:
        out.error(exporter, 12, f"too many exporters/domains; domain {domain_id} ignored", _FIX_FLOOD)
        return
    ctx = _Ctx(10, exporter, domain_id, float(export_time), export_time * 1000, 0, seq, d)
    _sets(data, _IPFIX_HDR.size, end, key, ctx, cache, at, out, template_set=2, options_set=3)
    # the sequence number counts every data record, options data included (RFC 7011 §3.1)
    out.sequence_gap = _gap(d, seq, len(out.records) + out.non_flow_records + out.options_records)


# ---------------------------------------------------------------------------------------------- sets


def _sets(
    data: bytes,
    off: int,
    end: int,
    key: DomainKey,
    ctx: _Ctx,
    cache: TemplateCache,
    at: float,
    out: Decoded,
    *,
    template_set: int,
    options_set: int,
) -> None:
    exporter = ctx.exporter
    while off + 4 <= end:
        set_id, set_len = _SET.unpack_from(data, off)
        if set_len < 4:
            out.error(exporter, off + 2, f"set length {set_len} is below the 4-byte set header", _FIX_VERSION)
            return
        if off + set_len > end:
            out.error(
                exporter,
                off + 2,
                f"set {set_id} of {set_len} bytes runs past the end ({end - off} left)",
                _FIX_TRUNC,
            )
            return
        body, stop = off + 4, off + set_len
        if set_id == template_set:
            _template_set(data, body, stop, key, ctx, cache, at, out, options=False)
        elif set_id == options_set:
            if ctx.version == 9:
                _v9_options_template_set(data, body, stop, key, ctx, cache, at, out)
            else:
                _template_set(data, body, stop, key, ctx, cache, at, out, options=True)
        elif set_id >= 256:
            t = cache.get(key, set_id, at)
            if t is None:
                out.unknown_template_sets += 1
            else:
                _data_set(data, body, stop, t, ctx, out)
        else:
            out.error(
                exporter, off, f"reserved set id {set_id}", "the exporter speaks an unsupported extension"
            )
        off = stop
    if off < end and any(data[off:end]):
        out.error(exporter, off, f"{end - off} trailing bytes after the last set", _FIX_VERSION)


def _read_fields(
    data: bytes, off: int, stop: int, count: int, ipfix: bool, exporter: str, out: Decoded, record_off: int
) -> tuple[tuple[FieldSpec, ...], int] | None:
    """``count`` field specifiers from ``off``; ``None`` (error recorded) when they do not fit.

    Errors about the count itself point at the template record (``record_off``)."""
    if count > MAX_TEMPLATE_FIELDS:
        out.error(
            exporter, record_off, f"template with {count} fields (limit {MAX_TEMPLATE_FIELDS})", _FIX_VERSION
        )
        return None
    if off + 4 * count > stop:  # cheap bound before any loop: each specifier takes ≥ 4 bytes
        out.error(
            exporter,
            record_off,
            f"template announces {count} fields, set has room for {(stop - off) // 4}",
            _FIX_TRUNC,
        )
        return None
    fields: list[FieldSpec] = []
    for _ in range(count):
        if off + 4 > stop:
            out.error(exporter, off, "field specifier runs past the end of its set", _FIX_TRUNC)
            return None
        ie, length = _SET.unpack_from(data, off)
        off += 4
        pen = 0
        if ipfix and ie & 0x8000:
            if off + 4 > stop:
                out.error(exporter, off, "enterprise number runs past the end of its set", _FIX_TRUNC)
                return None
            pen = int.from_bytes(data[off : off + 4], "big")
            ie &= 0x7FFF
            off += 4
        if length == VARIABLE and not ipfix:
            out.error(exporter, off - 2, f"field {ie} has length 65535 in NetFlow v9", _FIX_VERSION)
            return None
        fields.append((pen, ie, length))
    return tuple(fields), off


def _template_set(
    data: bytes,
    off: int,
    stop: int,
    key: DomainKey,
    ctx: _Ctx,
    cache: TemplateCache,
    at: float,
    out: Decoded,
    *,
    options: bool,
) -> None:
    ipfix = ctx.version == 10
    exporter = ctx.exporter
    head = 6 if options else 4
    while off + 4 <= stop:
        tid, count = _SET.unpack_from(data, off)
        if tid == 0 and count == 0 and not any(data[off:stop]):
            return  # padding
        if ipfix and count == 0:  # withdrawal, RFC 7011 §8.1 (4 bytes, also in an options set)
            if tid in (2, 3):
                out.templates_withdrawn += cache.withdraw_all(key, options=tid == 3)
            elif tid >= 256:
                out.templates_withdrawn += cache.withdraw(key, tid)
            else:
                out.error(exporter, off, f"withdrawal of reserved template id {tid}", _FIX_VERSION)
            off += 4
            continue
        scope = 0
        if options:
            if off + 6 > stop:
                out.error(exporter, off, f"options template {tid} header runs past its set", _FIX_TRUNC)
                return
            scope = _U16.unpack_from(data, off + 4)[0]
        if tid < 256:
            out.error(exporter, off, f"template id {tid} is reserved (must be ≥ 256)", _FIX_VERSION)
            return
        if count == 0:
            out.error(exporter, off, f"template {tid} has no fields", _FIX_VERSION)
            return
        if options and (scope == 0 or scope > count):
            out.error(
                exporter,
                off,
                f"options template {tid} has scope count {scope} of {count} fields",
                _FIX_VERSION,
            )
            return
        got = _read_fields(data, off + head, stop, count, ipfix, exporter, out, off)
        if got is None:
            return
        fields, off_next = got
        if not _learn(key, tid, fields, options, scope, ctx, cache, at, out, off):
            return
        off = off_next


def _v9_options_template_set(
    data: bytes, off: int, stop: int, key: DomainKey, ctx: _Ctx, cache: TemplateCache, at: float, out: Decoded
) -> None:
    """RFC 3954 §6.1: ``id | scope length (bytes) | option length (bytes)`` then the specifiers.

    Scope fields use their own type space (1 system, 2 interface, …), so they are kept as opaque
    fields (enterprise -1) that the decoder skips by length.
    """
    exporter = ctx.exporter
    while off + 6 <= stop:
        tid, scope_len, opt_len = _U16x3.unpack_from(data, off)
        if tid == 0 and not any(data[off:stop]):
            return
        if tid < 256:
            out.error(exporter, off, f"options template id {tid} is reserved (must be ≥ 256)", _FIX_VERSION)
            return
        if scope_len % 4 or opt_len % 4 or scope_len + opt_len == 0:
            out.error(exporter, off, f"options template {tid}: lengths {scope_len}/{opt_len}", _FIX_VERSION)
            return
        n_scope, n_opt = scope_len // 4, opt_len // 4
        got = _read_fields(data, off + 6, stop, n_scope + n_opt, False, exporter, out, off)
        if got is None:
            return
        fields, off_next = got
        fields = tuple((-1, ie, ln) for _, ie, ln in fields[:n_scope]) + fields[n_scope:]
        if not _learn(key, tid, fields, True, n_scope, ctx, cache, at, out, off):
            return
        off = off_next


def _learn(
    key: DomainKey,
    tid: int,
    fields: tuple[FieldSpec, ...],
    options: bool,
    scope: int,
    ctx: _Ctx,
    cache: TemplateCache,
    at: float,
    out: Decoded,
    off: int,
) -> bool:
    if sum(ln for _, _, ln in fields) == 0:
        out.error(ctx.exporter, off, f"template {tid} describes zero-length records", _FIX_VERSION)
        return False
    outcome = cache.learn(key, tid, fields, options=options, scope_count=scope, at=at)
    if outcome == "refused":
        out.templates_refused += 1
        out.error(ctx.exporter, off, f"template {tid} refused: template table full", _FIX_FLOOD)
        return False
    if outcome != "refreshed":
        out.templates_learned += 1
    return True


# ---------------------------------------------------------------------------------------------- data


def _data_set(data: bytes, off: int, stop: int, t: Template, ctx: _Ctx, out: Decoded) -> None:
    if t.struct is not None:
        n = (stop - off) // t.record_len
        getter = t.getter
        odd = t.odd_slots
        reclen = t.record_len
        for i, vals in enumerate(t.struct.iter_unpack(data[off : off + n * reclen])):
            raw = getter(vals + _NONES)
            if odd:
                raw = _fix_odd(raw, odd)
            _record(raw, t, ctx, off + i * reclen, out)
        return
    # variable-length elements (IPFIX): field by field, every length checked
    while stop - off >= t.record_len:
        raw_list: list[object] = list(_NONES)
        pos = off
        for (_pen, _ie, length), slot in zip(t.fields, t.field_slots, strict=True):
            if length == VARIABLE:
                if pos >= stop:
                    pos = -1
                    break
                length = data[pos]
                pos += 1
                if length == 255:
                    if pos + 2 > stop:
                        pos = -1
                        break
                    length = _U16.unpack_from(data, pos)[0]
                    pos += 2
            if pos + length > stop:
                pos = -1
                break
            if slot is not None:
                raw_list[slot] = _value(slot, data[pos : pos + length])
            pos += length
        if pos < 0:
            if stop - off >= 4:  # fewer than 4 bytes left can be padding
                out.error(
                    ctx.exporter, off, f"record of template {t.template_id} runs past its set", _FIX_TRUNC
                )
            return
        _record(tuple(raw_list), t, ctx, off, out)
        off = pos


def _value(slot: int, raw: bytes) -> object:
    if slot in (Slot.SRC4, Slot.DST4, Slot.NEXTHOP4):
        return raw if len(raw) == 4 else None
    if slot in (Slot.SRC6, Slot.DST6, Slot.NEXTHOP6):
        return raw if len(raw) == 16 else None
    if slot == Slot.IFNAME:
        return raw
    return int.from_bytes(raw, "big") if 0 < len(raw) <= 8 else None


def _fix_odd(raw: tuple[object, ...], odd: tuple[int, ...]) -> tuple[object, ...]:
    fixed = list(raw)
    for s in odd:
        v = fixed[s]
        if isinstance(v, bytes):
            fixed[s] = int.from_bytes(v, "big")
    return tuple(fixed)


def _options_record(raw: tuple[object, ...], ctx: _Ctx) -> None:
    """Keep what options data says about the whole domain: sampling and the system init time."""
    d = ctx.domain
    if d is None:
        return
    interval = raw[Slot.SAMPLING]
    if isinstance(interval, int):
        d.sampling_interval = interval or 1
    pi, ps = raw[Slot.PSAMP_INTERVAL], raw[Slot.PSAMP_SPACE]
    if isinstance(pi, int) and pi > 0:
        d.sampling_interval = max(1, round((pi + (ps if isinstance(ps, int) else 0)) / pi))
    init = raw[Slot.SYS_INIT_MS]
    if isinstance(init, int) and init > 0:
        d.sys_init_ms = init


def _ntp(v: int) -> float:
    return (v >> 32) - _NTP_EPOCH + (v & _M32) / 4294967296.0


def _record(raw: tuple[Any, ...], t: Template, ctx: _Ctx, offset: int, out: Decoded) -> None:
    if t.options:
        out.options_records += 1
        _options_record(raw, ctx)
        return
    if raw[0] is not None and raw[1] is not None:
        src, dst, ipv = inet_ntoa(raw[0]), inet_ntoa(raw[1]), 4
    elif raw[2] is not None and raw[3] is not None:
        src, dst, ipv = inet_ntop(AF_INET6, raw[2]), inet_ntop(AF_INET6, raw[3]), 6
    else:
        out.non_flow_records += 1
        return
    proto = raw[Slot.PROTO] or 0
    octets = raw[Slot.OCTETS]
    if octets is None:
        octets = raw[Slot.OCTET_TOTAL] or 0
    packets = raw[Slot.PACKETS]
    if packets is None:
        packets = raw[Slot.PKT_TOTAL] or 0
    start = end = None
    first, last = raw[Slot.FIRST_UPTIME], raw[Slot.LAST_UPTIME]
    if first is not None and last is not None:
        if ctx.version == 10:
            base = raw[Slot.SYS_INIT_MS]
            if base is None and ctx.domain is not None:
                base = ctx.domain.sys_init_ms
            if base is not None:
                start, end = (base + first) / 1000, (base + last) / 1000
        else:
            start = (ctx.export_ms - _signed_delta(ctx.uptime_ms, first)) / 1000
            end = (ctx.export_ms - _signed_delta(ctx.uptime_ms, last)) / 1000
    elif raw[Slot.START_MS] is not None and raw[Slot.END_MS] is not None:
        start, end = raw[Slot.START_MS] / 1000, raw[Slot.END_MS] / 1000
    elif raw[Slot.START_SEC] is not None and raw[Slot.END_SEC] is not None:
        start, end = float(raw[Slot.START_SEC]), float(raw[Slot.END_SEC])
    elif raw[Slot.START_NTP] is not None and raw[Slot.END_NTP] is not None:
        start, end = _ntp(raw[Slot.START_NTP]), _ntp(raw[Slot.END_NTP])
    icmp_type = icmp_code = None
    if proto in _ICMP:
        tc = raw[Slot.ICMP]
        if tc is not None:
            icmp_type, icmp_code = tc >> 8, tc & 0xFF
        else:
            icmp_type, icmp_code = raw[Slot.ICMP_TYPE], raw[Slot.ICMP_CODE]
    sampling = raw[Slot.SAMPLING] or (ctx.domain.sampling_interval if ctx.domain is not None else 1)
    ifname = raw[Slot.IFNAME]
    nh = raw[Slot.NEXTHOP4]
    nh6 = raw[Slot.NEXTHOP6]
    out.records.append(
        FlowRecord(
            ctx.version,
            ctx.exporter,
            ctx.domain_id,
            t.template_id,
            ctx.export_time,
            ctx.sequence,
            offset,
            src,
            dst,
            raw[Slot.SPORT],
            raw[Slot.DPORT],
            proto,
            ipv,
            octets,
            packets,
            raw[Slot.REV_OCTETS],
            raw[Slot.REV_PACKETS],
            start,
            end,
            raw[Slot.TCP_FLAGS],
            raw[Slot.TOS],
            icmp_type,
            icmp_code,
            raw[Slot.IN_IF],
            raw[Slot.OUT_IF],
            raw[Slot.DIRECTION],
            raw[Slot.END_REASON],
            (ifname.split(b"\0", 1)[0].decode("utf-8", "replace") or None) if ifname is not None else None,
            inet_ntoa(nh) if nh is not None else inet_ntop(AF_INET6, nh6) if nh6 is not None else None,
            sampling,
        )
    )
