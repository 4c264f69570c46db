"""Unit tests of ``SyslogDeliverer`` against loopback listeners (no rsyslog): framing on the wire,
connection refused → retryable with a growing backoff, a closed connection noticed before writing."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from wgsiem.errors import WgsiemError
from wgsiem.sinks.outbox.contract import Pending, RetryableDeliveryError
from wgsiem.sinks.syslog.config import SyslogSinkConfig
from wgsiem.sinks.syslog.sink import SyslogDeliverer

DOC = {"@timestamp": "2026-11-25T18:39:34.000Z", "event": {"id": "e1", "action": "session-started"}}
MESSAGE = (
    b'<134>1 2026-11-25T18:39:34.000Z h wgsiem 7 session-started [wgsiem@32473 id="e1" '
    b'action="session-started"] CEF:0|wgsiem|wgsiem|0.1.0|session-started|session-started|1|'
    b"rt=1795631974000 externalId=e1 act=session-started"
)


def _config(port: int, **kw: Any) -> SyslogSinkConfig:
    return SyslogSinkConfig.model_validate(
        {"type": "syslog", "host": "127.0.0.1", "port": port, "payload": "cef", **kw}
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """A TCP listener that records every byte it receives."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        while chunk := await reader.read(65536):
            self.data += chunk

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


async def _wait(predicate: Any) -> None:
    async with asyncio.timeout(10):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("framing", "wire"),
    [("octet_counting", b"%d %b" % (len(MESSAGE), MESSAGE)), ("lf", MESSAGE + b"\n")],
)
def test_tcp_framing_on_the_wire(framing: str, wire: bytes) -> None:
    async def run() -> None:
        server = _Server()
        deliverer = SyslogDeliverer(_config(await server.start(), framing=framing), hostname="h", procid="7")
        report = await deliverer.deliver([Pending(1, "e1", DOC), Pending(2, "e1", DOC)])
        assert (report.rejected, report.retry) == ({}, [])
        await _wait(lambda: len(server.data) >= 2 * len(wire))
        assert bytes(server.data) == wire * 2
        await deliverer.close()
        await server.stop()

    asyncio.run(run())


def test_udp_sends_one_datagram_per_message() -> None:
    async def run() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            port = sock.getsockname()[1]
            deliverer = SyslogDeliverer(_config(port, transport="udp"), hostname="h", procid="7")
            await deliverer.deliver([Pending(1, "e1", DOC), Pending(2, "e1", DOC)])
            loop = asyncio.get_running_loop()
            got = [await loop.sock_recv(sock, 65536) for _ in range(2)]
            assert got == [MESSAGE, MESSAGE]
            await deliverer.close()

    asyncio.run(run())


def test_refused_connection_is_retryable_with_doubling_backoff() -> None:
    async def run() -> None:
        config = _config(_closed_port(), reconnect_initial_backoff_secs=10, reconnect_max_backoff_secs=15)
        deliverer = SyslogDeliverer(config, hostname="h")
        with pytest.raises(RetryableDeliveryError) as first:
            await deliverer.deliver([Pending(1, "e1", DOC)])
        assert "Connection refused" in first.value.what
        assert first.value.retry_after_secs is not None and 9 < first.value.retry_after_secs <= 10
        with pytest.raises(RetryableDeliveryError, match="reconnecting in"):  # no connect storm
            await deliverer.deliver([Pending(1, "e1", DOC)])
        assert deliverer._backoff == 15  # doubled, capped
        with pytest.raises(WgsiemError) as health:  # the health check always tries now
            await deliverer.health_check()
        assert health.value.fix is not None and "listens there" in health.value.fix
        assert deliverer.status()["last_error"] == "Connection refused"

    asyncio.run(run())


def test_connection_closed_by_the_receiver_is_noticed_before_writing() -> None:
    async def run() -> None:
        server = _Server()
        deliverer = SyslogDeliverer(
            _config(await server.start(), reconnect_initial_backoff_secs=0.01), hostname="h", procid="7"
        )
        await deliverer.deliver([Pending(1, "e1", DOC)])
        await _wait(lambda: len(server.writers) == 1 and len(server.data) > 0)
        server.writers[0].close()  # the receiver hangs up; the listener stays
        assert deliverer._conn is not None
        await _wait(lambda: not deliverer._conn.usable())  # type: ignore[union-attr]
        await asyncio.sleep(0.02)  # let the 0.01 s reconnect backoff pass (not part of the assertion)
        await deliverer.deliver([Pending(2, "e1", DOC)])
        await _wait(lambda: len(server.writers) == 2)
        assert deliverer.status()["connects"] == 2
        await deliverer.close()
        await server.stop()

    asyncio.run(run())


def test_unencodable_record_is_rejected_not_retried() -> None:
    async def run() -> None:
        server = _Server()
        deliverer = SyslogDeliverer(_config(await server.start(), payload="json"), hostname="h")
        bad = {"event": {"id": "x"}, "n": 2**70}  # past 64 bits: JSON (orjson) refuses
        report = await deliverer.deliver([Pending(1, "x", bad), Pending(2, "e1", DOC)])
        assert list(report.rejected) == [1] and "cannot encode" in report.rejected[1]
        await deliverer.close()
        await server.stop()

    asyncio.run(run())
