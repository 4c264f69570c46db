"""Every line of the reference (verbatim real lines and the rendered catalogue) → its exact record."""

from __future__ import annotations

from pathlib import Path

import pytest

from wgsiem.sources.kernel_log.messages import parse_endpoint, parse_message
from wgsiem.sources.kernel_log.records import DebugPrefix, Endpoint, KernelMessage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kernel_log"

EXPECTED = [
    # dmesg_wsl_10841.txt
    (
        "dmesg_wsl_10841.txt",
        1,
        KernelMessage(action="interface-created", text="wg0: Interface created", interface="wg0"),
    ),
    (
        "dmesg_wsl_10841.txt",
        2,
        KernelMessage(action="peer-created", text="wg0: Peer 1 created", interface="wg0", peer_id=1),
    ),
    (
        "dmesg_wsl_10841.txt",
        3,
        KernelMessage(
            action="handshake-initiation-sent",
            text="wg0: Sending handshake initiation to peer 1 (172.30.0.2:51820)",
            interface="wg0",
            peer_id=1,
            endpoint=Endpoint(text="172.30.0.2:51820", ip="172.30.0.2", port=51820),
            direction="outbound",
        ),
    ),
    (
        "dmesg_wsl_10841.txt",
        4,
        KernelMessage(
            action="handshake-timeout",
            text="wg0: Handshake for peer 1 (172.30.0.2:51820) did not complete after 5 seconds, retrying (try 2)",  # noqa: E501
            interface="wg0",
            peer_id=1,
            endpoint=Endpoint(text="172.30.0.2:51820", ip="172.30.0.2", port=51820),
            try_number=2,
            after_secs=5,
            direction="outbound",
        ),
    ),
    (
        "dmesg_wsl_10841.txt",
        5,
        KernelMessage(
            action="handshake-initiation-sent",
            text="wg0: Sending handshake initiation to peer 1 (172.30.0.2:51820)",
            interface="wg0",
            peer_id=1,
            endpoint=Endpoint(text="172.30.0.2:51820", ip="172.30.0.2", port=51820),
            direction="outbound",
        ),
    ),
    # kernlog_wgportal_79.txt
    (
        "kernlog_wgportal_79.txt",
        1,
        KernelMessage(
            action="invalid-handshake",
            text="wg0: Invalid handshake initiation from 109.38.151.104:39495",
            interface="wg0",
            endpoint=Endpoint(text="109.38.151.104:39495", ip="109.38.151.104", port=39495),
            direction="inbound",
        ),
    ),
    (
        "kernlog_wgportal_79.txt",
        2,
        KernelMessage(
            action="handshake-timeout",
            text="wg0: Handshake for peer 1 ((einval)) did not complete after 5 seconds, retrying (try 7)",
            interface="wg0",
            peer_id=1,
            endpoint=Endpoint(text="(einval)", unset=True),
            try_number=7,
            after_secs=5,
            direction="outbound",
        ),
    ),
    (
        "kernlog_wgportal_79.txt",
        3,
        KernelMessage(
            action="handshake-initiation-sent",
            text="wg0: Sending handshake initiation to peer 1 ((einval))",
            interface="wg0",
            peer_id=1,
            endpoint=Endpoint(text="(einval)", unset=True),
            direction="outbound",
        ),
    ),
    # dmesg_T_bitvisor.txt
    (
        "dmesg_T_bitvisor.txt",
        1,
        KernelMessage(
            action="module-loaded",
            text="WireGuard 1.0.0 loaded. See www.wireguard.com for information.",
            version="1.0.0",
        ),
    ),
    (
        "dmesg_T_bitvisor.txt",
        2,
        KernelMessage(
            action="module-copyright",
            text="Copyright (C) 2015-2019 Jason A. Donenfeld <Jason@zx2c4.com>. All Rights Reserved.",
        ),
    ),
    (
        "dmesg_T_bitvisor.txt",
        3,
        KernelMessage(action="interface-created", text="wg0: Interface created", interface="wg0"),
    ),
    (
        "dmesg_T_bitvisor.txt",
        4,
        KernelMessage(action="peer-created", text="wg0: Peer 1 created", interface="wg0", peer_id=1),
    ),
    (
        "dmesg_T_bitvisor.txt",
        5,
        KernelMessage(
            action="handshake-initiation-received",
            text="wg0: Receiving handshake initiation from peer 1 (10.16.129.151:52693)",
            interface="wg0",
            peer_id=1,
            endpoint=Endpoint(text="10.16.129.151:52693", ip="10.16.129.151", port=52693),
            direction="inbound",
        ),
    ),
    (
        "dmesg_T_bitvisor.txt",
        6,
        KernelMessage(
            action="handshake-response-sent",
            text="wg0: Sending handshake response to peer 1 (10.16.129.151:52693)",
            interface="wg0",
            peer_id=1,
            endpoint=Endpoint(text="10.16.129.151:52693", ip="10.16.129.151", port=52693),
            direction="outbound",
        ),
    ),
    (
        "dmesg_T_bitvisor.txt",
        7,
        KernelMessage(
            action="keypair-created",
            text="wg0: Keypair 1 created for peer 1",
            interface="wg0",
            peer_id=1,
            keypair_id=1,
        ),
    ),
    (
        "dmesg_T_bitvisor.txt",
        8,
        KernelMessage(
            action="keepalive",
            text="wg0: Receiving keepalive packet from peer 1 (10.16.129.151:52693)",
            interface="wg0",
            peer_id=1,
            endpoint=Endpoint(text="10.16.129.151:52693", ip="10.16.129.151", port=52693),
            direction="inbound",
        ),
    ),
    # journalctl_k_k8s03.txt
    (
        "journalctl_k_k8s03.txt",
        1,
        KernelMessage(
            action="handshake-initiation-received",
            text="wg0: Receiving handshake initiation from peer 25 (125.122.107.150:52647)",
            interface="wg0",
            peer_id=25,
            endpoint=Endpoint(text="125.122.107.150:52647", ip="125.122.107.150", port=52647),
            direction="inbound",
        ),
    ),
    (
        "journalctl_k_k8s03.txt",
        2,
        KernelMessage(
            action="keypair-destroyed",
            text="wg0: Keypair 83096 destroyed for peer 25",
            interface="wg0",
            peer_id=25,
            keypair_id=83096,
        ),
    ),
    (
        "journalctl_k_k8s03.txt",
        3,
        KernelMessage(
            action="keypair-created",
            text="wg0: Keypair 83112 created for peer 25",
            interface="wg0",
            peer_id=25,
            keypair_id=83112,
        ),
    ),
    # dmesg_pivpn_1077.txt
    (
        "dmesg_pivpn_1077.txt",
        1,
        KernelMessage(
            action="handshake-initiation-sent",
            text="example_2: Sending handshake initiation to peer 13 (127.0.0.1:51820)",
            interface="example_2",
            peer_id=13,
            endpoint=Endpoint(text="127.0.0.1:51820", ip="127.0.0.1", port=51820),
            direction="outbound",
        ),
    ),
    (
        "dmesg_pivpn_1077.txt",
        2,
        KernelMessage(
            action="handshake-initiation-received",
            text="wg0: Receiving handshake initiation from peer 10 (127.0.0.1:59519)",
            interface="wg0",
            peer_id=10,
            endpoint=Endpoint(text="127.0.0.1:59519", ip="127.0.0.1", port=59519),
            direction="inbound",
        ),
    ),
    (
        "dmesg_pivpn_1077.txt",
        3,
        KernelMessage(
            action="handshake-response-sent",
            text="wg0: Sending handshake response to peer 10 (127.0.0.1:59519)",
            interface="wg0",
            peer_id=10,
            endpoint=Endpoint(text="127.0.0.1:59519", ip="127.0.0.1", port=59519),
            direction="outbound",
        ),
    ),
    (
        "dmesg_pivpn_1077.txt",
        4,
        KernelMessage(
            action="keypair-destroyed",
            text="wg0: Keypair 146 destroyed for peer 10",
            interface="wg0",
            peer_id=10,
            keypair_id=146,
        ),
    ),
    (
        "dmesg_pivpn_1077.txt",
        5,
        KernelMessage(
            action="keypair-created",
            text="wg0: Keypair 150 created for peer 10",
            interface="wg0",
            peer_id=10,
            keypair_id=150,
        ),
    ),
    (
        "dmesg_pivpn_1077.txt",
        6,
        KernelMessage(
            action="handshake-response-received",
            text="example_2: Receiving handshake response from peer 13 (127.0.0.1:51820)",
            interface="example_2",
            peer_id=13,
            endpoint=Endpoint(text="127.0.0.1:51820", ip="127.0.0.1", port=51820),
            direction="inbound",
        ),
    ),
    (
        "dmesg_pivpn_1077.txt",
        7,
        KernelMessage(
            action="userspace-delivery-failed",
            text="wg0: Failed to give packet to userspace from peer 10 (127.0.0.1:59519)",
            interface="wg0",
            peer_id=10,
            endpoint=Endpoint(text="127.0.0.1:59519", ip="127.0.0.1", port=59519),
            direction="inbound",
        ),
    ),
    (
        "dmesg_pivpn_1077.txt",
        8,
        KernelMessage(
            action="messages-suppressed",
            text="net_ratelimit: 2 callbacks suppressed",
            module="net_ratelimit",
            suppressed=2,
        ),
    ),
    # other_renderings.txt
    (
        "other_renderings.txt",
        1,
        KernelMessage(
            action="handshake-initiation-received",
            text="wg0: Receiving handshake initiation from peer 6 (1.200.48.72:19543)",
            interface="wg0",
            peer_id=6,
            endpoint=Endpoint(text="1.200.48.72:19543", ip="1.200.48.72", port=19543),
            direction="inbound",
            debug=DebugPrefix(
                thread="9441", module="wireguard", function="wg_receive_handshake_packet", line=158
            ),
        ),
    ),
    (
        "other_renderings.txt",
        2,
        KernelMessage(
            action="invalid-ip-packet", text="wg: Invalid IP packet", interface="wg", direction="outbound"
        ),
    ),
    (
        "other_renderings.txt",
        3,
        KernelMessage(
            action="unallowed-source-ip",
            text="awg0: Packet has unallowed src IP (192.168.1.53) from peer 6 (192.168.1.53:53759)",
            module="amneziawg",
            interface="awg0",
            peer_id=6,
            endpoint=Endpoint(text="192.168.1.53:53759", ip="192.168.1.53", port=53759),
            inner_ip="192.168.1.53",
            direction="inbound",
        ),
    ),
    (
        "other_renderings.txt",
        4,
        KernelMessage(
            action="handshake-timeout",
            text='Wireguard1: handshake for peer "public key wg" (49) (XXX.XXX.XXX.63:14547) did not complete after 1 seconds, retrying (try 5)',  # noqa: E501
            interface="Wireguard1",
            peer_id=49,
            peer_name="public key wg",
            endpoint=Endpoint(text="XXX.XXX.XXX.63:14547"),
            try_number=5,
            after_secs=1,
            direction="outbound",
        ),
    ),
    (
        "other_renderings.txt",
        5,
        KernelMessage(
            action="invalid-mac",
            text="Wireguard1: invalid MAC of handshake, dropping packet from XXX.XXX.XXX.63:14547",
            interface="Wireguard1",
            endpoint=Endpoint(text="XXX.XXX.XXX.63:14547"),
            direction="inbound",
        ),
    ),
    # catalogue_rendered.txt
    (
        "catalogue_rendered.txt",
        1,
        KernelMessage(
            action="invalid-ip-packet", text="wg0: Invalid IP packet", interface="wg0", direction="outbound"
        ),
    ),
    (
        "catalogue_rendered.txt",
        2,
        KernelMessage(
            action="no-allowed-ips-match",
            text="wg0: No peer has allowed IPs matching 10.9.0.7",
            interface="wg0",
            inner_ip="10.9.0.7",
            direction="outbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        3,
        KernelMessage(
            action="no-allowed-ips-match",
            text="wg0: No peer has allowed IPs matching 2001:0db8:0000:0000:0000:0000:0000:0007",
            interface="wg0",
            inner_ip="2001:0db8:0000:0000:0000:0000:0000:0007",
            direction="outbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        4,
        KernelMessage(
            action="no-endpoint",
            text="wg0: No valid endpoint has been configured or discovered for peer 4",
            interface="wg0",
            peer_id=4,
            direction="outbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        5,
        KernelMessage(action="interface-destroyed", text="wg0: Interface destroyed", interface="wg0"),
    ),
    (
        "catalogue_rendered.txt",
        6,
        KernelMessage(action="interface-created", text="wg0: Interface created", interface="wg0"),
    ),
    (
        "catalogue_rendered.txt",
        7,
        KernelMessage(action="namespace-exiting", text="wg0: Creating namespace exiting", interface="wg0"),
    ),
    (
        "catalogue_rendered.txt",
        8,
        KernelMessage(action="peer-created", text="wg0: Peer 4 created", interface="wg0", peer_id=4),
    ),
    (
        "catalogue_rendered.txt",
        9,
        KernelMessage(
            action="peer-destroyed",
            text="wg0: Peer 4 (203.0.113.7:51820) destroyed",
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
        ),
    ),
    (
        "catalogue_rendered.txt",
        10,
        KernelMessage(
            action="keypair-destroyed",
            text="wg0: Keypair 12 destroyed for peer 4",
            interface="wg0",
            peer_id=4,
            keypair_id=12,
        ),
    ),
    (
        "catalogue_rendered.txt",
        11,
        KernelMessage(
            action="keypair-created",
            text="wg0: Keypair 13 created for peer 4",
            interface="wg0",
            peer_id=4,
            keypair_id=13,
        ),
    ),
    (
        "catalogue_rendered.txt",
        12,
        KernelMessage(
            action="cookie-received",
            text="wg0: Receiving cookie response from 203.0.113.7:51820",
            interface="wg0",
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        13,
        KernelMessage(
            action="invalid-mac",
            text="wg0: Invalid MAC of handshake, dropping packet from 198.51.100.23:40000",
            interface="wg0",
            endpoint=Endpoint(text="198.51.100.23:40000", ip="198.51.100.23", port=40000),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        14,
        KernelMessage(
            action="invalid-handshake",
            text="wg0: Invalid handshake initiation from 198.51.100.23:40000",
            interface="wg0",
            endpoint=Endpoint(text="198.51.100.23:40000", ip="198.51.100.23", port=40000),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        15,
        KernelMessage(
            action="handshake-initiation-received",
            text="wg0: Receiving handshake initiation from peer 4 (203.0.113.7:51820)",
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        16,
        KernelMessage(
            action="invalid-handshake-response",
            text="wg0: Invalid handshake response from 198.51.100.23:40000",
            interface="wg0",
            endpoint=Endpoint(text="198.51.100.23:40000", ip="198.51.100.23", port=40000),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        17,
        KernelMessage(
            action="handshake-response-received",
            text="wg0: Receiving handshake response from peer 4 (203.0.113.7:51820)",
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        18,
        KernelMessage(
            action="keepalive",
            text="wg0: Receiving keepalive packet from peer 4 (203.0.113.7:51820)",
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        19,
        KernelMessage(
            action="unallowed-source-ip",
            text="wg0: Packet has unallowed src IP (10.9.0.99) from peer 4 (203.0.113.7:51820)",
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            inner_ip="10.9.0.99",
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        20,
        KernelMessage(
            action="invalid-packet-protocol",
            text="wg0: Packet is neither ipv4 nor ipv6 from peer 4 (203.0.113.7:51820)",
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        21,
        KernelMessage(
            action="invalid-packet-size",
            text="wg0: Packet has incorrect size from peer 4 (203.0.113.7:51820)",
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        22,
        KernelMessage(
            action="invalid-nonce",
            text="wg0: Packet has invalid nonce 1844 (max 9000)",
            interface="wg0",
            nonce=1844,
            max_nonce=9000,
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        23,
        KernelMessage(
            action="handshake-dropped",
            text="wg0: Dropping handshake packet from 198.51.100.23:40000",
            interface="wg0",
            endpoint=Endpoint(text="198.51.100.23:40000", ip="198.51.100.23", port=40000),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        24,
        KernelMessage(
            action="kernel-warning", text="Somehow a wrong type of packet wound up in the handshake queue!"
        ),
    ),
    (
        "catalogue_rendered.txt",
        25,
        KernelMessage(
            action="kernel-warning",
            text="Non-exhaustive parsing of packet header lead to unknown packet type!",
        ),
    ),
    (
        "catalogue_rendered.txt",
        26,
        KernelMessage(
            action="userspace-delivery-failed",
            text="wg0: Failed to give packet to userspace from peer 4 (203.0.113.7:51820)",
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        27,
        KernelMessage(
            action="handshake-initiation-sent",
            text="wg0: Sending handshake initiation to peer 4 (203.0.113.7:51820)",
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            direction="outbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        28,
        KernelMessage(
            action="handshake-response-sent",
            text="wg0: Sending handshake response to peer 4 (203.0.113.7:51820)",
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            direction="outbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        29,
        KernelMessage(
            action="cookie-sent",
            text="wg0: Sending cookie response for denied handshake message for 198.51.100.23:40000",
            interface="wg0",
            endpoint=Endpoint(text="198.51.100.23:40000", ip="198.51.100.23", port=40000),
            direction="outbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        30,
        KernelMessage(
            action="keepalive",
            text="wg0: Sending keepalive packet to peer 4 (203.0.113.7:51820)",
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            direction="outbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        31,
        KernelMessage(
            action="handshake-given-up",
            text="wg0: Handshake for peer 4 (203.0.113.7:51820) did not complete after 20 attempts, giving up",  # noqa: E501
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            attempts=20,
            direction="outbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        32,
        KernelMessage(
            action="handshake-timeout",
            text="wg0: Handshake for peer 4 (203.0.113.7:51820) did not complete after 5 seconds, retrying (try 2)",  # noqa: E501
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            try_number=2,
            after_secs=5,
            direction="outbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        33,
        KernelMessage(
            action="handshake-retry",
            text="wg0: Retrying handshake with peer 4 (203.0.113.7:51820) because we stopped hearing back after 15 seconds",  # noqa: E501
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            after_secs=15,
            direction="outbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        34,
        KernelMessage(
            action="keys-zeroed",
            text="wg0: Zeroing out all keys for peer 4 (203.0.113.7:51820), since we haven't received a new one in 540 seconds",  # noqa: E501
            interface="wg0",
            peer_id=4,
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            after_secs=540,
        ),
    ),
    (
        "catalogue_rendered.txt",
        35,
        KernelMessage(
            action="no-route",
            text="wg0: No route to 203.0.113.7:51820, error -22",
            interface="wg0",
            endpoint=Endpoint(text="203.0.113.7:51820", ip="203.0.113.7", port=51820),
            errno=-22,
            direction="outbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        36,
        KernelMessage(
            action="socket-create-failed",
            text="wg0: Could not create IPv4 socket",
            interface="wg0",
            ip_version=4,
        ),
    ),
    (
        "catalogue_rendered.txt",
        37,
        KernelMessage(
            action="socket-create-failed",
            text="wg0: Could not create IPv6 socket",
            interface="wg0",
            ip_version=6,
        ),
    ),
    (
        "catalogue_rendered.txt",
        38,
        KernelMessage(
            action="invalid-cookie",
            text="wg0: Could not decrypt invalid cookie response",
            interface="wg0",
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        39,
        KernelMessage(
            action="handshake-initiation-received",
            text="wg0: Receiving handshake initiation from peer 5 ([2001:db8::5]:51820/0%0)",
            interface="wg0",
            peer_id=5,
            endpoint=Endpoint(
                text="[2001:db8::5]:51820/0%0", ip="2001:db8::5", port=51820, flowinfo=0, scope_id=0
            ),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        40,
        KernelMessage(
            action="keepalive",
            text="wg0: Receiving keepalive packet from peer 5 ([fe80::1]:51820/0%3)",
            interface="wg0",
            peer_id=5,
            endpoint=Endpoint(text="[fe80::1]:51820/0%3", ip="fe80::1", port=51820, flowinfo=0, scope_id=3),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        41,
        KernelMessage(
            action="invalid-handshake",
            text="wg0: Invalid handshake initiation from [2001:db8::66]:40000/0%0",
            interface="wg0",
            endpoint=Endpoint(
                text="[2001:db8::66]:40000/0%0", ip="2001:db8::66", port=40000, flowinfo=0, scope_id=0
            ),
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        42,
        KernelMessage(
            action="unallowed-source-ip",
            text="wg0: Packet has unallowed src IP (fd00::99) from peer 5 ([2001:db8::5]:51820/0%0)",
            interface="wg0",
            peer_id=5,
            endpoint=Endpoint(
                text="[2001:db8::5]:51820/0%0", ip="2001:db8::5", port=51820, flowinfo=0, scope_id=0
            ),
            inner_ip="fd00::99",
            direction="inbound",
        ),
    ),
    (
        "catalogue_rendered.txt",
        43,
        KernelMessage(
            action="no-route",
            text="wg0: No route to [2001:db8::5]:51820/0%0, error -101",
            interface="wg0",
            endpoint=Endpoint(
                text="[2001:db8::5]:51820/0%0", ip="2001:db8::5", port=51820, flowinfo=0, scope_id=0
            ),
            errno=-101,
            direction="outbound",
        ),
    ),
]


def _line(name: str, number: int) -> str:
    return (FIXTURES / name).read_text().splitlines()[number - 1]


@pytest.mark.parametrize(("name", "number", "expected"), EXPECTED, ids=[f"{n}:{i}" for n, i, _ in EXPECTED])
def test_reference_line(name: str, number: int, expected: KernelMessage) -> None:
    assert parse_message(_line(name, number)) == expected


def test_every_fixture_line_is_covered() -> None:
    covered = {(n, i) for n, i, _ in EXPECTED}
    for name in {n for n, _, _ in EXPECTED}:
        count = len((FIXTURES / name).read_text().splitlines())
        assert {(name, i) for i in range(1, count + 1)} <= covered


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(einval)", Endpoint("(einval)", unset=True)),
        ("192.0.2.1:51820", Endpoint("192.0.2.1:51820", "192.0.2.1", 51820)),
        ("[2001:DB8::1]:51820/0%0", Endpoint("[2001:DB8::1]:51820/0%0", "2001:db8::1", 51820, 0, 0)),
        ("[fe80::1]:1/123456789%3", Endpoint("[fe80::1]:1/123456789%3", "fe80::1", 1, 123456789, 3)),
        ("[2001:db8::1]:51820", Endpoint("[2001:db8::1]:51820", "2001:db8::1", 51820)),
        ("300.1.1.1:5", Endpoint("300.1.1.1:5")),
        ("192.0.2.1:70000", Endpoint("192.0.2.1:70000")),
        ("XXX.XXX.XXX.63:14547", Endpoint("XXX.XXX.XXX.63:14547")),
    ],
)
def test_endpoint(text: str, expected: Endpoint) -> None:
    assert parse_endpoint(text) == expected


def test_endpoint_address_for_the_peer_directory() -> None:
    assert parse_endpoint("[2001:db8::1]:51820/0%0").address == "[2001:db8::1]:51820"
    assert parse_endpoint("192.0.2.1:51820").address == "192.0.2.1:51820"
    assert parse_endpoint("(einval)").address is None


def test_debug_prefix_variants() -> None:
    body = "wireguard: wg0: Peer 1 created"
    assert parse_message("<intr> wireguard:wg_peer_create:62: " + body).debug == DebugPrefix(
        "intr", "wireguard", "wg_peer_create", 62
    )
    assert parse_message("wg_peer_create: " + body).debug == DebugPrefix(None, None, "wg_peer_create", None)
    assert parse_message(body).debug is None


def test_unknown_wireguard_message_is_kept_as_unrecognized() -> None:
    assert parse_message("wireguard: wg0: Something new in kernel 7.1") == KernelMessage(
        action="unrecognized", text="wg0: Something new in kernel 7.1", interface="wg0"
    )


def test_other_kernel_lines_are_not_ours() -> None:
    assert parse_message("[UFW BLOCK] IN=eth0 OUT= SRC=192.0.2.1") is None
    assert parse_message("e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex") is None
    assert parse_message("net_ratelimit: whatever") is None
