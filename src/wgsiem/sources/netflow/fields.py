"""Information Elements the decoder understands, and where each lands in a decoded record.

NetFlow v9 field types 1–127 and IPFIX Information Element ids share numbers (IPFIX took them over), so
one table serves both. Ids come from the IANA IPFIX registry as quoted in
``shared/reference/formats/08_netflow_ipfix.md`` (softflowd ``ipfix.h``, RFC 3954, RFC 7011).

Every element the decoder does not use is skipped by length without being converted, which is what
keeps the hot path fast: a template's ``struct`` format has ``Nx`` (pad) for those.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ADDR4", "ADDR6", "IE_SLOTS", "NSLOTS", "REVERSE_PEN", "Slot"]

REVERSE_PEN: Final = 29305  # RFC 5103 biflow reverse elements


class Slot:
    """Positions in the canonical raw tuple every template is mapped onto."""

    SRC4 = 0
    DST4 = 1
    SRC6 = 2
    DST6 = 3
    SPORT = 4
    DPORT = 5
    PROTO = 6
    OCTETS = 7
    PACKETS = 8
    REV_OCTETS = 9
    REV_PACKETS = 10
    FIRST_UPTIME = 11  # IE 22, ms since exporter boot
    LAST_UPTIME = 12  # IE 21
    START_SEC = 13  # IE 150
    END_SEC = 14  # IE 151
    START_MS = 15  # IE 152
    END_MS = 16  # IE 153
    START_NTP = 17  # IE 154 / 156 (NTP 64-bit)
    END_NTP = 18  # IE 155 / 157
    TCP_FLAGS = 19
    TOS = 20
    ICMP = 21  # IE 32 / 139 (type << 8 | code)
    IN_IF = 22
    OUT_IF = 23
    DIRECTION = 24
    END_REASON = 25
    IFNAME = 26
    NEXTHOP4 = 27
    NEXTHOP6 = 28
    IP_VERSION = 29
    SAMPLING = 30  # IE 34 samplingInterval, when a data template carries it
    SYS_INIT_MS = 31  # IE 160 systemInitTimeMilliseconds
    PSAMP_INTERVAL = 32  # IE 305 samplingPacketInterval
    PSAMP_SPACE = 33  # IE 306 samplingPacketSpace
    ICMP_TYPE = 34  # IE 176 / 178
    ICMP_CODE = 35  # IE 177 / 179
    PKT_TOTAL = 36  # IE 86 packetTotalCount (when no delta count)
    OCTET_TOTAL = 37  # IE 85 octetTotalCount


NSLOTS: Final = 38
ADDR4: Final = frozenset({Slot.SRC4, Slot.DST4, Slot.NEXTHOP4})
ADDR6: Final = frozenset({Slot.SRC6, Slot.DST6, Slot.NEXTHOP6})

# (enterprise number, element id) -> slot
IE_SLOTS: Final[dict[tuple[int, int], int]] = {
    (0, 1): Slot.OCTETS,  # octetDeltaCount / IN_BYTES
    (0, 2): Slot.PACKETS,  # packetDeltaCount / IN_PKTS
    (0, 4): Slot.PROTO,
    (0, 5): Slot.TOS,
    (0, 6): Slot.TCP_FLAGS,
    (0, 7): Slot.SPORT,
    (0, 8): Slot.SRC4,
    (0, 10): Slot.IN_IF,
    (0, 11): Slot.DPORT,
    (0, 12): Slot.DST4,
    (0, 14): Slot.OUT_IF,
    (0, 15): Slot.NEXTHOP4,
    (0, 21): Slot.LAST_UPTIME,
    (0, 22): Slot.FIRST_UPTIME,
    (0, 27): Slot.SRC6,
    (0, 28): Slot.DST6,
    (0, 32): Slot.ICMP,
    (0, 34): Slot.SAMPLING,
    (0, 60): Slot.IP_VERSION,
    (0, 61): Slot.DIRECTION,
    (0, 62): Slot.NEXTHOP6,
    (0, 82): Slot.IFNAME,
    (0, 85): Slot.OCTET_TOTAL,
    (0, 86): Slot.PKT_TOTAL,
    (0, 136): Slot.END_REASON,
    (0, 139): Slot.ICMP,
    (0, 150): Slot.START_SEC,
    (0, 151): Slot.END_SEC,
    (0, 152): Slot.START_MS,
    (0, 153): Slot.END_MS,
    (0, 154): Slot.START_NTP,
    (0, 155): Slot.END_NTP,
    (0, 156): Slot.START_NTP,
    (0, 157): Slot.END_NTP,
    (0, 160): Slot.SYS_INIT_MS,
    (0, 176): Slot.ICMP_TYPE,
    (0, 177): Slot.ICMP_CODE,
    (0, 178): Slot.ICMP_TYPE,
    (0, 179): Slot.ICMP_CODE,
    (0, 305): Slot.PSAMP_INTERVAL,
    (0, 306): Slot.PSAMP_SPACE,
    (REVERSE_PEN, 1): Slot.REV_OCTETS,
    (REVERSE_PEN, 2): Slot.REV_PACKETS,
}
