"""The ``wg set`` arguments and tunnel-side ``ip`` lines for the lab's interfaces (pure).

Why separate from the runtime: what each interface is configured with is the lab's contract with the
tests (client 1's two allowed ranges, client 2's PSK, keepalive off) and deserves exact unit tests;
the runtime only runs these lists. Keys appear only as file paths, never as values in argv.
"""

from __future__ import annotations

from wgsiem.lab.topology import CLIENT_VETH, ClientPlan, GatewayPlan, RoamTarget

__all__ = [
    "client_peer_args",
    "client_tunnel_batch",
    "gateway_peer_args",
    "gateway_tunnel_batch",
    "interface_args",
    "roam_batch",
]


def interface_args(interface: str, private_key_file: str, listen_port: int | None = None) -> list[str]:
    """``wg set`` arguments for the interface itself (no listen port: wireguard-go picks one)."""
    args = ["set", interface, "private-key", private_key_file]
    return args if listen_port is None else [*args, "listen-port", str(listen_port)]


def gateway_peer_args(plan: ClientPlan, client_public_key: str, psk_file: str | None) -> list[str]:
    """The gateway's peer entry for client ``plan.index``."""
    args = ["peer", client_public_key]
    if psk_file:
        args += ["preshared-key", psk_file]
    return [*args, "allowed-ips", ",".join(str(n) for n in plan.allowed_ips)]


def client_peer_args(plan: ClientPlan, gateway_public_key: str, psk_file: str | None) -> list[str]:
    """Client ``plan.index``'s peer entry for the gateway; setting it again resets the cached source."""
    args = ["peer", gateway_public_key]
    if psk_file:
        args += ["preshared-key", psk_file]
    allowed = ",".join(str(n) for n in plan.gateway_allowed_ips)
    return [*args, "endpoint", plan.endpoint, "allowed-ips", allowed, "persistent-keepalive", "off"]


def gateway_tunnel_batch(gw: GatewayPlan) -> list[str]:
    return [f"addr add {gw.tunnel_address} dev {gw.interface}", f"link set {gw.interface} up"]


def client_tunnel_batch(plan: ClientPlan) -> list[str]:
    """Tunnel address (a /32) plus a route for what the gateway peer allows, through the tunnel."""
    return [
        f"addr add {plan.tunnel_address} dev {plan.interface}",
        f"link set {plan.interface} up",
        *(f"route add {net} dev {plan.interface}" for net in plan.gateway_allowed_ips),
    ]


def roam_batch(old_address: str, target: RoamTarget) -> list[str]:
    """Move the client's outer address: add the new one first so the link is never address-less."""
    nodad = " nodad" if target.version == 6 else ""
    return [
        f"addr add {target.address} dev {CLIENT_VETH}{nodad}",
        f"addr del {old_address} dev {CLIENT_VETH}",
        f"route replace default via {target.via}",
    ]
