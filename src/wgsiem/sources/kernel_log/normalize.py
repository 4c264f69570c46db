"""Pure mapping of a parsed kernel / wg-quick line to an ECS document.

Direction convention (as in ``wg_state``, docs/events.md): ``source.*`` is always the **remote peer's
outer endpoint**, whichever way the packet went; ``network.direction`` says which way
(``inbound``: received from it, ``outbound``: sent to it). The kernel's numbers live under
``wireguard.*`` (``wireguard.peer.id`` is the kernel's internal peer number, not a key).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any

from wgsiem import __version__
from wgsiem.sources.kernel_log.attribution import Attribution
from wgsiem.sources.kernel_log.records import KernelMessage, LogLine, WgQuickLine
from wgsiem.sources.wg_state.normalize import ECS_VERSION, iso

__all__ = ["ACTIONS", "DATASET", "Origin", "to_ecs"]

DATASET = "wireguard.kernel_log"

_AUTH_FAIL = (["network", "authentication"], ["denied"], "failure")
_NET_DENIED = (["network"], ["denied"], "failure")
_NET_FAIL = (["network"], ["info"], "failure")

# action → (event.category, event.type, event.outcome)
ACTIONS: dict[str, tuple[list[str], list[str], str | None]] = {
    # module / interface / peer lifecycle
    "module-loaded": (["driver"], ["start"], "success"),
    "interface-created": (["configuration"], ["creation"], None),
    "interface-destroyed": (["configuration"], ["deletion"], None),
    "namespace-exiting": (["configuration"], ["info"], None),
    "peer-created": (["configuration"], ["creation"], None),
    "peer-destroyed": (["configuration"], ["deletion"], None),
    # handshakes and sessions
    "handshake-initiation-received": (["network", "authentication"], ["start"], None),
    "handshake-initiation-sent": (["network", "authentication"], ["start"], None),
    "handshake-response-received": (["network", "authentication"], ["info"], None),
    "handshake-response-sent": (["network", "authentication"], ["info"], None),
    "keypair-created": (["network", "session"], ["start"], "success"),
    "keypair-destroyed": (["network", "session"], ["end"], None),
    "keys-zeroed": (["network", "session"], ["end"], None),
    "handshake-timeout": (["network", "authentication"], ["info"], "failure"),
    "handshake-given-up": (["network", "authentication"], ["end"], "failure"),
    "handshake-retry": (["network", "session"], ["info"], None),
    "keepalive": (["network"], ["connection"], None),
    # authentication failures / attacks / load
    "invalid-handshake": _AUTH_FAIL,
    "invalid-handshake-response": _AUTH_FAIL,
    "invalid-mac": _AUTH_FAIL,
    "invalid-cookie": _AUTH_FAIL,
    "cookie-sent": (["network"], ["denied"], None),
    "cookie-received": (["network"], ["info"], None),
    "handshake-dropped": _NET_DENIED,
    "unallowed-source-ip": (["network", "intrusion_detection"], ["denied"], "failure"),
    "invalid-nonce": _NET_DENIED,
    "invalid-packet-size": _NET_DENIED,
    "invalid-packet-protocol": _NET_DENIED,
    "invalid-ip-packet": _NET_DENIED,
    "no-allowed-ips-match": _NET_DENIED,
    "no-endpoint": _NET_FAIL,
    "no-route": _NET_FAIL,
    "userspace-delivery-failed": _NET_FAIL,
    "socket-create-failed": (["network", "driver"], ["info"], "failure"),
    "kernel-warning": (["driver"], ["info"], "failure"),
    "messages-suppressed": (["host"], ["info"], None),
    "unrecognized": (["network"], ["info"], None),
    # wg-quick
    "interface-up": (["configuration"], ["creation"], None),
    "interface-down": (["configuration"], ["deletion"], None),
    "interface-reconfigured": (["configuration"], ["change"], None),
    "wg-quick-command": (["configuration", "process"], ["info"], None),
    "wg-quick-warning": (["configuration"], ["info"], None),
    "wg-quick-error": (["configuration"], ["info"], "failure"),
    "wg-quick-output": (["configuration"], ["info"], None),
    "config-world-accessible": (["configuration"], ["info"], None),
}

NOT_EMITTED = frozenset({"module-copyright"})  # the second line of the module banner: no information

_SEVERITY = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
# kernel level of each message when the log does not say (pr_debug/net_dbg → debug, pr_info, pr_err)
_LEVEL = {"module-loaded": 6, "socket-create-failed": 3, "kernel-warning": 4, "messages-suppressed": 4}


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a line came from: a file, or a journal entry's trusted fields."""

    file: str | None = None
    unit: str | None = None  # _SYSTEMD_UNIT
    uid: str | None = None  # _UID
    login_uid: str | None = None  # _AUDIT_LOGINUID: the user who logged in, across sudo
    comm: str | None = None  # _COMM
    boot_id: str | None = None
    cursor: str | None = None


@functools.lru_cache(maxsize=65536)
def _ip(v: str | None) -> str | None:
    """A valid address in its canonical form (ECS ``ip``), or ``None`` (masked ``XXX.XXX.XXX.63``)."""
    if not v:
        return None
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        return None


def _kernel(msg: KernelMessage, doc: dict[str, Any], wg: dict[str, Any], related: list[str]) -> None:
    kernel: dict[str, Any] = {"module": msg.module}
    wg["kernel"] = kernel
    if msg.peer_id is not None:
        peer = wg.setdefault("peer", {})
        peer["id"] = msg.peer_id
        if msg.peer_name is not None:
            peer["name"] = msg.peer_name
    ep = msg.endpoint
    if ep is not None:
        epd: dict[str, Any] = {"text": ep.text}
        if ep.unset:
            epd["unset"] = True
        if ep.flowinfo is not None:
            epd["flowinfo"] = ep.flowinfo
        if ep.scope_id is not None:
            epd["scope_id"] = ep.scope_id
        wg["endpoint"] = epd
        ip = _ip(ep.ip)
        if ip is not None:
            src: dict[str, Any] = {"ip": ip, "address": ip}
            if ep.port is not None:
                src["port"] = ep.port
            doc["source"] = src
            related.append(ip)
            doc["network"]["type"] = "ipv6" if ":" in ip else "ipv4"
    if msg.direction:
        doc["network"]["direction"] = msg.direction
    if msg.keypair_id is not None:
        wg["keypair"] = {"id": msg.keypair_id}
    if msg.inner_ip is not None:
        inner = _ip(msg.inner_ip)
        if msg.action == "unallowed-source-ip":
            wg["packet"] = {"inner_source_ip": msg.inner_ip}
            if inner:
                doc["source"] = {**doc.get("source", {}), "nat": {"ip": inner}}
                related.append(inner)
        else:  # no-allowed-ips-match: the inner destination (%pI6 is printed uncompressed)
            wg["packet"] = {"inner_destination_ip": inner or msg.inner_ip}
            if inner:
                doc["destination"] = {"ip": inner, "address": inner}
                related.append(inner)
    if msg.nonce is not None:
        wg["packet"] = {"nonce": msg.nonce, "max_nonce": msg.max_nonce}
    hs: dict[str, Any] = {}
    if msg.try_number is not None:
        hs["try"] = msg.try_number
    if msg.attempts is not None:
        hs["attempts"] = msg.attempts
    if msg.after_secs is not None:
        hs["after_secs"] = msg.after_secs
    if hs:
        wg["handshake"] = hs
    if msg.errno is not None:
        doc["error"] = {"code": str(msg.errno), "message": msg.text}
    if msg.version is not None:
        kernel["version"] = msg.version
    if msg.ip_version is not None:
        kernel["ip_version"] = msg.ip_version
    if msg.suppressed is not None:
        kernel["suppressed"] = msg.suppressed
    if msg.debug is not None:
        d = msg.debug
        if d.function:
            doc["log"].setdefault("origin", {})["function"] = d.function
        if d.line is not None:
            doc["log"].setdefault("origin", {}).setdefault("file", {})["line"] = d.line
        if d.thread:
            kernel["thread"] = d.thread


def to_ecs(
    line: LogLine,
    *,
    time: float,
    hostname: str,
    event_id: str,
    observed_at: float,
    attribution: Attribution | None = None,
    origin: Origin | None = None,
) -> dict[str, Any]:
    """The ECS document of one parsed line; ``time`` is its event time (epoch seconds)."""
    msg = line.message
    category, etype, outcome = ACTIONS[msg.action]
    event: dict[str, Any] = {
        "id": event_id,
        "kind": "event",
        "category": list(category),
        "type": list(etype),
        "action": msg.action,
        "dataset": DATASET,
        "module": "wireguard",
        "created": iso(observed_at),
    }
    if outcome:
        event["outcome"] = outcome
    is_kernel = isinstance(msg, KernelMessage)
    default_sev = _LEVEL.get(msg.action, 7) if is_kernel else 6
    sev = line.priority & 7 if line.priority is not None else default_sev
    log: dict[str, Any] = {"level": _SEVERITY[sev], "logger": "kernel" if is_kernel else "wg-quick"}
    if line.priority is not None and line.line_format != "journal":
        log["syslog"] = {
            "priority": line.priority,
            "facility": {"code": line.priority >> 3},
            "severity": {"code": sev},
        }
    wg: dict[str, Any] = {}
    doc: dict[str, Any] = {
        "@timestamp": iso(time),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "agent": {"type": "wgsiem", "version": __version__},
        "observer": {"hostname": hostname, "type": "vpn", "vendor": "WireGuard", "product": "WireGuard"},
        "network": {"transport": "udp", "protocol": "wireguard"},
        "log": log,
        "message": msg.text,
        "wireguard": wg,
    }
    related: list[str] = []
    iface = msg.interface
    if iface:
        doc["observer"]["ingress"] = {"interface": {"name": iface}}
        wg["interface"] = {"name": iface}
    wg["log"] = {"format": line.line_format}
    if line.host:
        wg["log"]["host"] = line.host
    if isinstance(msg, KernelMessage):
        _kernel(msg, doc, wg, related)
        if line.uptime is not None:
            wg["kernel"]["uptime_secs"] = line.uptime
    else:
        _wg_quick(msg, line, doc, wg)
    if attribution is not None:
        peer = wg.setdefault("peer", {})
        if attribution.public_key:
            peer["public_key"] = attribution.public_key
        peer.update(attribution.doc())
    if origin is not None:
        if origin.file:
            log["file"] = {"path": origin.file}
        if origin.boot_id:
            doc["host"] = {"boot": {"id": origin.boot_id}}
        if origin.unit:
            doc["service"] = {"name": origin.unit}
            wg.setdefault("journal", {})["unit"] = origin.unit
        if origin.uid is not None:
            doc.setdefault("process", {})["user"] = {"id": origin.uid}
        user = origin.login_uid if origin.login_uid not in (None, "4294967295") else origin.uid
        if user is not None and not is_kernel:
            doc["user"] = {"id": user}
            doc["related"] = {"user": [user]}
        if origin.comm and not is_kernel:
            doc.setdefault("process", {})["name"] = origin.comm
    if line.pid is not None and not is_kernel:
        doc.setdefault("process", {})["pid"] = line.pid
    if related:
        doc.setdefault("related", {})["ip"] = list(dict.fromkeys(related))
    return doc


def _wg_quick(msg: WgQuickLine, line: LogLine, doc: dict[str, Any], wg: dict[str, Any]) -> None:
    q: dict[str, Any] = {}
    if msg.command is not None:
        q["command"] = msg.command
    if msg.program is not None:
        q["program"] = msg.program
    wg["wg_quick"] = q
    doc["process"] = {"name": "wg-quick"}
    if msg.command is not None:
        doc["process"]["command_line"] = msg.command
    del doc["network"]
