"""Pure parser of ``wg show all dump`` (and ``wg show <if> dump`` with an interface name given).

Format (see shared/reference/formats/01_dump.md): tab separated; an interface line has 5 columns
(``all``) and starts each device block, a peer line has 9. Lines are told apart by column count, not
position, so a bad line is reported with its line number and skipped while the lines around it are kept.

The interface private key and peer preshared keys are turned into presence + keyed fingerprint here and
never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wgsiem.errors import Location, ParseError
from wgsiem.sources.wg_state.records import (
    Fingerprinter,
    InterfaceRecord,
    PeerRecord,
    SnapshotInterface,
)

__all__ = ["DumpParseResult", "parse_dump", "parse_dump_peer"]

NONE = b"(none)"


@dataclass(slots=True)
class DumpParseResult:
    interfaces: dict[str, SnapshotInterface] = field(default_factory=dict)
    errors: list[ParseError] = field(default_factory=list)


def _interface_from_cols(cols: list[bytes], fp: Fingerprinter) -> InterfaceRecord:
    name, priv, pub, port, fwmark = cols
    if not name or len(name) > 15:
        raise ValueError("interface name empty or longer than 15 characters")
    priv_present = priv != NONE
    fwmark_v = 0 if fwmark == b"off" else int(fwmark, 16)
    port_v = int(port)
    if not 0 <= port_v <= 65535:
        raise ValueError(f"listen port {port_v} out of range")
    return InterfaceRecord(
        name=name.decode(),
        public_key=None if pub == NONE else _key(pub),
        private_key_present=priv_present,
        private_key_fingerprint=fp.of_b64(priv.decode()) if priv_present else None,
        listen_port=port_v,
        fwmark=fwmark_v,
    )


def _key(raw: bytes) -> str:
    if len(raw) != 44 or not raw.endswith(b"="):
        raise ValueError("key is not 44 characters of base64")
    return raw.decode("ascii")


def parse_dump_peer(line: bytes, fp: Fingerprinter) -> PeerRecord:
    """One 9-column peer line → record. Raises ValueError on any malformed field."""
    cols = line.split(b"\t")
    if len(cols) != 9:
        raise ValueError(f"peer line has {len(cols)} columns, expected 9")
    iface, pub, psk, endpoint, allowed, hs, rx, tx, ka = cols
    psk_present = psk != NONE
    if psk_present:
        _key(psk)
    hs_v, rx_v, tx_v = int(hs), int(rx), int(tx)
    if hs_v < 0 or rx_v < 0 or tx_v < 0:
        raise ValueError("negative counter")
    return PeerRecord(
        interface=iface.decode(),
        public_key=_key(pub),
        preshared_key_present=psk_present,
        preshared_key_fingerprint=fp.of_b64(psk.decode()) if psk_present else None,
        endpoint=None if endpoint == NONE else endpoint.decode(),
        allowed_ips=() if allowed == NONE else tuple(allowed.decode().split(",")),
        latest_handshake=hs_v,
        rx_bytes=rx_v,
        tx_bytes=tx_v,
        persistent_keepalive=0 if ka == b"off" else int(ka),
    )


def parse_dump(data: bytes, fp: Fingerprinter, *, origin: str = "wg show all dump") -> DumpParseResult:
    """Split the dump into interfaces and raw peer lines; peer lines are validated lazily by the differ.

    Only the line shape (column count, interface known, key token) is checked here so that a poll of
    100k peers stays cheap; full peer parsing happens for the lines that changed.
    """
    result = DumpParseResult()
    current: SnapshotInterface | None = None
    offset = 0
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        line_offset = offset
        offset += len(line) + 1
        if not line:
            continue
        ntabs = line.count(b"\t")
        try:
            if ntabs == 8:
                tab = line.index(b"\t")
                iface = line[:tab]
                if current is None or iface != current.info.name.encode():
                    raise ValueError("peer line for an interface with no interface line before it")
                key_end = line.index(b"\t", tab + 1)
                key = line[tab + 1 : key_end]
                if len(key) != 44:
                    raise ValueError("peer public key is not 44 characters of base64")
                if key in current.peers:
                    raise ValueError("duplicate peer")
                current.peers[key] = line
            elif ntabs == 4:
                info = _interface_from_cols(line.split(b"\t"), fp)
                if info.name in result.interfaces:
                    raise ValueError("duplicate interface")
                current = SnapshotInterface(info=info, implementation="unknown", peer_format="dump", peers={})
                result.interfaces[info.name] = current
            else:
                raise ValueError(f"line has {ntabs + 1} columns, expected 5 (interface) or 9 (peer)")
        except (ValueError, UnicodeDecodeError) as exc:
            result.errors.append(
                ParseError(
                    f"bad dump line: {exc}",
                    location=Location(origin, line=lineno, column=1, offset=line_offset),
                    fix="the line was skipped; check the wireguard-tools version, report it if it persists",
                )
            )
    return result
