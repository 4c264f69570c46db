"""Pure mapping of a :class:`FlowRecord` to an ECS document (one event per flow).

* ``source``/``destination`` are the flow's own endpoints as the exporter saw them (inside the tunnel
  when the exporter watches the WireGuard interface); ``source.bytes``/``packets`` are what the
  source sent; an RFC 5103 biflow's reverse counters are ``destination.bytes``/``packets``.
* ``observer`` is the exporter (its address and interfaces); ``agent.name`` is the collector host.
* ``@timestamp`` is when the flow ended (or the export time when the record has no times);
  ``event.created`` when wgsiem received the datagram.
* ``wireguard.peer`` is the peer whose AllowedIPs hold the source address, else the destination
  address (``side`` says which); ``attribution: unknown`` when no peer holds either.
* With ``scale_sampling`` and a sampling interval N > 1, ``network``/``source``/``destination``
  bytes and packets are multiplied by N (estimates); the exporter's raw counts stay under
  ``wireguard.flow.sampling``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from wgsiem import __version__
from wgsiem.event import event_id
from wgsiem.sources.netflow.community_id import community_id
from wgsiem.sources.netflow.records import FlowRecord
from wgsiem.sources.peer_directory import PeerInfo

__all__ = ["DATASET", "ECS_VERSION", "TRANSPORTS", "iso", "to_ecs"]

DATASET = "wireguard.flow"
ECS_VERSION = "9.5.0-dev"
TRANSPORTS = {
    1: "icmp",
    2: "igmp",
    4: "ipip",
    6: "tcp",
    17: "udp",
    41: "ipv6",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "ipv6-icmp",
    89: "ospf",
    103: "pim",
    112: "vrrp",
    132: "sctp",
    136: "udplite",
}
END_REASONS = {
    1: "idle-timeout",
    2: "active-timeout",
    3: "end-of-flow",
    4: "forced-end",
    5: "lack-of-resources",
}
_TCP_FLAGS = (
    (1, "FIN"),
    (2, "SYN"),
    (4, "RST"),
    (8, "PSH"),
    (16, "ACK"),
    (32, "URG"),
    (64, "ECE"),
    (128, "CWR"),
)

PeerLookup = Callable[[str, str | None], PeerInfo | None]


_SECONDS: dict[int, str] = {}


def iso(t: float) -> str:
    """Epoch seconds → RFC 3339 UTC with milliseconds (truncated), as ECS dates are written.

    Same text as ``datetime.fromtimestamp(t, UTC).strftime(...)[:-3]`` (a test checks that), but the
    ``YYYY-MM-DDTHH:MM:SS`` part is formatted once per second: flows of one export share seconds, and
    strftime on an aware datetime costs ~3 µs, four times per event.
    """
    us = round(t * 1_000_000)
    sec, frac = divmod(us, 1_000_000)
    head = _SECONDS.get(sec)
    if head is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        head = _SECONDS[sec] = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{head}.{frac // 1000:03d}Z"


def _peer(rec: FlowRecord, lookup: PeerLookup, interface: str | None) -> dict[str, Any]:
    for side, ip in (("source", rec.src_ip), ("destination", rec.dst_ip)):
        p = lookup(ip, interface)
        if p is not None:
            return {
                "attribution": "tunnel-ip",
                "side": side,
                "tunnel_ip": ip,
                "public_key": p.public_key,
                "interface": p.interface,
            }
    return {"attribution": "unknown"}


def to_ecs(
    rec: FlowRecord,
    *,
    hostname: str,
    received_at: float,
    lookup: PeerLookup,
    peer_interface: str | None = None,
    scale_sampling: bool = True,
) -> dict[str, Any]:
    n = rec.sampling_interval if scale_sampling and rec.sampling_interval > 1 else 1
    fwd_bytes, fwd_pkts = rec.bytes * n, rec.packets * n
    proto = rec.protocol
    event: dict[str, Any] = {
        # the record's identity: which exporter/domain, which export packet (time, sequence), where in it
        "id": event_id(
            "netflow",
            hostname,
            f"{rec.exporter}/{rec.domain}/v{rec.version}/{rec.export_time}/{rec.sequence}/{rec.offset}",
        ),
        "kind": "event",
        "category": ["network"],
        "type": ["connection"],
        "action": "flow",
        "dataset": DATASET,
        "module": "wireguard",
        "created": iso(received_at),
    }
    if rec.start is not None and rec.end is not None:
        event["start"] = iso(rec.start)
        event["end"] = iso(rec.end)
        event["duration"] = max(0, round((rec.end - rec.start) * 1e6) * 1000)  # exporters send ms/µs
    src: dict[str, Any] = {"ip": rec.src_ip, "address": rec.src_ip, "bytes": fwd_bytes, "packets": fwd_pkts}
    dst: dict[str, Any] = {"ip": rec.dst_ip, "address": rec.dst_ip}
    icmp = proto in (1, 58)
    if not icmp and rec.src_port is not None:
        src["port"] = rec.src_port
    if not icmp and rec.dst_port is not None:
        dst["port"] = rec.dst_port
    total_bytes, total_pkts = fwd_bytes, fwd_pkts
    if rec.rev_bytes is not None or rec.rev_packets is not None:
        dst["bytes"] = (rec.rev_bytes or 0) * n
        dst["packets"] = (rec.rev_packets or 0) * n
        total_bytes += dst["bytes"]
        total_pkts += dst["packets"]
    network: dict[str, Any] = {
        "iana_number": str(proto),
        "bytes": total_bytes,
        "packets": total_pkts,
        "type": "ipv6" if rec.ip_version == 6 else "ipv4",
    }
    if proto in TRANSPORTS:
        network["transport"] = TRANSPORTS[proto]
    if icmp:
        cid = community_id(proto, rec.src_ip, rec.dst_ip, rec.icmp_type, rec.icmp_code)
    else:
        cid = community_id(proto, rec.src_ip, rec.dst_ip, rec.src_port, rec.dst_port)
    if cid is not None:
        network["community_id"] = cid
    if rec.direction in (0, 1):
        network["direction"] = "ingress" if rec.direction == 0 else "egress"
    observer: dict[str, Any] = {"ip": [rec.exporter], "type": "sensor"}
    if rec.interface_name or rec.input_if:
        ingress: dict[str, Any] = {}
        if rec.interface_name:
            ingress["name"] = rec.interface_name
        if rec.input_if:
            ingress["id"] = str(rec.input_if)
        observer["ingress"] = {"interface": ingress}
    if rec.output_if:
        observer["egress"] = {"interface": {"id": str(rec.output_if)}}
    flow: dict[str, Any] = {
        "version": rec.version,
        "exporter": rec.exporter,
        "observation_domain": rec.domain,
        "template_id": rec.template_id,
        "sequence": rec.sequence,
        "export_time": iso(rec.export_time),
        "sampling": {"interval": rec.sampling_interval, "scaled": n > 1},
    }
    if n > 1:
        flow["sampling"].update(
            raw_bytes=rec.bytes,
            raw_packets=rec.packets,
            raw_reverse_bytes=rec.rev_bytes,
            raw_reverse_packets=rec.rev_packets,
        )
    if icmp and rec.icmp_type is not None:
        flow["icmp"] = {"type": rec.icmp_type, "code": rec.icmp_code}
    if rec.tcp_flags is not None and proto == 6:
        flow["tcp_flags"] = [name for bit, name in _TCP_FLAGS if rec.tcp_flags & bit]
    if rec.tos is not None:
        flow["tos"] = rec.tos
    if rec.end_reason is not None:
        flow["end_reason"] = END_REASONS.get(rec.end_reason, str(rec.end_reason))
    if rec.next_hop and rec.next_hop not in ("0.0.0.0", "::"):
        flow["next_hop"] = rec.next_hop
    iface = peer_interface
    if iface is None and rec.interface_name:
        iface = rec.interface_name
    peer = _peer(rec, lookup, iface)
    if peer["attribution"] == "unknown" and iface is not None and peer_interface is None:
        peer = _peer(rec, lookup, None)  # interfaceName may not be a WireGuard interface
    return {
        "@timestamp": iso(rec.end if rec.end is not None else rec.export_time),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "agent": {"type": "wgsiem", "version": __version__, "name": hostname},
        "observer": observer,
        "source": src,
        "destination": dst,
        "network": network,
        "related": {"ip": [rec.src_ip] if rec.src_ip == rec.dst_ip else [rec.src_ip, rec.dst_ip]},
        "wireguard": {"flow": flow, "peer": peer},
    }
