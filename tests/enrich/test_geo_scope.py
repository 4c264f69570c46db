"""Address scopes: non-public addresses get a label, never a guessed place."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wgsiem.enrich.enrich_geo.scope import SCOPES, address_scope, parse_ip

CASES = [
    ("8.8.8.8", "global"),
    ("2606:4700:4700::1111", "global"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.7.1", "private"),
    ("fd00::1", "private"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.200", "documentation"),
    ("203.0.113.11", "documentation"),
    ("2001:db8:1::11", "documentation"),
    ("3fff::1", "documentation"),
    ("100.64.0.1", "shared"),
    ("198.18.0.1", "benchmarking"),
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("169.254.1.1", "link_local"),
    ("fe80::1", "link_local"),
    ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:8.8.4.4", "global"),
]


@pytest.mark.parametrize(("ip", "scope"), CASES)
def test_scope_of_known_addresses(ip: str, scope: str) -> None:
    assert address_scope(parse_ip(ip)) == scope


def test_zone_id_and_mapped_addresses_are_normalized() -> None:
    assert str(parse_ip("fe80::1%eth0")) == "fe80::1"
    assert str(parse_ip("::ffff:203.0.113.9")) == "203.0.113.9"


@pytest.mark.parametrize("text", ["", "bogus", "300.1.1.1", "1.2.3", "::g"])
def test_non_addresses_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ip(text)


@given(st.ip_addresses())
def test_every_address_has_one_scope_and_only_global_is_public(addr: ipaddress._BaseAddress) -> None:
    scope = address_scope(parse_ip(str(addr)))
    assert scope in SCOPES
    if scope == "global":
        assert parse_ip(str(addr)).is_global
