"""Typed records of WireGuard runtime state, as parsed from the dump or the UAPI answer.

Keys: public keys are kept in WireGuard's base64 form. Private and preshared keys are never kept in a
record: only whether one is set and a *keyed* fingerprint (HMAC-SHA256 under a per-collector secret),
so a key change is visible but the fingerprint is useless to anyone without the collector's secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import operator
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Fingerprinter",
    "InterfaceRecord",
    "PeerRecord",
    "Snapshot",
    "SnapshotInterface",
    "record_keys",
    "split_endpoint",
]

Implementation = Literal["wireguard-go", "kernel", "userspace", "unknown"]


@dataclass(frozen=True, slots=True)
class InterfaceRecord:
    name: str
    public_key: str | None
    private_key_present: bool
    private_key_fingerprint: str | None
    listen_port: int
    fwmark: int


@dataclass(frozen=True, slots=True)
class PeerRecord:
    interface: str
    public_key: str
    preshared_key_present: bool
    preshared_key_fingerprint: str | None
    endpoint: str | None
    allowed_ips: tuple[str, ...]
    latest_handshake: int  # epoch seconds, 0 = never
    rx_bytes: int
    tx_bytes: int
    persistent_keepalive: int  # seconds, 0 = off


_UAPI_KEY = operator.itemgetter(slice(0, 64))
_SECOND = operator.itemgetter(1)
_SPLIT2 = operator.methodcaller("split", b"\t", 2)


def record_keys(peer_format: str, records: list[bytes]) -> list[bytes]:
    """The raw key token of each raw record (hex for UAPI blocks, base64 for dump lines), C-level."""
    if peer_format == "uapi":
        return list(map(_UAPI_KEY, records))
    return list(map(_SECOND, map(_SPLIT2, records)))


class SnapshotInterface:
    """One interface in a snapshot: its record and one raw record per peer.

    A raw record is a dump line or a UAPI peer block. The differ hashes raw records and parses only
    those that changed since the previous poll, which is what keeps a poll of 100k peers cheap; ``peers``
    (raw key token → raw record) is built only when asked for.
    """

    __slots__ = (
        "_peers",
        "implementation",
        "info",
        "peer_format",
        "positions",
        "previous",
        "records",
        "total",
    )

    def __init__(
        self,
        info: InterfaceRecord,
        implementation: Implementation,
        peer_format: Literal["dump", "uapi"],
        records: list[bytes],
    ) -> None:
        self.info = info
        self.implementation: Implementation = implementation
        self.peer_format: Literal["dump", "uapi"] = peer_format
        self.records = records
        self._peers: dict[bytes, bytes] | None = None
        # Set by a reader that knows: the previous snapshot's record list of this interface, whose
        # peers are these, in this order (a replayed delta that added and removed no peer). A line
        # unchanged since then is the very same bytes at the same index, so the differ finds the
        # changed lines by comparing position by position instead of hashing every line.
        self.previous: list[bytes] | None = None
        # Set when this is one shard of an interface's records (the replay's split of the peers
        # over several differs, :mod:`wgsiem.sources.wg_state.shard`): each record's position in the
        # whole list, and that list's length.
        self.positions: list[int] | None = None
        self.total: int | None = None

    @property
    def peers(self) -> dict[bytes, bytes]:
        if self._peers is None:
            self._peers = dict(zip(record_keys(self.peer_format, self.records), self.records, strict=True))
        return self._peers

    def __len__(self) -> int:
        return len(self.records)

    @property
    def peer_count(self) -> int:
        """How many peer records the interface has (all shards together)."""
        return len(self.records) if self.total is None else self.total


@dataclass(slots=True)
class Snapshot:
    taken_at: float  # epoch seconds (wall clock) when the read finished
    interfaces: dict[str, SnapshotInterface]
    errors: list[str]


class Fingerprinter:
    """Keyed fingerprints of secret keys: HMAC-SHA256(secret, raw key), first 16 hex characters."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("fingerprint secret must be at least 16 bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "Fingerprinter(<secret>)"

    def of_raw(self, raw: bytes) -> str:
        return hmac.new(self._secret, raw, hashlib.sha256).hexdigest()[:16]

    def of_b64(self, key: str) -> str:
        try:
            raw = base64.b64decode(key, validate=True)
        except ValueError:
            raw = key.encode()
        return self.of_raw(raw)

    def of_hex(self, key: str) -> str:
        try:
            raw = bytes.fromhex(key)
        except ValueError:
            raw = key.encode()
        return self.of_raw(raw)


def split_endpoint(endpoint: str | None) -> tuple[str | None, int | None]:
    """``1.2.3.4:5`` / ``[2001:db8::1]:5`` / ``[fe80::1%eth0]:5`` → (address, port)."""
    if not endpoint:
        return None, None
    if endpoint.startswith("["):
        close = endpoint.rfind("]")
        if close < 0:
            return None, None
        host = endpoint[1:close]
        rest = endpoint[close + 1 :]
        port_s = rest[1:] if rest.startswith(":") else ""
    else:
        host, sep, port_s = endpoint.rpartition(":")
        if not sep:
            return None, None
    host = host.split("%", 1)[0]
    try:
        port = int(port_s)
    except ValueError:
        return host or None, None
    if not 0 <= port <= 65535:
        return host or None, None
    return host or None, port
