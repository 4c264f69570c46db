"""Unit tests of the exact ``wg set`` arguments and tunnel ``ip`` lines each lab interface gets."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from wgsiem.lab.topology import LabSpec, RoamTarget
from wgsiem.lab.wgconf import (
    client_peer_args,
    client_tunnel_batch,
    gateway_peer_args,
    gateway_tunnel_batch,
    interface_args,
    roam_batch,
)


def test_interface_args_with_and_without_a_listen_port() -> None:
    assert interface_args("wgdemog0", "/k/g.key", 51820) == [
        "set",
        "wgdemog0",
        "private-key",
        "/k/g.key",
        "listen-port",
        "51820",
    ]
    assert interface_args("wgdemoc1", "/k/c.key") == ["set", "wgdemoc1", "private-key", "/k/c.key"]


def test_gateway_peer_entry_for_client_one_has_both_ranges() -> None:
    assert gateway_peer_args(LabSpec().client(1), "PUB1", None) == [
        "peer",
        "PUB1",
        "allowed-ips",
        "10.222.0.11/32,10.222.100.0/24",
    ]


def test_gateway_peer_entry_with_psk_passes_the_file_not_the_key() -> None:
    assert gateway_peer_args(LabSpec().client(2), "PUB2", "/k/c2.psk") == [
        "peer",
        "PUB2",
        "preshared-key",
        "/k/c2.psk",
        "allowed-ips",
        "10.222.0.12/32",
    ]


def test_client_peer_entry_for_the_gateway() -> None:
    assert client_peer_args(LabSpec(ipv6=True).client(2), "GWPUB", None) == [
        "peer",
        "GWPUB",
        "endpoint",
        "[2001:db8:1::1]:51820",
        "allowed-ips",
        "10.222.0.0/24",
        "persistent-keepalive",
        "off",
    ]


def test_tunnel_batches() -> None:
    assert gateway_tunnel_batch(LabSpec().gateway()) == [
        "addr add 10.222.0.1/24 dev wgdemog0",
        "link set wgdemog0 up",
    ]
    assert client_tunnel_batch(LabSpec().client(3)) == [
        "addr add 10.222.0.13/32 dev wgdemoc3",
        "link set wgdemoc3 up",
        "route add 10.222.0.0/24 dev wgdemoc3",
    ]


def test_roam_batch_adds_before_it_deletes() -> None:
    v4 = RoamTarget(IPv4Interface("192.0.2.11/24"), IPv4Address("192.0.2.1"))
    assert roam_batch("203.0.113.11/24", v4) == [
        "addr add 192.0.2.11/24 dev eth0",
        "addr del 203.0.113.11/24 dev eth0",
        "route replace default via 192.0.2.1",
    ]
    v6 = RoamTarget(IPv6Interface("2001:db8:2::12/64"), IPv6Address("2001:db8:2::1"))
    assert roam_batch("2001:db8:1::12/64", v6)[0] == "addr add 2001:db8:2::12/64 dev eth0 nodad"
