"""What kind of address an IP is, so non-public addresses get a label instead of a guessed place.

Order matters: Python's ``ipaddress`` counts the documentation, benchmarking and reserved ranges
as ``is_private``. So ``private`` here means what an analyst means — RFC 1918 and IPv6 unique-local
(fc00::/7) — and it is checked, with the other special-purpose ranges (RFC 5737/3849/9637
documentation, RFC 6598 shared address space, RFC 2544/5180 benchmarking), before the ``ipaddress``
properties. IPv4-mapped IPv6 (``::ffff:a.b.c.d``) is judged as the IPv4 address.
"""

from __future__ import annotations

import ipaddress
from typing import Final

__all__ = ["SCOPES", "address_scope", "parse_ip"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCOPES: Final = (
    "global",
    "private",
    "documentation",
    "shared",
    "benchmarking",
    "loopback",
    "link_local",
    "multicast",
    "unspecified",
    "reserved",
)
"""Every value of ``wireguard.geo.<side>.scope``; only ``global`` addresses are public Internet hosts."""

_SPECIAL: Final = [
    (ipaddress.ip_network(cidr), scope)
    for cidr, scope in (
        ("192.0.2.0/24", "documentation"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("100.64.0.0/10", "shared"),
        ("198.18.0.0/15", "benchmarking"),
        ("2001:2::/48", "benchmarking"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("fc00::/7", "private"),
    )
]


def parse_ip(text: str) -> IPAddress:
    """The address in ``text`` (a zone id ``%eth0`` is dropped; IPv4-mapped IPv6 becomes IPv4).

    Raises ``ValueError`` for anything that is not an IP address."""
    addr = ipaddress.ip_address(text.partition("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _ipv4_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network a scope decision can depend on: ours, and those ``ipaddress`` tests its
    ``is_*`` properties against (found generically in its constants, so a Python release that adds
    one is covered)."""
    nets = [n for n, _ in _SPECIAL if n.version == 4]
    constants = getattr(ipaddress, "_IPv4Constants", None)
    for value in vars(constants).values() if constants is not None else ():
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, ipaddress.IPv4Network):
                nets.append(item)
            elif isinstance(item, ipaddress.IPv4Address):
                nets.append(ipaddress.IPv4Network(item))
    return nets


def _plain_ipv4_blocks() -> bytearray | None:
    """Per IPv4 /16, 1 when no special-purpose network touches it: every address in it is
    ``global`` (all the scope tests are membership tests in those networks). ``None`` — no fast path —
    if ``ipaddress`` does not expose its constants."""
    if getattr(ipaddress, "_IPv4Constants", None) is None:
        return None
    plain = bytearray(b"\x01" * 65536)
    for net in _ipv4_networks():
        first = int(net.network_address) >> 16
        last = int(net.broadcast_address) >> 16
        plain[first : last + 1] = bytes(last - first + 1)
    return plain


_PLAIN_V4 = _plain_ipv4_blocks()


def address_scope(addr: IPAddress) -> str:
    """One of :data:`SCOPES`."""
    if _PLAIN_V4 is not None and addr.version == 4 and _PLAIN_V4[int(addr) >> 16]:
        return "global"  # most public IPv4 addresses: one table read instead of ~30 network tests
    return _address_scope(addr)


def _address_scope(addr: IPAddress) -> str:
    """:func:`address_scope` by the ``ipaddress`` properties (the reference the fast path must match)."""
    for net, scope in _SPECIAL:
        if addr.version == net.version and addr in net:
            return scope
    if addr.is_loopback:
        return "loopback"
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_link_local:
        return "link_local"
    if addr.is_multicast:
        return "multicast"
    if addr.is_reserved or not addr.is_global:
        return "reserved"
    return "global"
