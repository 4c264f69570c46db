"""Every wireguard-go log message → an ``event.action`` and its parameters (pure, table-driven).

The catalogue is wireguard-go's own (``device/*.go``, ``main.go``; see
``shared/reference/formats/03_wireguard_go.md``), plus WireGuardKit's extra lines. Action names follow
the kernel source's words where both daemons say the same thing (``handshake-initiation-received``,
``keepalive``, ``invalid-handshake``, ``cookie-sent``, ``handshake-timeout``, ``keys-zeroed``,
``unallowed-source-ip``…, with ``network.direction`` and ``wireguard.handshake.{after_secs,try}``), so one
rule can match either implementation. wireguard-go logs no keypair creation/destruction and no endpoint on
handshake lines: those facts come from the ``wg_state`` source.

Peers appear as ``peer(ABCD…wxyz)``: the first 4 and the 4 last significant base64 characters of the
public key (:class:`Classified` keeps them as ``head``/``tail``; the source resolves them).

A message matching nothing is kept as ``unrecognized`` with its level: a new wireguard-go release must
not lose lines, only their classification.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["ACTIONS", "DIRECTIONS", "Classified", "classify"]

Fields = tuple[tuple[str, Any], ...]


class Classified(NamedTuple):
    """What a message says: its action, the peer abbreviation it names, its parameters."""

    action: str
    head: str | None = None  # peer(HEAD…tail)
    tail: str | None = None
    fields: Fields = ()


# action → (event.category, event.type, event.outcome or None, description for the docs)
ACTIONS: dict[str, tuple[list[str], list[str], str | None, str]] = {
    # handshakes, keepalives, timers (peer)
    "handshake-initiation-sent": (
        ["network", "authentication"],
        ["start"],
        None,
        "Sending handshake initiation",
    ),
    "handshake-initiation-received": (
        ["network", "authentication"],
        ["start"],
        None,
        "Received handshake initiation (a valid one, from a configured peer)",
    ),
    "handshake-response-sent": (
        ["network", "authentication"],
        ["info"],
        "success",
        "Sending handshake response: the peer's initiation was accepted",
    ),
    "handshake-response-received": (
        ["network", "authentication"],
        ["info"],
        "success",
        "Received handshake response: our initiation completed",
    ),
    "keepalive": (
        ["network"],
        ["connection"],
        None,
        "Sending keepalive packet (outbound) / Receiving keepalive packet (inbound)",
    ),
    "handshake-timeout": (
        ["network", "authentication"],
        ["info"],
        "failure",
        "Handshake did not complete after N seconds, retrying (try N)",
    ),
    "handshake-given-up": (
        ["network", "authentication"],
        ["end"],
        "failure",
        "Handshake did not complete after N attempts, giving up",
    ),
    "handshake-retry": (
        ["network", "session"],
        ["info"],
        None,
        "Retrying handshake because we stopped hearing back after N seconds",
    ),
    "keys-zeroed": (
        ["network", "session"],
        ["end"],
        None,
        "Removing all keys, since we haven't received a new one in N seconds (kernel: Zeroing out all keys)",
    ),
    "peer-started": (["network"], ["start"], None, "peer - Starting (device up or peer added)"),
    "peer-stopped": (["network"], ["end"], None, "peer - Stopping (device down or peer removed)"),
    # invalid input (possible scanning, wrong keys, spoofing)
    "invalid-handshake": (
        ["network", "authentication"],
        ["denied"],
        "failure",
        "Received invalid initiation message from ENDPOINT (unknown key, bad decryption)",
    ),
    "invalid-handshake-response": (
        ["network", "authentication"],
        ["denied"],
        "failure",
        "Received invalid response message from ENDPOINT",
    ),
    "invalid-handshake-replay": (
        ["network", "intrusion_detection"],
        ["denied"],
        "failure",
        "ConsumeMessageInitiation: handshake replay @ TAI64N",
    ),
    "invalid-handshake-flood": (
        ["network", "intrusion_detection"],
        ["denied"],
        "failure",
        "ConsumeMessageInitiation: handshake flood",
    ),
    "invalid-mac": (
        ["network", "authentication"],
        ["denied"],
        "failure",
        "Received packet with invalid mac1 (kernel: Invalid MAC of handshake)",
    ),
    "invalid-message-type": (["network"], ["denied"], "failure", "Received message with unknown type"),
    "invalid-cookie-reply": (["network"], ["denied"], "failure", "Failed to decode cookie reply"),
    "invalid-cookie": (
        ["network", "authentication"],
        ["denied"],
        "failure",
        "Could not decrypt invalid cookie response",
    ),
    "unallowed-source-ip": (
        ["network", "intrusion_detection"],
        ["denied"],
        "failure",
        "IPv4/IPv6 packet with disallowed source address from peer (AllowedIPs violation)",
    ),
    "invalid-packet-protocol": (
        ["network"],
        ["denied"],
        "failure",
        "Packet with invalid IP version from peer",
    ),
    "invalid-ip-packet": (
        ["network"],
        ["denied"],
        "failure",
        "Received packet with unknown IP version (from the TUN side)",
    ),
    "invalid-handshake-queue-packet": (
        ["network"],
        ["denied"],
        "failure",
        "Invalid packet ended up in the handshake queue",
    ),
    "handshake-initiation-decode-failed": (
        ["network"],
        ["denied"],
        "failure",
        "Failed to decode initiation message",
    ),
    "handshake-response-decode-failed": (
        ["network"],
        ["denied"],
        "failure",
        "Failed to decode response message",
    ),
    # cookies (load / DoS)
    "cookie-sent": (
        ["network"],
        ["denied"],
        None,
        "Sending cookie response for denied handshake message for ENDPOINT (under load)",
    ),
    "cookie-received": (["network"], ["info"], None, "Receiving cookie response from ENDPOINT"),
    "cookie-reply-create-failed": (["network"], ["info"], "failure", "Failed to create cookie reply"),
    # device and daemon lifecycle
    "daemon-started": (["process"], ["start"], None, "Starting wireguard-go version V"),
    "daemon-stopping": (["process"], ["end"], None, "Shutting down"),
    "daemon-exited": (
        ["process"],
        ["end"],
        None,
        "(wgsiem, command mode) the wireguard-go process wgsiem started exited",
    ),
    "device-started": (["configuration"], ["creation"], None, "Device started"),
    "device-closing": (["configuration"], ["deletion"], None, "Device closing"),
    "device-closed": (["configuration"], ["deletion"], "success", "Device closed"),
    "device-up": (["configuration"], ["change"], None, "Interface state was S, requested R, now Up"),
    "device-down": (["configuration"], ["change"], None, "Interface state was S, requested R, now Down"),
    "device-state-changed": (
        ["configuration"],
        ["change"],
        None,
        "Interface state was S, requested R, now Closed (or another state)",
    ),
    "device-state-ignored": (
        ["configuration"],
        ["change"],
        "failure",
        "Interface closed, ignored requested state S",
    ),
    "interface-up-requested": (["configuration"], ["change"], None, "Interface up requested"),
    "interface-down-requested": (["configuration"], ["change"], None, "Interface down requested"),
    "interface-attached": (["configuration"], ["change"], None, "Attaching to interface (WireGuardKit)"),
    "bind-updated": (["network"], ["info"], None, "UDP bind has been updated"),
    "bind-update-failed": (["network"], ["info"], "failure", "Unable to update bind[, try N]: E"),
    "bind-update-given-up": (
        ["network"],
        ["info"],
        "failure",
        "Gave up trying to update bind; tunnel is likely dysfunctional (WireGuardKit)",
    ),
    "bind-close-failed": (["network"], ["info"], "failure", "Bind close failed: E"),
    "mtu-updated": (["configuration"], ["change"], None, "MTU updated: N"),
    "mtu-unknown": (["configuration"], ["info"], None, "Trouble determining MTU, assuming default: E"),
    "mtu-read-failed": (["configuration"], ["info"], "failure", "Failed to load updated MTU of device: E"),
    "mtu-invalid": (["configuration"], ["info"], "failure", "MTU not updated to negative value: N"),
    "routine-started": (["process"], ["start"], None, "Routine: NAME [N] - started (a goroutine)"),
    "routine-stopped": (["process"], ["end"], None, "Routine: NAME [N] - stopped"),
    # UAPI (configuration through the control socket: wg set, wg-quick…)
    "uapi-listener-started": (["configuration"], ["info"], None, "UAPI listener started"),
    "uapi-private-key-updated": (["configuration"], ["change"], None, "UAPI: Updating private key"),
    "uapi-listen-port-updated": (["configuration"], ["change"], None, "UAPI: Updating listen port"),
    "uapi-fwmark-updated": (["configuration"], ["change"], None, "UAPI: Updating fwmark"),
    "uapi-peers-cleared": (["configuration"], ["deletion"], None, "UAPI: Removing all peers"),
    "uapi-peer-created": (["configuration"], ["creation"], None, "peer - UAPI: Created"),
    "uapi-peer-removed": (["configuration"], ["deletion"], None, "peer - UAPI: Removing"),
    "uapi-preshared-key-updated": (
        ["configuration"],
        ["change"],
        None,
        "peer - UAPI: Updating preshared key",
    ),
    "uapi-endpoint-updated": (["configuration"], ["change"], None, "peer - UAPI: Updating endpoint"),
    "uapi-persistent-keepalive-updated": (
        ["configuration"],
        ["change"],
        None,
        "peer - UAPI: Updating persistent keepalive interval",
    ),
    "uapi-allowed-ips-cleared": (
        ["configuration"],
        ["deletion"],
        None,
        "peer - UAPI: Removing all allowedips",
    ),
    "uapi-allowed-ip-added": (["configuration"], ["creation"], None, "peer - UAPI: Adding allowedip"),
    "uapi-allowed-ip-removed": (["configuration"], ["deletion"], None, "peer - UAPI: Removing allowedip"),
    "uapi-invalid-operation": (["configuration"], ["info"], "failure", "invalid UAPI operation: OP"),
    "uapi-error": (["configuration"], ["info"], "failure", "IPC error CODE: E (a rejected UAPI request)"),
    "uapi-listen-failed": (
        ["configuration"],
        ["info"],
        "failure",
        "UAPI listen error: E / Failed to listen on uapi socket: E",
    ),
    # I/O failures
    "packet-receive-failed": (["network"], ["info"], "failure", "Failed to receive NAME packet: E"),
    "tun-read-failed": (["network"], ["info"], "failure", "Failed to read packet from TUN device: E"),
    "tun-read-dropped": (
        ["network"],
        ["info"],
        "failure",
        "Dropped some packets from multi-segment read: E",
    ),
    "tun-write-failed": (["network"], ["info"], "failure", "Failed to write packets to TUN device: E"),
    "tun-create-failed": (["configuration"], ["info"], "failure", "Failed to create TUN device: E"),
    "daemonize-failed": (
        ["process"],
        ["info"],
        "failure",
        "Failed to daemonize: E / Failed to determine executable: E",
    ),
    "keypair-derivation-failed": (["network"], ["info"], "failure", "peer - Failed to derive keypair: E"),
    "handshake-initiation-create-failed": (
        ["network"],
        ["info"],
        "failure",
        "peer - Failed to create initiation message: E",
    ),
    "handshake-initiation-send-failed": (
        ["network"],
        ["info"],
        "failure",
        "peer - Failed to send handshake initiation: E",
    ),
    "handshake-response-create-failed": (
        ["network"],
        ["info"],
        "failure",
        "peer - Failed to create response message: E",
    ),
    "handshake-response-send-failed": (
        ["network"],
        ["info"],
        "failure",
        "peer - Failed to send handshake response: E",
    ),
    "data-send-failed": (["network"], ["info"], "failure", "peer - Failed to send data packets: E"),
    # anything else
    "unrecognized": (["network"], ["info"], None, "a message not in the catalogue (kept verbatim)"),
}

# network.direction of packet messages, as the kernel_log source sets it
DIRECTIONS: dict[str, str] = {
    "handshake-initiation-received": "inbound",
    "handshake-response-received": "inbound",
    "cookie-received": "inbound",
    "invalid-handshake": "inbound",
    "invalid-handshake-response": "inbound",
    "invalid-handshake-replay": "inbound",
    "invalid-handshake-flood": "inbound",
    "invalid-mac": "inbound",
    "invalid-message-type": "inbound",
    "invalid-cookie-reply": "inbound",
    "invalid-cookie": "inbound",
    "unallowed-source-ip": "inbound",
    "invalid-packet-protocol": "inbound",
    "invalid-ip-packet": "outbound",  # from the TUN side, like the kernel's "Invalid IP packet"
    "handshake-initiation-sent": "outbound",
    "handshake-response-sent": "outbound",
    "cookie-sent": "outbound",
    "handshake-timeout": "outbound",
    "handshake-given-up": "outbound",
}

_PEER = r"peer\(([A-Za-z0-9+/]{4})…([A-Za-z0-9+/]{4})\)"

# messages after "peer(ABCD…wxyz) - "
_PEER_EXACT: dict[str, tuple[str, Fields]] = {
    "Received handshake initiation": ("handshake-initiation-received", ()),
    "Received handshake response": ("handshake-response-received", ()),
    "Sending handshake initiation": ("handshake-initiation-sent", ()),
    "Sending handshake response": ("handshake-response-sent", ()),
    "Sending keepalive packet": ("keepalive", (("direction", "outbound"),)),
    "Receiving keepalive packet": ("keepalive", (("direction", "inbound"),)),
    "Starting": ("peer-started", ()),
    "Stopping": ("peer-stopped", ()),
    "Routine: sequential receiver - started": ("routine-started", (("routine", "sequential receiver"),)),
    "Routine: sequential receiver - stopped": ("routine-stopped", (("routine", "sequential receiver"),)),
    "Routine: sequential sender - started": ("routine-started", (("routine", "sequential sender"),)),
    "Routine: sequential sender - stopped": ("routine-stopped", (("routine", "sequential sender"),)),
    "UAPI: Created": ("uapi-peer-created", ()),
    "UAPI: Removing": ("uapi-peer-removed", ()),
    "UAPI: Updating preshared key": ("uapi-preshared-key-updated", ()),
    "UAPI: Updating endpoint": ("uapi-endpoint-updated", ()),
    "UAPI: Updating persistent keepalive interval": ("uapi-persistent-keepalive-updated", ()),
    "UAPI: Removing all allowedips": ("uapi-allowed-ips-cleared", ()),
    "UAPI: Adding allowedip": ("uapi-allowed-ip-added", ()),
    "UAPI: Removing allowedip": ("uapi-allowed-ip-removed", ()),
    "ConsumeMessageInitiation: handshake flood": ("invalid-handshake-flood", ()),
}

_GLOBAL_EXACT: dict[str, tuple[str, Fields]] = {
    "Received message with unknown type": ("invalid-message-type", ()),
    "Failed to decode cookie reply": ("invalid-cookie-reply", ()),
    "Could not decrypt invalid cookie response": ("invalid-cookie", ()),
    "Received packet with invalid mac1": ("invalid-mac", ()),
    "Received packet with unknown IP version": ("invalid-ip-packet", ()),
    "Invalid packet ended up in the handshake queue": ("invalid-handshake-queue-packet", ()),
    "Failed to decode initiation message": ("handshake-initiation-decode-failed", ()),
    "Failed to decode response message": ("handshake-response-decode-failed", ()),
    "Device started": ("device-started", ()),
    "Device closing": ("device-closing", ()),
    "Device closed": ("device-closed", ()),
    "Shutting down": ("daemon-stopping", ()),
    "UAPI listener started": ("uapi-listener-started", ()),
    "UDP bind has been updated": ("bind-updated", ()),
    "Interface up requested": ("interface-up-requested", ()),
    "Interface down requested": ("interface-down-requested", ()),
    "Attaching to interface": ("interface-attached", ()),
    "Gave up trying to update bind; tunnel is likely dysfunctional": ("bind-update-given-up", ()),
    "UAPI: Updating private key": ("uapi-private-key-updated", ()),
    "UAPI: Updating listen port": ("uapi-listen-port-updated", ()),
    "UAPI: Updating fwmark": ("uapi-fwmark-updated", ()),
    "UAPI: Removing all peers": ("uapi-peers-cleared", ()),
}

# (regex, action or action-chooser, group names); a name ending in "#" is an integer
_Builder = Callable[[tuple[str, ...]], str]
_Pattern = tuple[re.Pattern[str], str | _Builder, tuple[str, ...]]


def _p(rx: str, action: str | _Builder, *names: str) -> _Pattern:
    return re.compile(rx, re.DOTALL), action, names


def _state(groups: tuple[str, ...]) -> str:
    now = groups[-1]
    return {"Up": "device-up", "Down": "device-down"}.get(now, "device-state-changed")


def _routine(groups: tuple[str, ...]) -> str:
    return "routine-started" if groups[-1] == "started" else "routine-stopped"


_PEER_PATTERNS: list[_Pattern] = [
    _p(
        r"Handshake did not complete after (\d+) seconds, retrying \(try (\d+)\)\Z",
        "handshake-timeout",
        "after_secs#",
        "try#",
    ),
    _p(r"Handshake did not complete after (\d+) attempts, giving up\Z", "handshake-given-up", "attempts#"),
    _p(
        r"Retrying handshake because we stopped hearing back after (\d+) seconds\Z",
        "handshake-retry",
        "after_secs#",
    ),
    _p(
        r"Removing all keys, since we haven't received a new one in (\d+) seconds\Z",
        "keys-zeroed",
        "after_secs#",
    ),
    _p(r"ConsumeMessageInitiation: handshake replay @ (.*)", "invalid-handshake-replay", "tai64n"),
    _p(r"Failed to derive keypair: (.*)", "keypair-derivation-failed", "error"),
    _p(r"Failed to create initiation message: (.*)", "handshake-initiation-create-failed", "error"),
    _p(r"Failed to send handshake initiation: (.*)", "handshake-initiation-send-failed", "error"),
    _p(r"Failed to create response message: (.*)", "handshake-response-create-failed", "error"),
    _p(r"Failed to send handshake response: (.*)", "handshake-response-send-failed", "error"),
    _p(r"Failed to send data packets: (.*)", "data-send-failed", "error"),
]

_GLOBAL_PATTERNS: list[_Pattern] = [
    _p(r"Routine: (.+?)(?: (\d+))? - (started|stopped)\Z", _routine, "routine", "worker#", "-"),
    _p(r"Receiving cookie response from (\S+)\Z", "cookie-received", "endpoint"),
    _p(r"Received invalid initiation message from (\S+)\Z", "invalid-handshake", "endpoint"),
    _p(r"Received invalid response message from (\S+)\Z", "invalid-handshake-response", "endpoint"),
    _p(
        r"Sending cookie response for denied handshake message for (\S+)\Z",
        "cookie-sent",
        "endpoint",
    ),
    _p(
        r"IPv(4|6) packet with disallowed source address from " + _PEER + r"\Z",
        "unallowed-source-ip",
        "ip_version#",
        "@head",
        "@tail",
    ),
    _p(r"Packet with invalid IP version from " + _PEER + r"\Z", "invalid-packet-protocol", "@head", "@tail"),
    _p(r"Failed to receive (.+?) packet: (.*)", "packet-receive-failed", "receiver", "error"),
    _p(r"Dropped some packets from multi-segment read: (.*)", "tun-read-dropped", "error"),
    _p(
        r"Interface state was (\S+), requested (\S+), now (\S+)\Z",
        _state,
        "state_old",
        "state_requested",
        "state_new",
    ),
    _p(r"Interface closed, ignored requested state (\S+)\Z", "device-state-ignored", "state_requested"),
    _p(r"MTU updated: (\d+)(.*)", "mtu-updated", "mtu#", "mtu_note"),
    _p(r"Starting wireguard-go version (\S+)\Z", "daemon-started", "version"),
    _p(r"IPC error (-?\d+): (.*)", "uapi-error", "code", "error"),
    _p(r"invalid UAPI operation: (.*)", "uapi-invalid-operation", "error"),
    _p(r"Unable to update bind, try (\d+): (.*)", "bind-update-failed", "bind_try#", "error"),
    _p(r"Unable to update bind: (.*)", "bind-update-failed", "error"),
    _p(r"Bind close failed: (.*)", "bind-close-failed", "error"),
    _p(r"Trouble determining MTU, assuming default: (.*)", "mtu-unknown", "error"),
    _p(r"Failed to load updated MTU of device: (.*)", "mtu-read-failed", "error"),
    _p(r"MTU not updated to negative value: (.*)", "mtu-invalid", "error"),
    _p(r"Failed to write packets? to TUN device: (.*)", "tun-write-failed", "error"),
    _p(r"Failed to read packet from TUN device: (.*)", "tun-read-failed", "error"),
    _p(r"Failed to create cookie reply: (.*)", "cookie-reply-create-failed", "error"),
    _p(r"Failed to create TUN device: (.*)", "tun-create-failed", "error"),
    _p(r"UAPI listen error: (.*)", "uapi-listen-failed", "error"),
    _p(r"Failed to listen on uapi socket: (.*)", "uapi-listen-failed", "error"),
    _p(r"Failed to determine executable: (.*)", "daemonize-failed", "error"),
    _p(r"Failed to daemonize: (.*)", "daemonize-failed", "error"),
]

_UNKNOWN = Classified("unrecognized")


def _match(patterns: list[_Pattern], text: str) -> tuple[str, Fields, str | None, str | None] | None:
    for rx, action, names in patterns:
        m = rx.match(text)
        if m is None:
            continue
        groups = m.groups()
        fields: list[tuple[str, Any]] = []
        head = tail = None
        for name, value in zip(names, groups, strict=True):
            if value is None or name == "-":
                continue
            if name == "@head":
                head = value
            elif name == "@tail":
                tail = value
            elif name.endswith("#"):
                fields.append((name[:-1], int(value)))
            else:
                fields.append((name, value))
        chosen = action if isinstance(action, str) else action(groups)
        return chosen, tuple(fields), head, tail
    return None


def _is_peer_prefix(message: str) -> bool:
    return message.startswith("peer(") and message[9:10] == "…" and message[14:18] == ") - "


_MEMO: dict[str, Classified] = {}
MEMO_MAX = 1 << 16


def classify(message: str) -> Classified:
    """The action and parameters of one message (the text after the time stamp).

    Memoised: a gateway's log is the same few messages for the same peers over and over, and a
    :class:`Classified` is immutable, so repeats cost one dict lookup. The memo is emptied when full.
    """
    hit = _MEMO.get(message)
    if hit is not None:
        return hit
    found = _classify(message)
    if len(_MEMO) >= MEMO_MAX:
        _MEMO.clear()
    _MEMO[message] = found
    return found


def _classify(message: str) -> Classified:
    if _is_peer_prefix(message):
        head, tail, rest = message[5:9], message[10:14], message[18:]
        hit = _PEER_EXACT.get(rest)
        if hit is not None:
            return Classified(hit[0], head, tail, hit[1])
        found = _match(_PEER_PATTERNS, rest)
        if found is None:
            squeezed = " ".join(rest.split())  # pre-2021 Println spacing
            hit = _PEER_EXACT.get(squeezed)
            if hit is not None:
                return Classified(hit[0], head, tail, hit[1])
            found = _match(_PEER_PATTERNS, squeezed)
        if found is not None:
            return Classified(found[0], head, tail, found[1])
        return Classified("unrecognized", head, tail)
    hit = _GLOBAL_EXACT.get(message)
    if hit is not None:
        return Classified(hit[0], None, None, hit[1])
    found = _match(_GLOBAL_PATTERNS, message)
    if found is None:
        squeezed = " ".join(message.split())
        if squeezed != message:
            hit = _GLOBAL_EXACT.get(squeezed)
            if hit is not None:
                return Classified(hit[0], None, None, hit[1])
            found = _match(_GLOBAL_PATTERNS, squeezed)
    if found is not None:
        return Classified(found[0], found[2], found[3], found[1])
    return _UNKNOWN
