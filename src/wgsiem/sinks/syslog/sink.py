"""The syslog sink: an outbox in front of :class:`SyslogDeliverer`.

Delivery guarantees, honestly: syslog has no application-level acknowledgement. Over TCP/TLS a batch
counts as delivered once the kernel accepted it and the receiver had not closed the connection before
the write; a receiver that dies with data in its socket buffer loses that data (RELP would close this
gap; rsyslog's ``imrelp`` is not used here). A failed write retries the whole batch, so a receiver may
see an event twice — with the same ``event.id`` in the structured data / ``externalId`` / ``eventId``.
Over UDP a datagram is sent and forgotten (only ICMP "port unreachable" is noticed).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from datetime import UTC, datetime
from typing import Any

from wgsiem.errors import WgsiemError
from wgsiem.pipeline.telemetry import ComponentTelemetry
from wgsiem.sinks.outbox.contract import DeliveryReport, Pending, RetryableDeliveryError
from wgsiem.sinks.outbox.sink import OutboxSink
from wgsiem.sinks.registry import SinkContext

from .config import SyslogSinkConfig
from .encoder import SyslogEncoder, frame
from .transport import Connection, open_connection, tls_context

__all__ = ["SyslogDeliverer", "SyslogSink"]

_CONNECT_ERRORS = (OSError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError)


class SyslogDeliverer:
    """Encodes each record and writes the batch to one receiver; reconnects with doubling backoff."""

    def __init__(self, config: SyslogSinkConfig, *, hostname: str, procid: str | None = None) -> None:
        self.config = config
        self.encoder = SyslogEncoder(config, hostname=hostname, procid=procid or str(os.getpid()))
        self._tls = tls_context(config.tls) if config.transport == "tls" else None
        self._conn: Connection | None = None
        self._backoff = config.reconnect_initial_backoff_secs
        self._next_connect = 0.0
        self.sent = 0
        self.truncated = 0
        self.connects = 0
        self.last_error: str | None = None
        self.telemetry: ComponentTelemetry | None = None
        """The sink's telemetry (set by :meth:`SyslogSink.build`): truncations count as
        ``message_truncated@encode`` errors there, so they show on ``/metrics``."""

    @property
    def endpoint(self) -> str:
        return f"{self.config.transport}://{self.config.host}:{self.config.effective_port}"

    async def start(self) -> None:
        """Nothing to do up front: :meth:`health_check` makes the first connection."""

    async def _connect(self) -> Connection:
        if self._conn is not None and self._conn.usable():
            return self._conn
        if self._conn is not None:
            await self._drop()
        wait = self._next_connect - time.monotonic()
        if wait > 0:
            raise RetryableDeliveryError(
                f"syslog receiver {self.endpoint} unreachable; reconnecting in {wait:.1f} s",
                retry_after_secs=wait,
            )
        try:
            self._conn = await open_connection(self.config, self._tls)
        except _CONNECT_ERRORS as exc:
            self._failed(exc)
            raise RetryableDeliveryError(
                f"cannot connect to syslog receiver {self.endpoint}: {_describe(exc)}",
                retry_after_secs=self._next_connect - time.monotonic(),
                fix=_fix(exc),
            ) from None
        self.connects += 1
        self._backoff = self.config.reconnect_initial_backoff_secs
        self._next_connect = 0.0
        return self._conn

    def _failed(self, exc: BaseException) -> None:
        self.last_error = _describe(exc)
        self._next_connect = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.config.reconnect_max_backoff_secs)

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def health_check(self) -> None:
        """Connect (TCP/TLS: handshake included); raise with a fix when the receiver cannot be reached."""
        self._next_connect = 0.0
        try:
            await self._connect()
        except RetryableDeliveryError as exc:
            raise WgsiemError(exc.what, fix=exc.fix) from None

    def encode(self, batch: list[Pending]) -> tuple[list[bytes], DeliveryReport]:
        """Frames for ``batch`` in order; a record that cannot be encoded is rejected, not retried."""
        report = DeliveryReport()
        frames = []
        framing = self.config.effective_framing
        now = datetime.now(UTC)
        for item in batch:
            try:
                encoded = self.encoder.encode(item.doc, now=now)
            except (WgsiemError, TypeError, ValueError) as exc:
                report.rejected[item.seq] = f"cannot encode as syslog: {type(exc).__name__}: {exc}"
                continue
            if encoded.truncated:
                self.truncated += 1
                if self.telemetry is not None:
                    self.telemetry.error("message_truncated", "encode")
            frames.append(
                encoded.message if self.config.transport == "udp" else frame(encoded.message, framing)
            )
        return frames, report

    async def deliver(self, batch: list[Pending]) -> DeliveryReport:
        frames, report = self.encode(batch)
        if not frames:
            return report
        conn = await self._connect()
        try:
            await conn.send(frames)
        except _CONNECT_ERRORS as exc:
            self._failed(exc)
            await self._drop()
            raise RetryableDeliveryError(
                f"writing to syslog receiver {self.endpoint} failed: {_describe(exc)}",
                retry_after_secs=self._next_connect - time.monotonic(),
            ) from None
        self.sent += len(frames)
        return report

    async def close(self) -> None:
        await self._drop()

    def status(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "format": self.config.format,
            "payload": self.config.payload,
            "connected": self._conn is not None and self._conn.usable(),
            "messages_sent": self.sent,
            "messages_truncated": self.truncated,
            "connects": self.connects,
            "last_error": self.last_error,
        }


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}"
    if isinstance(exc, OSError) and exc.errno:  # asyncio puts "Connect call failed (…)" in strerror
        return os.strerror(exc.errno)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def _fix(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return "check tls.ca_file signs the receiver's certificate and tls.server_name matches it"
    return "check host/port/transport and that the receiver (rsyslog, syslog-ng, collector) listens there"


class SyslogSink:
    """Registry entry point: ``build`` returns the outbox-backed pipeline sink."""

    component_type = "syslog"

    @classmethod
    def build(cls, config: SyslogSinkConfig, ctx: SinkContext) -> OutboxSink:
        deliverer = SyslogDeliverer(config, hostname=ctx.hostname)
        sink = OutboxSink(ctx, component_type=cls.component_type, config=config.outbox, deliverer=deliverer)
        deliverer.telemetry = sink.telemetry
        return sink
