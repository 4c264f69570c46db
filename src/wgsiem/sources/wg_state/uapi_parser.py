"""Pure parser of the cross-platform UAPI ``get=1`` answer (wireguard-go, boringtun, wireguard-nt).

The answer is ``key=value`` lines: interface keys first, then one block per peer starting at
``public_key=``, ended by ``errno=N`` and a blank line. Keys are hex. The answer is split into raw peer
blocks (one bytes split, no per-line Python work) so the differ can skip unchanged peers; a block is fully
parsed only when it changed.
"""

from __future__ import annotations

import base64
import operator
from dataclasses import dataclass, field

from wgsiem.errors import Location, ParseError
from wgsiem.sources.wg_state.records import Fingerprinter, InterfaceRecord, PeerRecord

__all__ = ["UapiParseResult", "hex_to_b64", "parse_uapi", "parse_uapi_peer"]

_ZERO_KEY = "0" * 64
_HEX = frozenset(b"0123456789abcdef")
_KEY = operator.itemgetter(slice(0, 64))
_NL_AFTER_KEY = operator.methodcaller("startswith", b"\n", 64)


def hex_to_b64(hex_key: str) -> str:
    raw = bytes.fromhex(hex_key)
    if len(raw) != 32:
        raise ValueError("key is not 32 bytes")
    return base64.b64encode(raw).decode("ascii")


@dataclass(slots=True)
class UapiParseResult:
    info: InterfaceRecord | None
    records: list[bytes] = field(default_factory=list)
    errno: int | None = None
    errors: list[ParseError] = field(default_factory=list)

    @property
    def peers(self) -> dict[bytes, bytes]:
        """Raw key (hex) → raw block; built on demand (the differ works on ``records``)."""
        return dict(zip(map(_KEY, self.records), self.records, strict=True))


def _interface(name: str, header: bytes, fp: Fingerprinter) -> InterfaceRecord:
    priv: str | None = None
    port = 0
    fwmark = 0
    for line in header.split(b"\n"):
        if not line:
            continue
        k, sep, v = line.partition(b"=")
        if not sep:
            raise ValueError("interface line without '='")
        if k == b"private_key":
            priv = v.decode("ascii")
        elif k == b"listen_port":
            port = int(v)
        elif k == b"fwmark":
            fwmark = int(v)
        # unknown interface keys (forks, newer versions) are ignored on purpose
    present = priv is not None and priv != _ZERO_KEY
    pub: str | None = None
    if present and priv is not None:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        pk = X25519PrivateKey.from_private_bytes(bytes.fromhex(priv))
        pub = base64.b64encode(pk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    return InterfaceRecord(
        name=name,
        public_key=pub,
        private_key_present=present,
        private_key_fingerprint=fp.of_hex(priv) if present and priv else None,
        listen_port=port,
        fwmark=fwmark,
    )


def parse_uapi(name: str, data: bytes, fp: Fingerprinter) -> UapiParseResult:
    """Split one interface's UAPI answer into its interface record and raw peer blocks."""
    origin = f"uapi:{name}"
    errors: list[ParseError] = []
    errno: int | None = None
    tail = data.rfind(b"errno=")
    terminated = tail >= 0 and (tail == 0 or data[tail - 1 : tail] == b"\n")
    if terminated:
        try:
            errno = int(data[tail + 6 :].split(b"\n", 1)[0])
        except ValueError:
            errors.append(ParseError("bad errno line", location=Location(origin, offset=tail)))
    else:
        tail = len(data)
        errors.append(
            ParseError(
                "UAPI answer has no errno terminator (truncated read?)",
                location=Location(origin, offset=len(data)),
                fix="the last peer may be incomplete; it is kept only if it parses",
            )
        )
    # One C-level split of the whole answer, without copying it first (16 MB at 50k peers): the first
    # part is the interface section, each other part a peer block starting with its 64-hex-digit key.
    # Only the last part is trimmed of the ``errno=`` terminator.
    if data.startswith(b"public_key="):
        chunks = (b"\n" + data).split(b"\npublic_key=")
    else:
        chunks = data.split(b"\npublic_key=")
    header = chunks.pop(0)
    if chunks:
        last = chunks[-1]
        cut = len(last) - (len(data) - tail)
        chunks[-1] = last[: max(cut, 0)]
    else:
        header = header[: max(0, len(header) - (len(data) - tail))]
    info: InterfaceRecord | None
    try:
        info = _interface(name, header, fp)
    except (ValueError, UnicodeDecodeError) as exc:
        info = None
        errors.append(ParseError(f"bad interface section: {exc}", location=Location(origin, offset=0)))
    result = UapiParseResult(info=info, errno=errno, errors=errors)
    # C-level check (map/methodcaller): this runs over every peer on every poll
    if all(map(_NL_AFTER_KEY, chunks)):
        result.records = chunks
    else:
        # rare path: find the bad blocks one by one, with their offsets
        good: list[bytes] = []
        offset = len(header)
        for chunk in chunks:
            start = offset
            offset += len(chunk) + 12
            if len(chunk) < 65 or chunk[64:65] != b"\n" or not _HEX.issuperset(chunk[:64]):
                errors.append(
                    ParseError(
                        "peer block with a malformed public key", location=Location(origin, offset=start)
                    )
                )
            else:
                good.append(chunk)
        result.records = good
    return result


def parse_uapi_peer(interface: str, block: bytes, fp: Fingerprinter) -> PeerRecord:
    """One raw peer block (starting with the hex public key) → record. Raises ValueError if malformed."""
    lines = block.split(b"\n")
    pub = hex_to_b64(lines[0].decode("ascii"))
    psk: str | None = None
    endpoint: str | None = None
    allowed: list[str] = []
    hs = rx = tx = ka = 0
    for line in lines[1:]:
        if not line:
            continue
        k, sep, v = line.partition(b"=")
        if not sep:
            raise ValueError("peer line without '='")
        if k == b"allowed_ip":
            allowed.append(v.decode("ascii"))
        elif k == b"last_handshake_time_sec":
            hs = int(v)
        elif k == b"rx_bytes":
            rx = int(v)
        elif k == b"tx_bytes":
            tx = int(v)
        elif k == b"endpoint":
            endpoint = v.decode("ascii")
        elif k == b"preshared_key":
            psk = v.decode("ascii")
        elif k == b"persistent_keepalive_interval":
            ka = int(v)
    if hs < 0 or rx < 0 or tx < 0 or ka < 0:
        raise ValueError("negative counter")
    psk_present = psk is not None and psk != _ZERO_KEY
    if psk_present and psk is not None and len(bytes.fromhex(psk)) != 32:
        raise ValueError("preshared key is not 32 bytes")
    return PeerRecord(
        interface=interface,
        public_key=pub,
        preshared_key_present=psk_present,
        preshared_key_fingerprint=fp.of_hex(psk) if psk_present and psk else None,
        endpoint=endpoint,
        allowed_ips=tuple(allowed),
        latest_handshake=hs,
        rx_bytes=rx,
        tx_bytes=tx,
        persistent_keepalive=ka,
    )
