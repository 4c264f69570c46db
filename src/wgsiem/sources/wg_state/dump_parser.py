"""Pure parser of ``wg show all dump`` (and ``wg show <if> dump`` with an interface name given).

Format (see shared/reference/formats/01_dump.md): tab separated; an interface line has 5 columns
(``all``) and starts each device block, a peer line has 9. Lines are told apart by column count, not
position, so a bad line is reported with its line number and skipped while the lines around it are kept.

The interface private key and peer preshared keys are turned into presence + keyed fingerprint here and
never stored. Captures written by ``wgsiem record`` (see :mod:`wgsiem.sources.wg_state.capture`) carry
``fp:<fingerprint>`` in place of those keys and ``#`` comment lines; both are accepted here (real
``wg show`` output has neither).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate
from operator import methodcaller

from wgsiem.errors import Location, ParseError
from wgsiem.sources.wg_state.records import (
    Fingerprinter,
    InterfaceRecord,
    PeerRecord,
    SnapshotInterface,
)

__all__ = ["DumpParseResult", "parse_dump", "parse_dump_peer"]

NONE = b"(none)"
FP_PREFIX = b"fp:"
_COUNT_TABS = methodcaller("count", b"\t")


@dataclass(slots=True)
class DumpParseResult:
    interfaces: dict[str, SnapshotInterface] = field(default_factory=dict)
    errors: list[ParseError] = field(default_factory=list)


def _interface_from_cols(cols: list[bytes], fp: Fingerprinter) -> InterfaceRecord:
    name, priv, pub, port, fwmark = cols
    if not name or len(name) > 15:
        raise ValueError("interface name empty or longer than 15 characters")
    priv_present = priv != NONE
    priv_fp = _secret_fingerprint(priv, fp) if priv_present else None
    fwmark_v = 0 if fwmark == b"off" else int(fwmark, 16)
    port_v = int(port)
    if not 0 <= port_v <= 65535:
        raise ValueError(f"listen port {port_v} out of range")
    return InterfaceRecord(
        name=name.decode(),
        public_key=None if pub == NONE else _key(pub),
        private_key_present=priv_present,
        private_key_fingerprint=priv_fp,
        listen_port=port_v,
        fwmark=fwmark_v,
    )


def _secret_fingerprint(raw: bytes, fp: Fingerprinter) -> str:
    """A private or preshared key field → its keyed fingerprint (a capture already holds one)."""
    if raw.startswith(FP_PREFIX):
        given = raw[len(FP_PREFIX) :]
        if len(given) != 16 or not all(c in b"0123456789abcdef" for c in given):
            raise ValueError("captured key fingerprint is not 16 hex digits")
        return given.decode()
    _key(raw)
    return fp.of_b64(raw.decode())


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
    psk_fp = _secret_fingerprint(psk, fp) if psk_present else None
    hs_v, rx_v, tx_v = int(hs), int(rx), int(tx)
    if hs_v < 0 or rx_v < 0 or tx_v < 0:
        raise ValueError("negative counter")
    return PeerRecord(
        interface=iface.decode(),
        public_key=_key(pub),
        preshared_key_present=psk_present,
        preshared_key_fingerprint=psk_fp,
        endpoint=None if endpoint == NONE else endpoint.decode(),
        allowed_ips=() if allowed == NONE else tuple(allowed.decode().split(",")),
        latest_handshake=hs_v,
        rx_bytes=rx_v,
        tx_bytes=tx_v,
        persistent_keepalive=0 if ka == b"off" else int(ka),
    )


def parse_dump(data: bytes, fp: Fingerprinter, *, origin: str = "wg show all dump") -> DumpParseResult:
    """Split the dump into interfaces and raw peer lines; peer lines are parsed lazily by the differ.

    Only the line shape is checked here (column count, the line belongs to the interface above it) and
    with C-level loops, so that a poll of 100k peers stays cheap; a peer line is fully parsed when it
    changed. A bad line is reported with its line number and skipped; the lines around it are kept.
    """
    result = DumpParseResult()
    lines = data.split(b"\n")
    tabs = list(map(_COUNT_TABS, lines))
    # line indices that are not peer lines: interface lines, blank lines, garbage
    marks = [i for i, n in enumerate(tabs) if n != 8]
    offsets: list[int] | None = None

    def error(i: int, what: str) -> None:
        nonlocal offsets
        if offsets is None:
            offsets = list(accumulate((len(x) + 1 for x in lines), initial=0))
        result.errors.append(
            ParseError(
                f"bad dump line: {what}",
                location=Location(origin, line=i + 1, column=1, offset=offsets[i]),
                fix="the line was skipped; check the wireguard-tools version, report it if it persists",
            )
        )

    current: SnapshotInterface | None = None
    bounds = [*marks, len(lines)]
    if not marks or marks[0] != 0:
        bounds.insert(0, -1)  # peer lines before any interface line
    for k in range(len(bounds) - 1):
        i, j = bounds[k], bounds[k + 1]
        if i >= 0:
            line = lines[i]
            if not line or line.startswith(b"#"):
                pass
            elif tabs[i] == 4:
                current = None  # a new device block; its peers are orphans if its line is bad
                try:
                    info = _interface_from_cols(line.split(b"\t"), fp)
                    if info.name in result.interfaces:
                        raise ValueError("duplicate interface")
                    current = SnapshotInterface(info, "unknown", "dump", [])
                    result.interfaces[info.name] = current
                except (ValueError, UnicodeDecodeError) as exc:
                    error(i, str(exc))
            else:
                error(i, f"line has {tabs[i] + 1} columns, expected 5 (interface) or 9 (peer)")
        block = lines[i + 1 : j]
        if not block:
            continue
        if current is not None and all(
            map(methodcaller("startswith", current.info.name.encode() + b"\t"), block)
        ):
            current.records.extend(block)
            continue
        for n, line in enumerate(block, start=i + 1):  # rare path: say which lines are wrong
            if current is None:
                error(n, "peer line for an interface with no interface line before it")
            elif not line.startswith(current.info.name.encode() + b"\t"):
                error(n, "peer line names another interface than the block it is in")
            else:
                current.records.append(line)
    return result
