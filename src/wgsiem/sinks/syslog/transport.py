"""Connections to a syslog receiver: UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425).

A connection is opened lazily and kept; the deliverer throws it away on any error and opens a new one
after a backoff. Before a stream write the connection is checked for a FIN from the receiver (a
restarted rsyslog closes its sockets): writing into such a socket would "succeed" and lose the batch.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

from wgsiem.errors import ConfigError

from .config import SyslogSinkConfig, TlsConfig

__all__ = ["Connection", "StreamConnection", "UdpConnection", "open_connection", "tls_context"]


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """The client context: CA verification and hostname check (unless ``verify: false``), optional
    client certificate. Raises :class:`ConfigError` if a file cannot be loaded (its content is never
    put in the message)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 5425 requires ≥1.2 since RFC 9662
    try:
        if tls.ca_file:
            ctx.load_verify_locations(cafile=tls.ca_file)
        if tls.cert_file and tls.key_file:
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"syslog TLS files cannot be loaded: {type(exc).__name__}: "
            f"{getattr(exc, 'strerror', None) or exc}",
            fix="check tls.ca_file / tls.cert_file / tls.key_file exist, are PEM and readable by wgsiem",
        ) from None
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Connection:
    """One open connection; ``send`` raises :class:`OSError` (or ``TimeoutError``) on failure."""

    async def send(self, frames: list[bytes]) -> None:
        raise NotImplementedError

    def usable(self) -> bool:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.error: OSError | None = None

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):  # ICMP port unreachable from an earlier datagram, typically
            self.error = exc


class UdpConnection(Connection):
    def __init__(self, transport: asyncio.DatagramTransport, protocol: _UdpProtocol) -> None:
        self.transport = transport
        self.protocol = protocol

    async def send(self, frames: list[bytes]) -> None:
        for datagram in frames:
            if self.protocol.error is not None:
                error, self.protocol.error = self.protocol.error, None
                raise error
            self.transport.sendto(datagram)
        # Let the loop run once so an immediate ICMP error surfaces for this batch, not the next one.
        await asyncio.sleep(0)

    def usable(self) -> bool:
        return not self.transport.is_closing()

    async def close(self) -> None:
        self.transport.close()


class StreamConnection(Connection):
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, write_timeout_secs: float
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.write_timeout_secs = write_timeout_secs

    async def send(self, frames: list[bytes]) -> None:
        if not self.usable():
            raise ConnectionResetError("the receiver closed the connection")
        self.writer.write(b"".join(frames))
        async with asyncio.timeout(self.write_timeout_secs):
            await self.writer.drain()

    def usable(self) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing())

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()
        except (OSError, TimeoutError, ssl.SSLError):
            pass


async def open_connection(config: SyslogSinkConfig, tls: ssl.SSLContext | None) -> Connection:
    """Connect (TCP/TLS: including the handshake) within ``connect_timeout_secs``."""
    host, port = config.host, config.effective_port
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(config.connect_timeout_secs):
        if config.transport == "udp":
            transport, protocol = await loop.create_datagram_endpoint(_UdpProtocol, remote_addr=(host, port))
            return UdpConnection(transport, protocol)
        kwargs: dict[str, Any] = {}
        if config.transport == "tls":
            kwargs = {"ssl": tls, "server_hostname": config.tls.server_name or host}
        reader, writer = await asyncio.open_connection(host, port, **kwargs)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return StreamConnection(reader, writer, write_timeout_secs=config.write_timeout_secs)
