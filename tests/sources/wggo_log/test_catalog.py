"""Every message of the wireguard-go catalogue (shared/reference/formats/03_wireguard_go.md) → its
exact action and parameters."""

from __future__ import annotations

import pytest

from wgsiem.sources.wggo_log.catalog import ACTIONS, Classified, classify

P = "peer(HIgo…8ykw)"
H, T = "HIgo", "8ykw"

CASES: list[tuple[str, Classified]] = [
    # device/receive.go (verbose)
    (
        "Routine: receive incoming v4 - started",
        Classified("routine-started", fields=(("routine", "receive incoming v4"),)),
    ),
    (
        "Routine: receive incoming v6 - stopped",
        Classified("routine-stopped", fields=(("routine", "receive incoming v6"),)),
    ),
    (
        "Routine: receive incoming IPv4 - stopped",
        Classified("routine-stopped", fields=(("routine", "receive incoming IPv4"),)),
    ),
    (
        "Routine: receive incoming receiveIPv4 - started",
        Classified("routine-started", fields=(("routine", "receive incoming receiveIPv4"),)),
    ),
    (
        "Failed to receive v4 packet: read udp4 0.0.0.0:51820: use of closed network connection",
        Classified(
            "packet-receive-failed",
            fields=(
                ("receiver", "v4"),
                ("error", "read udp4 0.0.0.0:51820: use of closed network connection"),
            ),
        ),
    ),
    ("Received message with unknown type", Classified("invalid-message-type")),
    (
        "Routine: decryption worker 2 - stopped",
        Classified("routine-stopped", fields=(("routine", "decryption worker"), ("worker", 2))),
    ),
    (
        "Routine: decryption worker 1 - started",
        Classified("routine-started", fields=(("routine", "decryption worker"), ("worker", 1))),
    ),
    (
        "Routine: handshake worker 1 - started",
        Classified("routine-started", fields=(("routine", "handshake worker"), ("worker", 1))),
    ),
    ("Failed to decode cookie reply", Classified("invalid-cookie-reply")),
    (
        "Receiving cookie response from 198.51.100.7:51820",
        Classified("cookie-received", fields=(("endpoint", "198.51.100.7:51820"),)),
    ),
    (  # pre-2021 Println spacing
        "Receiving cookie response from  198.51.100.7:51820",
        Classified("cookie-received", fields=(("endpoint", "198.51.100.7:51820"),)),
    ),
    ("Could not decrypt invalid cookie response", Classified("invalid-cookie")),
    ("Received packet with invalid mac1", Classified("invalid-mac")),
    (
        "Received invalid initiation message from 203.0.113.12:41694",
        Classified("invalid-handshake", fields=(("endpoint", "203.0.113.12:41694"),)),
    ),
    (
        "Received invalid initiation message from [2001:db8::12]:41694",
        Classified("invalid-handshake", fields=(("endpoint", "[2001:db8::12]:41694"),)),
    ),
    (f"{P} - Received handshake initiation", Classified("handshake-initiation-received", H, T)),
    (
        "Received invalid response message from 192.0.2.1:51820",
        Classified("invalid-handshake-response", fields=(("endpoint", "192.0.2.1:51820"),)),
    ),
    (f"{P} - Received handshake response", Classified("handshake-response-received", H, T)),
    (
        f"{P} - Routine: sequential receiver - stopped",
        Classified("routine-stopped", H, T, (("routine", "sequential receiver"),)),
    ),
    (
        f"{P} - Routine: sequential receiver - started",
        Classified("routine-started", H, T, (("routine", "sequential receiver"),)),
    ),
    (f"{P} - Receiving keepalive packet", Classified("keepalive", H, T, (("direction", "inbound"),))),
    (
        f"IPv4 packet with disallowed source address from {P}",
        Classified("unallowed-source-ip", H, T, (("ip_version", 4),)),
    ),
    (
        f"IPv6 packet with disallowed source address from {P}",
        Classified("unallowed-source-ip", H, T, (("ip_version", 6),)),
    ),
    (f"Packet with invalid IP version from {P}", Classified("invalid-packet-protocol", H, T)),
    # device/send.go
    (f"{P} - Sending keepalive packet", Classified("keepalive", H, T, (("direction", "outbound"),))),
    (f"{P} - Sending handshake initiation", Classified("handshake-initiation-sent", H, T)),
    (f"{P} - Sending handshake response", Classified("handshake-response-sent", H, T)),
    (
        "Sending cookie response for denied handshake message for 203.0.113.9:1024",
        Classified("cookie-sent", fields=(("endpoint", "203.0.113.9:1024"),)),
    ),
    ("Routine: TUN reader - stopped", Classified("routine-stopped", fields=(("routine", "TUN reader"),))),
    ("Routine: TUN reader - started", Classified("routine-started", fields=(("routine", "TUN reader"),))),
    ("Received packet with unknown IP version", Classified("invalid-ip-packet")),
    (
        "Dropped some packets from multi-segment read: too many segments",
        Classified("tun-read-dropped", fields=(("error", "too many segments"),)),
    ),
    (
        "Routine: encryption worker 2 - started",
        Classified("routine-started", fields=(("routine", "encryption worker"), ("worker", 2))),
    ),
    (
        f"{P} - Routine: sequential sender - stopped",
        Classified("routine-stopped", H, T, (("routine", "sequential sender"),)),
    ),
    (
        f"{P} - Routine: sequential sender - started",
        Classified("routine-started", H, T, (("routine", "sequential sender"),)),
    ),
    # device.log.Verbosef(err.Error()): any text; kept, unclassified
    (
        "write udp4 0.0.0.0:51820->192.0.2.1:51820: sendmsg: network is unreachable",
        Classified("unrecognized"),
    ),
    # device/timers.go
    (
        f"{P} - Handshake did not complete after 20 attempts, giving up",
        Classified("handshake-given-up", H, T, (("attempts", 20),)),
    ),
    (
        f"{P} - Handshake did not complete after 5 seconds, retrying (try 2)",
        Classified("handshake-timeout", H, T, (("after_secs", 5), ("try", 2))),
    ),
    (
        f"{P} - Retrying handshake because we stopped hearing back after 15 seconds",
        Classified("handshake-retry", H, T, (("after_secs", 15),)),
    ),
    (
        f"{P} - Removing all keys, since we haven't received a new one in 540 seconds",
        Classified("keys-zeroed", H, T, (("after_secs", 540),)),
    ),
    # device/noise-protocol.go
    (
        f"{P} - ConsumeMessageInitiation: handshake replay @ 4000000065f1a2b3000f4240",
        Classified("invalid-handshake-replay", H, T, (("tai64n", "4000000065f1a2b3000f4240"),)),
    ),
    (f"{P} - ConsumeMessageInitiation: handshake flood", Classified("invalid-handshake-flood", H, T)),
    # device/peer.go
    (f"{P} - Starting", Classified("peer-started", H, T)),
    (f"{P} - Stopping", Classified("peer-stopped", H, T)),
    # device/device.go
    (
        "Interface closed, ignored requested state Up",
        Classified("device-state-ignored", fields=(("state_requested", "Up"),)),
    ),
    (
        "Interface state was Down, requested Up, now Up",
        Classified(
            "device-up", fields=(("state_old", "Down"), ("state_requested", "Up"), ("state_new", "Up"))
        ),
    ),
    (
        "Interface state was Up, requested Down, now Down",
        Classified(
            "device-down", fields=(("state_old", "Up"), ("state_requested", "Down"), ("state_new", "Down"))
        ),
    ),
    (
        "Interface state was Up, requested Closed, now Closed",
        Classified(
            "device-state-changed",
            fields=(("state_old", "Up"), ("state_requested", "Closed"), ("state_new", "Closed")),
        ),
    ),
    ("Device closing", Classified("device-closing")),
    ("Device closed", Classified("device-closed")),
    ("UDP bind has been updated", Classified("bind-updated")),
    # device/tun.go
    ("Routine: event worker - started", Classified("routine-started", fields=(("routine", "event worker"),))),
    ("Routine: event worker - stopped", Classified("routine-stopped", fields=(("routine", "event worker"),))),
    ("MTU updated: 1420", Classified("mtu-updated", fields=(("mtu", 1420), ("mtu_note", "")))),
    (
        "MTU updated: 65535 (too large, capped at 65535)",
        Classified("mtu-updated", fields=(("mtu", 65535), ("mtu_note", " (too large, capped at 65535)"))),
    ),
    ("Interface up requested", Classified("interface-up-requested")),
    ("Interface down requested", Classified("interface-down-requested")),
    # device/uapi.go
    ("UAPI: Updating private key", Classified("uapi-private-key-updated")),
    ("UAPI: Updating listen port", Classified("uapi-listen-port-updated")),
    ("UAPI: Updating fwmark", Classified("uapi-fwmark-updated")),
    ("UAPI: Removing all peers", Classified("uapi-peers-cleared")),
    (f"{P} - UAPI: Created", Classified("uapi-peer-created", H, T)),
    (f"{P} - UAPI: Removing", Classified("uapi-peer-removed", H, T)),
    (f"{P} - UAPI: Updating preshared key", Classified("uapi-preshared-key-updated", H, T)),
    (f"{P} - UAPI: Updating endpoint", Classified("uapi-endpoint-updated", H, T)),
    (
        f"{P} - UAPI: Updating persistent keepalive interval",
        Classified("uapi-persistent-keepalive-updated", H, T),
    ),
    (f"{P} - UAPI: Removing all allowedips", Classified("uapi-allowed-ips-cleared", H, T)),
    (f"{P} - UAPI: Adding allowedip", Classified("uapi-allowed-ip-added", H, T)),
    (f"{P} - UAPI: Removing allowedip", Classified("uapi-allowed-ip-removed", H, T)),
    # main.go
    (
        "Starting wireguard-go version 0.0.20220316",
        Classified("daemon-started", fields=(("version", "0.0.20220316"),)),
    ),
    ("Device started", Classified("device-started")),
    ("UAPI listener started", Classified("uapi-listener-started")),
    ("Shutting down", Classified("daemon-stopping")),
    # errors: device.go
    (
        "Unable to update bind: listen udp4 :51820: bind: address already in use",
        Classified(
            "bind-update-failed", fields=(("error", "listen udp4 :51820: bind: address already in use"),)
        ),
    ),
    (
        "Bind close failed: bad file descriptor",
        Classified("bind-close-failed", fields=(("error", "bad file descriptor"),)),
    ),
    (
        "Trouble determining MTU, assuming default: no such device",
        Classified("mtu-unknown", fields=(("error", "no such device"),)),
    ),
    # errors: receive.go
    ("Invalid packet ended up in the handshake queue", Classified("invalid-handshake-queue-packet")),
    ("Failed to decode initiation message", Classified("handshake-initiation-decode-failed")),
    ("Failed to decode response message", Classified("handshake-response-decode-failed")),
    (
        f"{P} - Failed to derive keypair: invalid state for keypair derivation",
        Classified("keypair-derivation-failed", H, T, (("error", "invalid state for keypair derivation"),)),
    ),
    (
        "Failed to write packets to TUN device: input/output error",
        Classified("tun-write-failed", fields=(("error", "input/output error"),)),
    ),
    (  # before 2022: one packet at a time
        "Failed to write packet to TUN device: input/output error",
        Classified("tun-write-failed", fields=(("error", "input/output error"),)),
    ),
    # errors: send.go
    (
        f"{P} - Failed to create initiation message: no known public key",
        Classified("handshake-initiation-create-failed", H, T, (("error", "no known public key"),)),
    ),
    (
        f"{P} - Failed to send handshake initiation: no known endpoint for peer",
        Classified("handshake-initiation-send-failed", H, T, (("error", "no known endpoint for peer"),)),
    ),
    (
        f"{P} - Failed to create response message: invalid state",
        Classified("handshake-response-create-failed", H, T, (("error", "invalid state"),)),
    ),
    (
        f"{P} - Failed to send handshake response: network is unreachable",
        Classified("handshake-response-send-failed", H, T, (("error", "network is unreachable"),)),
    ),
    (
        "Failed to create cookie reply: bad mac",
        Classified("cookie-reply-create-failed", fields=(("error", "bad mac"),)),
    ),
    (
        "Failed to read packet from TUN device: file already closed",
        Classified("tun-read-failed", fields=(("error", "file already closed"),)),
    ),
    (
        f"{P} - Failed to send data packets: no known endpoint for peer",
        Classified("data-send-failed", H, T, (("error", "no known endpoint for peer"),)),
    ),
    # errors: tun.go
    (
        "Failed to load updated MTU of device: no such device",
        Classified("mtu-read-failed", fields=(("error", "no such device"),)),
    ),
    ("MTU not updated to negative value: -1", Classified("mtu-invalid", fields=(("error", "-1"),))),
    # errors: uapi.go (verbatim from tests/fixtures/wggo_log/gateway.log)
    (
        'IPC error -22: failed to parse listen_port: strconv.ParseUint: parsing "notaport": invalid syntax',
        Classified(
            "uapi-error",
            fields=(
                ("code", "-22"),
                (
                    "error",
                    'failed to parse listen_port: strconv.ParseUint: parsing "notaport": invalid syntax',
                ),
            ),
        ),
    ),
    ("invalid UAPI operation: bogus=1", Classified("uapi-invalid-operation", fields=(("error", "bogus=1"),))),
    # errors: main.go
    (
        "Failed to create TUN device: operation not permitted",
        Classified("tun-create-failed", fields=(("error", "operation not permitted"),)),
    ),
    (
        "UAPI listen error: accept unix: use of closed network connection",
        Classified(
            "uapi-listen-failed", fields=(("error", "accept unix: use of closed network connection"),)
        ),
    ),
    (
        "Failed to determine executable: no such file",
        Classified("daemonize-failed", fields=(("error", "no such file"),)),
    ),
    (
        "Failed to daemonize: fork/exec: permission denied",
        Classified("daemonize-failed", fields=(("error", "fork/exec: permission denied"),)),
    ),
    (
        "Failed to listen on uapi socket: permission denied",
        Classified("uapi-listen-failed", fields=(("error", "permission denied"),)),
    ),
    # WireGuardKit (Apple) extras
    ("Attaching to interface", Classified("interface-attached")),
    (
        "Unable to update bind, try 2: network is down",
        Classified("bind-update-failed", fields=(("bind_try", 2), ("error", "network is down"))),
    ),
    ("Gave up trying to update bind; tunnel is likely dysfunctional", Classified("bind-update-given-up")),
    # not in any catalogue: kept, with its peer when it names one
    (f"{P} - Something new in a future release", Classified("unrecognized", H, T)),
]


@pytest.mark.parametrize(("message", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_classify(message: str, expected: Classified) -> None:
    assert classify(message) == expected


def test_every_action_is_produced_by_some_message() -> None:
    produced = {c.action for _, c in CASES} | {"daemon-exited"}  # daemon-exited is wgsiem's own event
    assert set(ACTIONS) == produced


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # the message part of embedders' lines (reference §4): the catalogue is shared by any line format
        (
            "peer(LW3Y…OqDE) - Handshake did not complete after 5 seconds, retrying (try 2)",
            "handshake-timeout",
        ),
        ("peer(UvdZ…PWwg) - Sending handshake initiation", "handshake-initiation-sent"),
        # warp-plus fork: "10 seconds"
        (
            "peer(bmXO…fgyo) - Handshake did not complete after 10 seconds, retrying (try 3)",
            "handshake-timeout",
        ),
    ],
)
def test_embedder_messages(message: str, expected: str) -> None:
    assert classify(message).action == expected


def test_peer_abbreviation_with_base64_symbols() -> None:
    c = classify("peer(WgWB…a/gg) - Sending handshake initiation")
    assert (c.head, c.tail) == ("WgWB", "a/gg")
    c = classify("peer(d+jm…mRM) - Sending handshake initiation")  # 3 chars: not an abbreviation
    assert (c.action, c.head) == ("unrecognized", None)
