"""Property and adversarial tests of the decoder: arbitrary and mutated datagrams, malicious templates.

Whatever arrives, ``decode`` returns (never raises), its errors are located ``exporter@offset`` inside
the datagram, the records it keeps are well-formed, and tables stay within their bounds.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sources.netflow.packets import (
    FIXTURES,
    flowset,
    ip4,
    ipfix_options_template,
    ipfix_packet,
    template_record,
    v5_header,
    v9_packet,
)
from wgsiem.errors import ParseError
from wgsiem.sources.netflow.decoder import MAX_ERRORS_PER_DATAGRAM, MAX_TEMPLATE_FIELDS, Decoded, decode
from wgsiem.sources.netflow.pcap import read_datagrams
from wgsiem.sources.netflow.records import Datagram
from wgsiem.sources.netflow.templates import TemplateCache

EXP = "198.51.100.9"
T = 1_795_600_000.0

REAL: list[bytes] = [
    d.data
    for name in ("softflowd_v5", "softflowd_v9", "softflowd_ipfix", "softflowd_ipfix_biflow")
    for _, d in read_datagrams(FIXTURES / f"{name}.pcap")
    if isinstance(d, Datagram)
]


def check(out: Decoded, data: bytes) -> None:
    assert len(out.errors) <= MAX_ERRORS_PER_DATAGRAM <= out.error_count or len(out.errors) == out.error_count
    for e in out.errors:
        assert isinstance(e, ParseError)
        assert e.location is not None and e.location.file == EXP
        assert e.location.offset is not None and 0 <= e.location.offset <= len(data)
    for r in out.records:
        assert 0 <= r.offset < len(data)
        assert r.ip_version in (4, 6)
        assert r.bytes >= 0 and r.packets >= 0 and r.sampling_interval >= 1


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    cache = TemplateCache()
    check(decode(data, EXP, cache, T), data)


@settings(max_examples=300)
@given(st.sampled_from([5, 9, 10]), st.binary(max_size=1500))
def test_arbitrary_bodies_behind_a_valid_version(version: int, body: bytes) -> None:
    data = struct.pack(">H", version) + body
    check(decode(data, EXP, TemplateCache(), T), data)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_softflowd_datagrams(draw: st.DataObject) -> None:
    cache = TemplateCache()
    for pkt in REAL[:3]:  # learn real templates first, so mutations reach the data paths
        decode(pkt, EXP, cache, T)
    original = draw.draw(st.sampled_from(REAL))
    data = bytearray(original)
    for _ in range(draw.draw(st.integers(1, 8))):
        i = draw.draw(st.integers(0, len(data) - 1))
        data[i] = draw.draw(st.integers(0, 255))
    cut = draw.draw(st.integers(0, len(data)))
    mutated = bytes(data[:cut])
    check(decode(mutated, EXP, cache, T), mutated)
    # the cache survives any of it: the original still decodes as before
    assert decode(original, EXP, cache, T).errors == []


def test_good_sets_around_a_bad_one_are_kept() -> None:
    tmpl = flowset(2, template_record(300, [(8, 4), (12, 4)], ipfix=True))
    good = flowset(300, ip4("10.0.0.1") + ip4("10.0.0.2"))
    bad_tmpl = flowset(2, struct.pack(">HH", 301, 4000))  # announces 4000 fields, holds none
    pkt = ipfix_packet([tmpl, good, bad_tmpl, good], export_time=int(T))
    out = decode(pkt, EXP, TemplateCache(), T)
    assert [r.src_ip for r in out.records] == ["10.0.0.1", "10.0.0.1"]
    assert len(out.errors) == 1 and out.errors[0].location is not None
    assert out.errors[0].location.offset == 16 + len(tmpl) + len(good) + 4


def test_zero_length_fields_cannot_loop() -> None:
    # a template whose records take no bytes would repeat forever; it is refused
    pkt = v9_packet([flowset(0, template_record(300, [(8, 0), (12, 0)], ipfix=False))], uptime=0, secs=int(T))
    cache = TemplateCache()
    out = decode(pkt, EXP, cache, T)
    assert len(cache) == 0 and "zero-length records" in out.errors[0].what
    # zero-length *unknown* fields beside real ones are fine (skipped)
    pkt = ipfix_packet(
        [
            flowset(2, template_record(300, [(8, 4), (999, 0), (12, 4)], ipfix=True)),
            flowset(300, ip4("10.0.0.1") + ip4("10.0.0.2")),
        ],
        export_time=int(T),
    )
    assert len(decode(pkt, EXP, TemplateCache(), T).records) == 1


def test_variable_length_fields_of_length_zero_progress() -> None:
    fields = [(82, 65535), (8, 4), (12, 4)]
    recs = b"".join(b"\x00" + ip4("10.0.0.1") + ip4("10.0.0.2") for _ in range(100))
    pkt = ipfix_packet(
        [flowset(2, template_record(300, fields, ipfix=True)), flowset(300, recs)], export_time=int(T)
    )
    out = decode(pkt, EXP, TemplateCache(), T)
    assert len(out.records) == 100 and out.records[0].interface_name is None


def test_huge_field_counts_are_refused_without_allocating() -> None:
    for count in (MAX_TEMPLATE_FIELDS + 1, 0xFFFF):
        pkt = v9_packet([flowset(0, struct.pack(">HH", 300, count) + b"\0\x08\0\x04" * 10)], uptime=0, secs=0)
        out = decode(pkt, EXP, TemplateCache(), T)
        assert out.records == [] and len(out.errors) == 1
    # options template whose scope count exceeds its field count
    opts = flowset(3, struct.pack(">HHH", 300, 1, 5) + b"\0\x08\0\x04")
    assert (
        "scope count" in decode(ipfix_packet([opts], export_time=0), EXP, TemplateCache(), T).errors[0].what
    )


def test_template_flood_is_bounded_per_domain_and_overall() -> None:
    cache = TemplateCache(max_templates_per_domain=64, max_templates=100, max_domains=3)
    # one datagram packed with 2000 distinct templates
    recs = b"".join(template_record(256 + i, [(8, 4), (12, 4)], ipfix=True) for i in range(2000))
    flood = ipfix_packet([flowset(2, recs)], export_time=int(T))
    out = decode(flood, EXP, cache, T)
    assert len(cache) == 64 and out.templates_refused == 1  # the set stops at the first refusal
    for d in range(1, 6):
        decode(ipfix_packet([flowset(2, recs)], export_time=int(T), domain=d), EXP, cache, T)
    assert len(cache) <= 100 and len(cache.domains) == 3
    assert sum(len(d.templates) for d in cache.domains.values()) == len(cache)
    # flood of exporters: refused once full, and the known ones still decode
    out = decode(ipfix_packet([flowset(2, recs)], export_time=int(T), domain=99), "203.0.113.99", cache, T)
    assert "too many exporters" in out.errors[0].what


def test_errors_per_datagram_are_capped() -> None:
    cache = TemplateCache()
    # 300 data sets of an unknown reserved id each produce an error; only the cap is kept as objects
    pkt = ipfix_packet([flowset(5, b"\0\0\0\0")] * 300, export_time=int(T))
    out = decode(pkt, EXP, cache, T)
    assert out.error_count == 300 and len(out.errors) == MAX_ERRORS_PER_DATAGRAM


def test_largest_datagram_yields_bounded_records() -> None:
    # 8-byte records (two IPv4 addresses) filling a 64 KiB datagram: at most 8 k records
    tmpl = flowset(2, template_record(300, [(8, 4), (12, 4)], ipfix=True))
    body = (ip4("10.0.0.1") + ip4("10.0.0.2")) * ((65535 - 16 - len(tmpl) - 4) // 8)
    pkt = ipfix_packet([tmpl, flowset(300, body)], export_time=int(T))
    out = decode(pkt, EXP, TemplateCache(), T)
    assert len(out.records) == len(body) // 8 <= 8192 and out.errors == []


def test_withdrawal_of_unknown_and_reserved_ids() -> None:
    cache = TemplateCache()
    out = decode(ipfix_packet([flowset(2, struct.pack(">HH", 7, 0))], export_time=0), EXP, cache, T)
    assert "reserved" in out.errors[0].what
    out = decode(ipfix_packet([flowset(2, struct.pack(">HH", 999, 0))], export_time=0), EXP, cache, T)
    assert (out.errors, out.templates_withdrawn) == ([], 0)


def test_options_withdrawal_in_an_options_set() -> None:
    cache = TemplateCache()
    opts = flowset(3, ipfix_options_template(256, [(143, 4)], [(160, 8)]))
    decode(ipfix_packet([opts], export_time=0), EXP, cache, T)
    assert len(cache) == 1
    decode(ipfix_packet([flowset(3, struct.pack(">HH", 3, 0))], export_time=0), EXP, cache, T)
    assert len(cache) == 0


def test_v5_count_above_thirty_is_clamped() -> None:
    out = decode(v5_header(65535, uptime=0, secs=0) + b"\0" * 48 * 31, EXP, TemplateCache(), T)
    assert len(out.records) == 30 and "exceeds the maximum" in out.errors[0].what
