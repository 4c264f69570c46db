"""The lab's addressing plan: every name and address, computed from a :class:`LabSpec` with no I/O.

Why a separate pure module: the runtime, the CLI, the tests and the fixture README all need the same
names (namespaces, interfaces, veths) and addresses, and a plan that is data can be unit-tested exactly
and read without root.

The picture (all "public" addresses are documentation ranges, tunnel addresses are 10.222.0.0/16)::

    wgsiem-<name>-gw                                  wgsiem-<name>-c<i>
    ┌─────────────────────────────────────┐          ┌──────────────────────────────┐
    │ br0  198.51.100.1/24  203.0.113.1/24 │◄─veth───►│ eth0 203.0.113.(10+i)/24     │
    │      192.0.2.1/24  [2001:db8:1::1/64 │          │      default via 203.0.113.1 │
    │      2001:db8:2::1/64 with ipv6]     │          │ wg<name>c<i> 10.222.0.(10+i) │
    │ wg<name>g0 10.222.0.1/24 :51820      │          └──────────────────────────────┘
    └─────────────────────────────────────┘

Interface names must be unique across *all* namespaces because wireguard-go's UAPI socket directory
(``/var/run/wireguard``) is shared by every namespace; the lab name is part of each name for that reason,
and names are built so that two different labs can never produce the same interface name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
)

from wgsiem.errors import WgsiemError

__all__ = [
    "BRIDGE",
    "BULK_ALLOWED_BASE",
    "CLIENT_VETH",
    "LISTEN_PORT",
    "MAX_BULK_PEERS",
    "MAX_CLIENT",
    "WIREGUARD_GO_MAX_PEERS",
    "ClientPlan",
    "GatewayPlan",
    "LabError",
    "LabSpec",
    "RoamTarget",
    "bulk_peer_slot",
    "client_ip_batch",
    "gateway_ip_batch",
    "interface_pattern",
    "namespace_pattern",
    "roam_target",
    "veth_batch",
]

LISTEN_PORT = 51820
BRIDGE = "br0"
CLIENT_VETH = "eth0"
MAX_CLIENT = 240
"""Client i's outer address is 203.0.113.(10+i): 240 keeps it below .251, clear of broadcast."""

BULK_ALLOWED_BASE = IPv4Address("10.223.0.0")
WIREGUARD_GO_MAX_PEERS = 1 << 16
"""wireguard-go refuses a 65537th peer on one interface (``device.MaxPeers``; the kernel allows 2^20),
and a refused peer in a UAPI ``set`` makes it misread the rest of the request and close the device."""
MAX_BULK_PEERS = 2_000_000
"""Keeps bulk allowed IPs inside 10.223.0.0-10.253.x and endpoints inside 203.0.113.101-132."""
_BULK_ENDPOINT_BASE = 101  # synthetic endpoints: 203.0.113.101 and up
_BULK_PORTS = 64000  # ports 1024..65023 per endpoint address

_NAME_RE = re.compile(r"[a-z0-9]{1,6}")
_TUNNEL_V4 = IPv4Network("10.222.0.0/24")
_CLIENT_NET_V4 = IPv4Network("203.0.113.0/24")
_CLIENT_NET_V6 = IPv6Network("2001:db8:1::/64")
_GATEWAY_OUTER_V4 = (
    IPv4Interface("198.51.100.1/24"),
    IPv4Interface("203.0.113.1/24"),
    IPv4Interface("192.0.2.1/24"),
)
_GATEWAY_OUTER_V6 = (IPv6Interface("2001:db8:1::1/64"), IPv6Interface("2001:db8:2::1/64"))
_ENDPOINT_V4 = IPv4Address("198.51.100.1")
_ENDPOINT_V6 = IPv6Address("2001:db8:1::1")


class LabError(WgsiemError):
    """The WireGuard lab could not be built, driven or torn down."""


@dataclass(frozen=True, slots=True)
class GatewayPlan:
    """One WireGuard interface in the gateway namespace (index 0 is the lab's; more can be added)."""

    namespace: str
    interface: str
    listen_port: int
    tunnel_address: IPv4Interface
    outer_addresses: tuple[IPv4Interface | IPv6Interface, ...]


@dataclass(frozen=True, slots=True)
class ClientPlan:
    """Client ``index``: its namespace, its link into the gateway bridge and both ends of its peering."""

    index: int
    namespace: str
    interface: str
    veth_gateway: str
    """The veth end that stays in the gateway namespace, enslaved to the bridge."""
    veth_client: str
    outer_v4: IPv4Interface
    outer_v4_via: IPv4Address
    outer_v6: IPv6Interface | None
    outer_v6_via: IPv6Address | None
    tunnel_address: IPv4Interface
    allowed_ips: tuple[IPv4Network, ...]
    """What the gateway's peer entry for this client allows (client 1 gets a second range)."""
    gateway_allowed_ips: tuple[IPv4Network, ...]
    """What the client's peer entry for the gateway allows."""
    endpoint: str
    """The gateway endpoint this client dials (IPv6 for even clients of an IPv6 lab)."""
    preshared_key: bool


@dataclass(frozen=True, slots=True)
class RoamTarget:
    """Where a roaming client moves: its new outer address and the next hop of its new default route."""

    address: IPv4Interface | IPv6Interface
    via: IPv4Address | IPv6Address

    @property
    def version(self) -> int:
        return self.address.version


@dataclass(frozen=True, slots=True)
class LabSpec:
    """What lab to build. Validated on construction so a bad spec fails before anything is touched."""

    name: str = "demo"
    clients: int = 3
    ipv6: bool = False

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            problems.append(f"lab name {self.name!r} must be 1-6 characters of [a-z0-9]")
        if (
            not isinstance(self.clients, int)
            or isinstance(self.clients, bool)
            or not 0 <= self.clients <= MAX_CLIENT
        ):
            problems.append(f"clients={self.clients!r} must be an integer from 0 to {MAX_CLIENT}")
        if problems:
            raise LabError(
                "invalid lab spec: " + "; ".join(problems),
                fix="pick a short lowercase name such as 'demo' and a client count like 3",
            )

    @property
    def gateway_namespace(self) -> str:
        return f"wgsiem-{self.name}-gw"

    def gateway(self, k: int = 0) -> GatewayPlan:
        """Gateway interface ``k``: ``wg<name>g<k>``, port 51820+k, tunnel 10.222.k.1/24."""
        if not 0 <= k <= 9:
            raise LabError(f"gateway interface index {k} out of range", fix="use 0..9")
        outer: tuple[IPv4Interface | IPv6Interface, ...] = _GATEWAY_OUTER_V4
        if self.ipv6:
            outer = outer + _GATEWAY_OUTER_V6
        return GatewayPlan(
            namespace=self.gateway_namespace,
            interface=f"wg{self.name}g{k}",
            listen_port=LISTEN_PORT + k,
            tunnel_address=IPv4Interface(f"10.222.{k}.1/24"),
            outer_addresses=outer,
        )

    def client(self, i: int) -> ClientPlan:
        """Client ``i`` (1-based). Indices beyond ``clients`` are valid: they are added live.

        The IPv6 host part repeats the IPv4 one as written digits (client 1: 203.0.113.11 and
        2001:db8:1::11), so a person reading a dump can pair them at a glance.
        """
        if isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= MAX_CLIENT:
            raise LabError(f"client index {i!r} out of range", fix=f"clients are numbered 1..{MAX_CLIENT}")
        allowed = [IPv4Network(f"10.222.0.{10 + i}/32")]
        if i == 1:
            allowed.append(IPv4Network("10.222.100.0/24"))
        v6_endpoint = self.ipv6 and i % 2 == 0
        return ClientPlan(
            index=i,
            namespace=f"wgsiem-{self.name}-c{i}",
            interface=f"wg{self.name}c{i}",
            veth_gateway=f"v{self.name}c{i}",
            veth_client=CLIENT_VETH,
            outer_v4=IPv4Interface(f"203.0.113.{10 + i}/24"),
            outer_v4_via=IPv4Address("203.0.113.1"),
            outer_v6=IPv6Interface(f"2001:db8:1::{10 + i}/64") if self.ipv6 else None,
            outer_v6_via=IPv6Address("2001:db8:1::1") if self.ipv6 else None,
            tunnel_address=IPv4Interface(f"10.222.0.{10 + i}/32"),
            allowed_ips=tuple(allowed),
            gateway_allowed_ips=(_TUNNEL_V4,),
            endpoint=f"[{_ENDPOINT_V6}]:{LISTEN_PORT}" if v6_endpoint else f"{_ENDPOINT_V4}:{LISTEN_PORT}",
            preshared_key=i == 2,
        )

    def client_plans(self) -> tuple[ClientPlan, ...]:
        return tuple(self.client(i) for i in range(1, self.clients + 1))


def namespace_pattern(name: str) -> re.Pattern[str]:
    """Matches exactly the namespaces of lab ``name`` (and no other lab's)."""
    return re.compile(rf"wgsiem-{re.escape(name)}-(?:gw|c[0-9]+)")


def interface_pattern(name: str) -> re.Pattern[str]:
    """Matches exactly the WireGuard interfaces of lab ``name``.

    Unambiguous because the suffix is ``g<digits>`` or ``c<digits>`` and a lab name never holds the
    whole suffix: ``wgab`` + ``c1`` cannot be confused with lab ``abc``'s ``wgabc`` + ``g0``.
    """
    return re.compile(rf"wg{re.escape(name)}(?:g|c)[0-9]+")


def roam_target(spec: LabSpec, i: int, new_ip: str | None = None) -> RoamTarget:
    """Where client ``i`` moves to, defaulting to the "other" documentation range for its family.

    The default is 192.0.2.(10+i)/24 via 192.0.2.1, or 2001:db8:2::(10+i)/64 via 2001:db8:2::1 for a
    client that dials the gateway over IPv6 (moving its IPv4 address would not move its endpoint).
    A given address must lie in one of the gateway bridge's subnets so the client stays reachable.
    """
    plan = spec.client(i)
    if new_ip is None:
        if plan.endpoint.startswith("["):
            return RoamTarget(IPv6Interface(f"2001:db8:2::{10 + i}/64"), IPv6Address("2001:db8:2::1"))
        return RoamTarget(IPv4Interface(f"192.0.2.{10 + i}/24"), IPv4Address("192.0.2.1"))
    try:
        address = ip_address(new_ip.split("/")[0])
    except ValueError as exc:
        raise LabError(f"roam address {new_ip!r} is not an IP address", fix="e.g. 192.0.2.50") from exc
    subnets: tuple[IPv4Interface | IPv6Interface, ...] = _GATEWAY_OUTER_V4
    if spec.ipv6:
        subnets = subnets + _GATEWAY_OUTER_V6
    dials_v6 = plan.endpoint.startswith("[")
    if (address.version == 6) != dials_v6:
        raise LabError(
            f"client {i} dials the gateway over IPv{6 if dials_v6 else 4}, so moving its "
            f"IPv{address.version} address would not change the endpoint the gateway sees",
            fix=f"give an IPv{6 if dials_v6 else 4} address (or omit it for the default)",
        )
    for gw in subnets:
        if address in gw.network and address != gw.ip:
            new_if: IPv4Interface | IPv6Interface
            if isinstance(address, IPv4Address):
                new_if = IPv4Interface(f"{address}/{gw.network.prefixlen}")
            else:
                new_if = IPv6Interface(f"{address}/{gw.network.prefixlen}")
            if address in (new_if.network.network_address, new_if.network.broadcast_address):
                break
            return RoamTarget(new_if, gw.ip)
    choices = ", ".join(str(gw.network) for gw in subnets)
    raise LabError(
        f"roam address {new_ip} is not a usable host in the lab's outer subnets",
        fix=f"pick a host address (not the gateway's .1) in one of: {choices}",
    )


def bulk_peer_slot(k: int) -> tuple[str, str]:
    """Allowed IP and endpoint of the k-th synthetic bulk peer (0-based, counted across calls).

    Allowed IPs count up from 10.223.0.0/32 (past 10.223.255.255 into 10.224/16 and on, so 100k peers
    fit, up to 10.255.255.255); endpoints are 203.0.113.101 and up with 64000 ports each, so every peer
    has its own (address, port) pair, as real clients behind distinct NATs would. Built with integer
    arithmetic rather than ``ipaddress`` objects because it runs 100k times per benchmark call.
    """
    if not 0 <= k < MAX_BULK_PEERS:
        raise LabError(f"bulk peer index {k} out of range", fix=f"add at most {MAX_BULK_PEERS} bulk peers")
    n = int(BULK_ALLOWED_BASE) + k
    allowed = f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}/32"
    host = _BULK_ENDPOINT_BASE + k // _BULK_PORTS
    return allowed, f"203.0.113.{host}:{1024 + k % _BULK_PORTS}"


def gateway_ip_batch(spec: LabSpec, clients: tuple[ClientPlan, ...]) -> list[str]:
    """``ip -batch`` lines that build the gateway namespace: loopback, bridge, addresses, client veths.

    IPv6 addresses get ``nodad`` so they are usable at once instead of after duplicate detection.
    """
    lines = ["link set lo up", f"link add {BRIDGE} type bridge forward_delay 0"]
    for addr in spec.gateway().outer_addresses:
        suffix = " nodad" if addr.version == 6 else ""
        lines.append(f"addr add {addr} dev {BRIDGE}{suffix}")
    lines.append(f"link set {BRIDGE} up")
    for plan in clients:
        lines.extend(_veth_lines(plan))
    return lines


def _veth_lines(plan: ClientPlan) -> list[str]:
    return [
        f"link add {plan.veth_gateway} type veth peer name {plan.veth_client} netns {plan.namespace}",
        f"link set {plan.veth_gateway} master {BRIDGE}",
        f"link set {plan.veth_gateway} up",
    ]


def client_ip_batch(plan: ClientPlan) -> list[str]:
    """``ip -batch`` lines run inside client ``plan.index``'s namespace to give it its outer addresses."""
    lines = [
        "link set lo up",
        f"addr add {plan.outer_v4} dev {plan.veth_client}",
        f"link set {plan.veth_client} up",
        f"route add default via {plan.outer_v4_via}",
    ]
    if plan.outer_v6 is not None:
        lines.insert(2, f"addr add {plan.outer_v6} dev {plan.veth_client} nodad")
        lines.append(f"route add default via {plan.outer_v6_via}")
    return lines


def veth_batch(plan: ClientPlan) -> list[str]:
    """``ip -batch`` lines, run in the gateway namespace, that link one (live-added) client to the bridge."""
    return _veth_lines(plan)
