"""Talking to wireguard-go over its UAPI socket, the way ``wg`` itself does, without spawning ``wg``.

Why the lab speaks UAPI directly: its waits poll the gateway many times a second, and adding 100k
synthetic peers must be one write, not 100k command-line arguments. The request/response framing is
the cross-platform userspace protocol (https://www.wireguard.com/xplatform/): ``get=1\\n\\n`` or
``set=1\\n<key=value lines>\\n``, answered by ``key=value`` lines ending in ``errno=N`` and a blank line.

:func:`parse_get` is pure and deliberately minimal (the lab only needs endpoints, handshakes and
counters); the product's parser lives in ``wgsiem.sources.wg_state``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from wgsiem.lab.topology import LabError, bulk_peer_slot

__all__ = [
    "SOCKET_DIR",
    "UapiDevice",
    "UapiPeer",
    "bulk_peer_lines",
    "parse_get",
    "set_body",
    "socket_path",
    "uapi_get",
    "uapi_set",
]

SOCKET_DIR = Path("/var/run/wireguard")
_CHUNK = 1 << 20


def socket_path(interface: str) -> Path:
    return SOCKET_DIR / f"{interface}.sock"


@dataclass(slots=True)
class UapiPeer:
    public_key_hex: str
    endpoint: str | None = None
    last_handshake_sec: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    allowed_ips: list[str] = field(default_factory=list)
    has_preshared_key: bool = False


@dataclass(slots=True)
class UapiDevice:
    listen_port: int | None = None
    peers: dict[str, UapiPeer] = field(default_factory=dict)
    """Keyed by hex public key, in the order wireguard-go reported them."""


def parse_get(raw: bytes) -> UapiDevice:
    """Parse a ``get=1`` answer; raises :class:`LabError` unless it ends in ``errno=0``."""
    device = UapiDevice()
    peer: UapiPeer | None = None
    errno: str | None = None
    for line in raw.decode().splitlines():
        if not line:
            continue
        key, _, value = line.partition("=")
        if key == "errno":
            errno = value
        elif key == "listen_port":
            device.listen_port = int(value)
        elif key == "public_key":
            peer = UapiPeer(public_key_hex=value)
            device.peers[value] = peer
        elif peer is None:
            continue
        elif key == "endpoint":
            peer.endpoint = value
        elif key == "last_handshake_time_sec":
            peer.last_handshake_sec = int(value)
        elif key == "rx_bytes":
            peer.rx_bytes = int(value)
        elif key == "tx_bytes":
            peer.tx_bytes = int(value)
        elif key == "allowed_ip":
            peer.allowed_ips.append(value)
        elif key == "preshared_key":
            peer.has_preshared_key = value.strip("0") != ""
    if errno != "0":
        raise LabError(f"UAPI get answered errno={errno}", fix="check the wireguard-go log of the interface")
    return device


def set_body(lines: Iterable[str]) -> bytes:
    """Frame ``key=value`` lines as one ``set=1`` request."""
    out = ["set=1\n"]
    out.extend(f"{line}\n" for line in lines)
    out.append("\n")
    return "".join(out).encode()


def bulk_peer_lines(start: int, public_keys: Iterable[bytes]) -> list[str]:
    """UAPI ``set`` lines adding one synthetic peer per key, numbered from ``start`` (see bulk_peer_slot)."""
    lines: list[str] = []
    for k, key in enumerate(public_keys, start):
        allowed, endpoint = bulk_peer_slot(k)
        lines += [f"public_key={key.hex()}", f"endpoint={endpoint}", f"allowed_ip={allowed}"]
    return lines


def _exchange(interface: str, request: bytes, timeout: float) -> bytes:
    path = socket_path(interface)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(request)
            chunks: list[bytes] = []
            tail = b""
            while True:
                chunk = sock.recv(_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
                # The answer ends at the first blank line; wireguard-go then waits for the next request
                # on the same connection, so reading to EOF would hang.
                tail = (tail + chunk)[-2:]
                if tail == b"\n\n":
                    break
        except OSError as exc:
            raise LabError(
                f"UAPI exchange with {path} failed: {exc}",
                fix="is the interface's wireguard-go running? see `wgsiem lab status`",
            ) from exc
    raw = b"".join(chunks)
    if not raw.endswith(b"\n\n"):
        raise LabError(f"UAPI answer from {path} ended early", fix="check the wireguard-go log")
    return raw


def uapi_get(interface: str, timeout: float = 30.0) -> bytes:
    """The raw ``get=1`` answer, up to and including the ``errno=`` line and the blank line after it."""
    return _exchange(interface, b"get=1\n\n", timeout)


def uapi_set(interface: str, body: bytes, timeout: float = 600.0) -> None:
    """Send one ``set=1`` request (from :func:`set_body`); raises :class:`LabError` on a non-zero errno."""
    raw = _exchange(interface, body, timeout)
    if raw != b"errno=0\n\n":
        raise LabError(
            f"UAPI set on {interface} failed: {raw.decode(errors='replace').strip()}",
            fix="check the wireguard-go log of the interface for the rejected line",
        )
