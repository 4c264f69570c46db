"""Unit tests of the lab's pure addressing plan: exact names and addresses, validation, uniqueness."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wgsiem.lab.topology import (
    MAX_BULK_PEERS,
    MAX_CLIENT,
    ClientPlan,
    GatewayPlan,
    LabError,
    LabSpec,
    RoamTarget,
    bulk_peer_slot,
    client_ip_batch,
    gateway_ip_batch,
    interface_pattern,
    namespace_pattern,
    roam_target,
    veth_batch,
)

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)


def test_default_spec() -> None:
    assert LabSpec() == LabSpec(name="demo", clients=3, ipv6=False)


def test_gateway_plan() -> None:
    expected = GatewayPlan(
        namespace="wgsiem-demo-gw",
        interface="wgdemog0",
        listen_port=51820,
        tunnel_address=IPv4Interface("10.222.0.1/24"),
        outer_addresses=(
            IPv4Interface("198.51.100.1/24"),
            IPv4Interface("203.0.113.1/24"),
            IPv4Interface("192.0.2.1/24"),
        ),
    )
    assert LabSpec().gateway() == expected


def test_gateway_plan_with_ipv6_adds_both_v6_subnets() -> None:
    outer = LabSpec(ipv6=True).gateway().outer_addresses
    assert outer[3:] == (IPv6Interface("2001:db8:1::1/64"), IPv6Interface("2001:db8:2::1/64"))


def test_second_gateway_interface() -> None:
    gw = LabSpec().gateway(1)
    assert (gw.interface, gw.listen_port, gw.tunnel_address) == (
        "wgdemog1",
        51821,
        IPv4Interface("10.222.1.1/24"),
    )


def test_client_one_has_two_allowed_ranges_and_no_psk() -> None:
    expected = ClientPlan(
        index=1,
        namespace="wgsiem-demo-c1",
        interface="wgdemoc1",
        veth_gateway="vdemoc1",
        veth_client="eth0",
        outer_v4=IPv4Interface("203.0.113.11/24"),
        outer_v4_via=IPv4Address("203.0.113.1"),
        outer_v6=None,
        outer_v6_via=None,
        tunnel_address=IPv4Interface("10.222.0.11/32"),
        allowed_ips=(IPv4Network("10.222.0.11/32"), IPv4Network("10.222.100.0/24")),
        gateway_allowed_ips=(IPv4Network("10.222.0.0/24"),),
        endpoint="198.51.100.1:51820",
        preshared_key=False,
    )
    assert LabSpec().client(1) == expected


def test_only_client_two_uses_a_preshared_key() -> None:
    assert [p.preshared_key for p in LabSpec(clients=4).client_plans()] == [False, True, False, False]


def test_other_clients_have_one_allowed_range() -> None:
    assert LabSpec().client(3).allowed_ips == (IPv4Network("10.222.0.13/32"),)


def test_ipv6_lab_even_clients_dial_over_ipv6() -> None:
    spec = LabSpec(clients=3, ipv6=True)
    assert [p.endpoint for p in spec.client_plans()] == [
        "198.51.100.1:51820",
        "[2001:db8:1::1]:51820",
        "198.51.100.1:51820",
    ]
    assert spec.client(2).outer_v6 == IPv6Interface("2001:db8:1::12/64")
    assert spec.client(2).outer_v6_via == IPv6Address("2001:db8:1::1")


@pytest.mark.parametrize("name", ["", "toolong7", "Demo", "de-mo", "dé", "a b"])
def test_invalid_names_are_rejected_with_a_fix(name: str) -> None:
    with pytest.raises(LabError) as err:
        LabSpec(name=name)
    assert err.value.fix is not None
    assert "1-6 characters" in err.value.what


@pytest.mark.parametrize("clients", [-1, MAX_CLIENT + 1, True])
def test_invalid_client_counts_are_rejected(clients: int) -> None:
    with pytest.raises(LabError):
        LabSpec(clients=clients)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(LabError) as err:
        LabSpec(name="BAD", clients=-1)
    assert "lab name" in err.value.what and "clients=" in err.value.what


@pytest.mark.parametrize("i", [0, MAX_CLIENT + 1])
def test_client_index_out_of_range(i: int) -> None:
    with pytest.raises(LabError):
        LabSpec().client(i)


def test_longest_names_fit_in_ifnamsiz() -> None:
    spec = LabSpec(name="zzzzzz", clients=MAX_CLIENT)
    names_ = [spec.gateway(9).interface] + [
        n for p in spec.client_plans() for n in (p.interface, p.veth_gateway)
    ]
    assert max(len(n) for n in names_) <= 15


@given(names, names, st.integers(1, MAX_CLIENT), st.integers(1, MAX_CLIENT))
def test_two_labs_never_share_an_interface_or_namespace(a: str, b: str, i: int, j: int) -> None:
    if a == b:
        return
    spec_a, spec_b = LabSpec(name=a), LabSpec(name=b)
    ifaces_a = {spec_a.gateway().interface, spec_a.client(i).interface}
    ifaces_b = {spec_b.gateway().interface, spec_b.client(j).interface}
    assert not ifaces_a & ifaces_b
    assert not any(interface_pattern(a).fullmatch(n) for n in ifaces_b)
    assert not any(
        namespace_pattern(a).fullmatch(n) for n in (spec_b.gateway_namespace, spec_b.client(j).namespace)
    )


@given(names, st.integers(1, MAX_CLIENT))
def test_patterns_match_the_labs_own_names(name: str, i: int) -> None:
    spec = LabSpec(name=name)
    assert interface_pattern(name).fullmatch(spec.client(i).interface)
    assert interface_pattern(name).fullmatch(spec.gateway().interface)
    assert namespace_pattern(name).fullmatch(spec.client(i).namespace)
    assert namespace_pattern(name).fullmatch(spec.gateway_namespace)


def test_default_roam_moves_an_ipv4_client_to_192_0_2() -> None:
    assert roam_target(LabSpec(), 1) == RoamTarget(IPv4Interface("192.0.2.11/24"), IPv4Address("192.0.2.1"))


def test_default_roam_moves_an_ipv6_dialing_client_to_2001_db8_2() -> None:
    target = roam_target(LabSpec(ipv6=True), 2)
    assert target == RoamTarget(IPv6Interface("2001:db8:2::12/64"), IPv6Address("2001:db8:2::1"))


def test_roam_to_an_explicit_address_takes_its_subnet_and_gateway() -> None:
    target = roam_target(LabSpec(), 3, "198.51.100.77")
    assert target == RoamTarget(IPv4Interface("198.51.100.77/24"), IPv4Address("198.51.100.1"))


@pytest.mark.parametrize("bad", ["10.0.0.1", "192.0.2.1", "192.0.2.255", "192.0.2.0", "nonsense"])
def test_roam_rejects_addresses_outside_the_bridge_subnets(bad: str) -> None:
    with pytest.raises(LabError) as err:
        roam_target(LabSpec(), 1, bad)
    assert err.value.fix


def test_bulk_slots() -> None:
    assert bulk_peer_slot(0) == ("10.223.0.0/32", "203.0.113.101:1024")
    assert bulk_peer_slot(65536) == ("10.224.0.0/32", "203.0.113.102:2560")
    assert bulk_peer_slot(63999) == ("10.223.249.255/32", "203.0.113.101:65023")
    assert bulk_peer_slot(64000) == ("10.223.250.0/32", "203.0.113.102:1024")


def test_bulk_slots_are_distinct_for_100k_peers() -> None:
    slots = [bulk_peer_slot(k) for k in range(100_000)]
    assert len({a for a, _ in slots}) == len({e for _, e in slots}) == 100_000


@pytest.mark.parametrize("k", [-1, MAX_BULK_PEERS])
def test_bulk_slot_out_of_range(k: int) -> None:
    with pytest.raises(LabError):
        bulk_peer_slot(k)


def test_gateway_ip_batch() -> None:
    spec = LabSpec(clients=1)
    assert gateway_ip_batch(spec, spec.client_plans()) == [
        "link set lo up",
        "link add br0 type bridge forward_delay 0",
        "addr add 198.51.100.1/24 dev br0",
        "addr add 203.0.113.1/24 dev br0",
        "addr add 192.0.2.1/24 dev br0",
        "link set br0 up",
        "link add vdemoc1 type veth peer name eth0 netns wgsiem-demo-c1",
        "link set vdemoc1 master br0",
        "link set vdemoc1 up",
    ]


def test_veth_batch_is_the_client_part_of_the_gateway_batch() -> None:
    spec = LabSpec(clients=1)
    assert gateway_ip_batch(spec, spec.client_plans())[-3:] == veth_batch(spec.client(1))


def test_client_ip_batch_ipv6() -> None:
    assert client_ip_batch(LabSpec(ipv6=True).client(2)) == [
        "link set lo up",
        "addr add 203.0.113.12/24 dev eth0",
        "addr add 2001:db8:1::12/64 dev eth0 nodad",
        "link set eth0 up",
        "route add default via 203.0.113.1",
        "route add default via 2001:db8:1::1",
    ]


def test_roam_address_family_must_match_how_the_client_dials() -> None:
    spec = LabSpec(clients=2, ipv6=True)
    with pytest.raises(LabError, match="dials the gateway over IPv6"):
        roam_target(spec, 2, "192.0.2.40")
    with pytest.raises(LabError, match="dials the gateway over IPv4"):
        roam_target(spec, 1, "2001:db8:2::40")
    assert roam_target(spec, 2, "2001:db8:1::40").address == IPv6Interface("2001:db8:1::40/64")


def test_roam_to_ipv6_in_an_ipv4_lab_is_refused() -> None:
    with pytest.raises(LabError):
        roam_target(LabSpec(), 1, "2001:db8:1::5")
