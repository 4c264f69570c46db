"""Typed records the NetFlow/IPFIX decoder produces: one :class:`FlowRecord` per flow.

A ``NamedTuple`` rather than a frozen dataclass: it is just as immutable and typed, and building one is
a single ``tuple.__new__`` — the decoder makes hundreds of thousands per second, where a frozen
dataclass's ``object.__setattr__`` per field would cost more than the decoding itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Datagram", "FlowRecord"]


class FlowRecord(NamedTuple):
    """One unidirectional (or, for RFC 5103 biflows, bidirectional) flow as the exporter reported it.

    Times are epoch seconds (``None`` when the record carries none that can be placed in time).
    ``bytes``/``packets`` are what the exporter counted; with sampling they are *not* scaled here
    (``sampling_interval`` says by how much to scale; the normalizer decides).
    """

    version: int  # 5, 9 or 10 (IPFIX)
    exporter: str  # exporter address as seen by the collector
    domain: int  # v9 source id / IPFIX observation domain id (engine type/id for v5)
    template_id: int  # 0 for v5
    export_time: float  # epoch seconds from the packet header
    sequence: int  # header sequence number
    offset: int  # byte offset of this record in the datagram
    src_ip: str
    dst_ip: str
    src_port: int | None
    dst_port: int | None
    protocol: int
    ip_version: int
    bytes: int
    packets: int
    rev_bytes: int | None  # RFC 5103 reverse counters (softflowd -b)
    rev_packets: int | None
    start: float | None
    end: float | None
    tcp_flags: int | None
    tos: int | None
    icmp_type: int | None
    icmp_code: int | None
    input_if: int | None
    output_if: int | None
    direction: int | None  # IE 61: 0 ingress, 1 egress
    end_reason: int | None  # IE 136
    interface_name: str | None  # IE 82
    next_hop: str | None
    sampling_interval: int  # 1 = every packet counted


@dataclass(frozen=True, slots=True)
class Datagram:
    """One export packet as received: who sent it, when, and its bytes (what replay carries)."""

    exporter: str
    port: int
    data: bytes
    received_at: float  # epoch seconds (wall clock live, capture timestamp in replay)
