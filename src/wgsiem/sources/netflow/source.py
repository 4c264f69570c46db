"""Runtime of the ``netflow`` source: a UDP collector → decoder → one ECS event per flow record.

The socket is read by an asyncio datagram protocol that only queues (bounded: a burst beyond
``queue_max_datagrams`` is dropped and counted, never buffered without limit); the run loop decodes
batches and emits them, so the pipeline's backpressure paces decoding and never the kernel socket.
Live and replay go through the same :meth:`NetflowSource.process`, so replaying a capture of the
export datagrams yields the very events (same ids) the live run emitted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from wgsiem.errors import ParseError, SourceError
from wgsiem.event import Envelope, EventMeta
from wgsiem.sources.base import ReplayItem, SourceContext
from wgsiem.sources.netflow.attribution import TunnelIndex
from wgsiem.sources.netflow.config import NetflowSourceConfig
from wgsiem.sources.netflow.decoder import decode
from wgsiem.sources.netflow.normalize import iso, to_ecs
from wgsiem.sources.netflow.pcap import is_capture, read_datagrams
from wgsiem.sources.netflow.records import Datagram
from wgsiem.sources.netflow.templates import TemplateCache

__all__ = ["NetflowSource"]

log = logging.getLogger("wgsiem.sources.netflow")

Emit = Callable[[list[Envelope]], Awaitable[None]]
_EXPIRE_EVERY_SECS = 30.0


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, owner: NetflowSource) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.owner.ctx.telemetry.error("socket", "receive", str(exc))


class NetflowSource:
    """Collects NetFlow v5/v9/IPFIX on UDP; see ``docs/sources/netflow.md``."""

    component_type = "netflow"

    def __init__(
        self,
        component_id: str,
        config: NetflowSourceConfig,
        ctx: SourceContext,
        *,
        sock: socket.socket | None = None,
    ) -> None:
        """``sock``: an already bound UDP socket to use instead of binding ``listen_address`` (socket
        activation, or a socket created inside another network namespace)."""
        self.component_id = component_id
        self.config = config
        self.ctx = ctx
        self.sock = sock
        self.cache = TemplateCache(
            timeout_secs=config.template_timeout_secs,
            max_templates=config.max_templates,
            max_templates_per_domain=config.max_templates_per_domain,
            max_domains=config.max_domains,
        )
        self.index = TunnelIndex(ctx.peers)
        self._allowed = [ipaddress.ip_network(c, strict=False) for c in config.allowed_exporters]
        self._allowed_memo: dict[str, bool] = {}
        self._queue: deque[Datagram] = deque()
        self._wakeup = asyncio.Event()
        self.bound: tuple[str, int] | None = None
        self.datagrams = 0
        self.records = 0
        self.sequence_gaps = 0
        self.last_datagram_at: float | None = None

    # ------------------------------------------------------------ decoding (live and replay)
    def process(self, payload: Datagram, at: float) -> list[Envelope]:
        """One export datagram → one envelope per flow record it holds."""
        tel = self.ctx.telemetry
        out = decode(payload.data, payload.exporter, self.cache, at)
        self.datagrams += 1
        self.last_datagram_at = at
        for err in out.errors:
            tel.error("parse", "decode", err.render())
        if out.error_count > len(out.errors):
            tel.errors["parse@decode"] += out.error_count - len(out.errors)
        if out.unknown_template_sets:
            tel.drop("template_unknown", out.unknown_template_sets)
        if out.templates_refused:
            tel.drop("template_refused", out.templates_refused)
        if out.non_flow_records:
            tel.drop("not_a_flow", out.non_flow_records)
        if out.sequence_gap:
            self.sequence_gaps += out.sequence_gap
        self.records += len(out.records)
        if not out.records:
            return []
        ns = time.time_ns()
        cfg = self.config
        lookup = self.index.lookup
        host = self.ctx.hostname
        scale = cfg.sampling == "scale"
        envs = [
            Envelope(
                to_ecs(
                    r,
                    hostname=host,
                    received_at=at,
                    lookup=lookup,
                    peer_interface=cfg.peer_interface,
                    scale_sampling=scale,
                ),
                EventMeta(self.component_id, ns),
            )
            for r in out.records
        ]
        tel.sent += len(envs)
        return envs

    # ------------------------------------------------------------ live
    def _exporter_allowed(self, ip: str) -> bool:
        if not self._allowed:
            return True
        ok = self._allowed_memo.get(ip)
        if ok is None:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
            ok = any(addr in net for net in self._allowed)
            if len(self._allowed_memo) < 4096:
                self._allowed_memo[ip] = ok
        return ok

    def _received(self, data: bytes, addr: Any) -> None:
        tel = self.ctx.telemetry
        tel.received += 1
        ip = addr[0]
        if ip.startswith("::ffff:"):
            ip = ip[7:]
        if not self._exporter_allowed(ip):
            tel.drop("exporter_not_allowed")
            return
        if len(self._queue) >= self.config.queue_max_datagrams:
            tel.drop("queue_full")
            return
        self._queue.append(Datagram(ip, addr[1], data, time.time()))
        self._wakeup.set()

    def _open_socket(self) -> socket.socket:
        if self.sock is not None:
            return self.sock
        host = self.config.listen_address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.config.receive_buffer_bytes)
            sock.bind((host, self.config.listen_port))
        except OSError as exc:
            sock.close()
            raise SourceError(
                f"cannot listen on udp {host}:{self.config.listen_port}: {exc.strerror}",
                fix="pick a free listen_port, or run with the rights to bind it",
            ) from exc
        return sock

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        sock = self._open_socket()
        sock.setblocking(False)
        self.bound = sock.getsockname()[:2]
        transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(self), sock=sock)
        log.info("%s: collecting NetFlow/IPFIX on udp %s:%s", self.component_id, *self.bound)
        last_expire = time.monotonic()
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while True:
                if stop.is_set() and not transport.is_closing():
                    transport.close()  # stop receiving; what is queued is still decoded and emitted
                if not self._queue:
                    if stop.is_set():
                        break
                    self._wakeup.clear()
                    waiter = asyncio.ensure_future(self._wakeup.wait())
                    await asyncio.wait(
                        {waiter, stopper}, timeout=_EXPIRE_EVERY_SECS, return_when="FIRST_COMPLETED"
                    )
                    waiter.cancel()
                batch: list[Envelope] = []
                for _ in range(min(len(self._queue), self.config.batch_max_datagrams)):
                    dg = self._queue.popleft()
                    batch.extend(self.process(dg, dg.received_at))
                if batch:
                    await emit(batch)
                if time.monotonic() - last_expire >= _EXPIRE_EVERY_SECS:
                    self.cache.expire(time.time())
                    last_expire = time.monotonic()
                await asyncio.sleep(0)  # let the receiver run between batches
        finally:
            stopper.cancel()
            transport.close()

    # ------------------------------------------------------------ replay
    @staticmethod
    def replay_detect(path: Path, head: bytes) -> bool:
        return is_capture(head)

    @staticmethod
    def replay_read(path: Path) -> Iterator[ReplayItem]:
        for n, (ts, item) in enumerate(read_datagrams(path), start=1):
            where = str(item.location) if isinstance(item, ParseError) and item.location else f"{path}#{n}"
            yield ReplayItem(ts, item, where)

    # ------------------------------------------------------------ views
    def status(self) -> dict[str, Any]:
        return {
            "listening": f"{self.bound[0]}:{self.bound[1]}" if self.bound else None,
            "datagrams": self.datagrams,
            "records": self.records,
            "queued": len(self._queue),
            "templates": len(self.cache),
            "templates_expired": self.cache.expired,
            "templates_refused": self.cache.refused,
            "exporters": sorted({f"{k[0]}/{k[1]}" for k in self.cache.domains}),
            "sequence_gaps": self.sequence_gaps,
            "last_datagram_at": iso(self.last_datagram_at) if self.last_datagram_at else None,
        }
