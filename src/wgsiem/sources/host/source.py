"""Runtime of the ``host`` source: an rtnetlink monitor in one namespace → ECS envelopes.

The socket is pyroute2's :class:`~pyroute2.AsyncIPRoute` (it enters the namespace for us); it is bound
to the link, address and route multicast groups *before* the initial dump, so nothing that happens
during the dump is missed. Monitored datagrams are taken raw from its queue and decoded by the pure
:func:`~wgsiem.sources.host.netlink.parse_netlink`, so the bytes and the parser's view are one thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.rtnl import (
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_IPV6_ROUTE,
    RTMGRP_LINK,
)

from wgsiem.errors import SourceError
from wgsiem.event import Envelope, EventMeta
from wgsiem.sources.base import SourceContext
from wgsiem.sources.host.config import HostSourceConfig
from wgsiem.sources.host.netlink import NetlinkRecord, parse_netlink, records_from_messages
from wgsiem.sources.host.normalize import to_ecs
from wgsiem.sources.host.tracker import HostChange, HostTracker
from wgsiem.sources.wg_state.normalize import iso

__all__ = ["GROUPS", "HostSource", "socket_error"]

log = logging.getLogger("wgsiem.sources.host")

Emit = Callable[[list[Envelope]], Awaitable[None]]

GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE


SO_RCVBUFFORCE = 33  # Linux; not exported by the socket module
_NLMSG_ERROR = 2
_HDR = struct.Struct("=IHHII")


def socket_error(data: bytes) -> int | None:
    """The errno pyroute2 queues (as an unsolicited NLMSG_ERROR) when the socket itself failed."""
    if len(data) < _HDR.size + 4:
        return None
    _length, mtype, _flags, seq, _pid = _HDR.unpack_from(data)
    if mtype != _NLMSG_ERROR or seq != 0:
        return None
    code = int(struct.unpack_from("=i", data, _HDR.size)[0])
    return code if code > 0 else None


class HostSource:
    """Reports WireGuard link, address and route changes and routes that hijack a peer's AllowedIPs."""

    component_type = "host"

    def __init__(self, component_id: str, config: HostSourceConfig, ctx: SourceContext) -> None:
        self.component_id = component_id
        self.config = config
        self.ctx = ctx
        self.telemetry = ctx.telemetry
        self.tracker = HostTracker(
            ctx.peers,
            interfaces=tuple(config.interfaces),
            wireguard_patterns=tuple(config.wireguard_interfaces),
            include_local_table=config.include_local_table,
        )
        self.sequence = 0
        self.datagrams = 0
        self.overruns = 0
        self.resync = False
        self.last_message_at: float | None = None
        self.ready = asyncio.Event()  # set once the baseline dump is folded in (tests wait on it)

    # ------------------------------------------------------------ pure-ish processing
    def _envelopes(self, changes: list[HostChange], at: float) -> list[Envelope]:
        ns = time.time_ns()
        out = []
        for change in changes:
            self.sequence += 1
            doc = to_ecs(
                change,
                hostname=self.ctx.hostname,
                namespace=self.config.namespace,
                at=at,
                sequence=self.sequence,
                severity=self.config.hijack_severity,
            )
            out.append(Envelope(doc, EventMeta(self.component_id, ns)))
        return out

    def process(self, payload: bytes, at: float) -> list[Envelope]:
        """One rtnetlink datagram read at ``at`` → the events it causes."""
        self.datagrams += 1
        self.last_message_at = at
        code = socket_error(payload)
        if code is not None:
            # ENOBUFS: the kernel dropped messages for us (a burst outran the receive buffer); the
            # link table is re-read so MTU/state stay right and unseen hijacks are still reported
            self.overruns += 1
            self.resync = True
            self.telemetry.error(
                "overrun", "receive", f"netlink socket error {errno.errorcode.get(code, code)}"
            )
            self.telemetry.drop("netlink_overrun")
            return []
        records, errors = parse_netlink(payload, f"netlink:{self.config.namespace or 'host'}")
        for err in errors:
            self.telemetry.error("parse", "decode", str(err))
            self.telemetry.drop("malformed_netlink")
        self.telemetry.received += len(records)
        return self._envelopes(self.tracker.update(records), at)

    def process_baseline(self, records: list[NetlinkRecord], at: float) -> list[Envelope]:
        return self._envelopes(self.tracker.baseline(records), at)

    # ------------------------------------------------------------ live
    async def _dump(self, ipr: Any) -> list[NetlinkRecord]:
        messages: list[Any] = []
        messages.extend([m async for m in await ipr.link("dump")])
        messages.extend([m async for m in await ipr.addr("dump")])
        messages.extend([m async for m in await ipr.route("dump", family=0)])
        records, errors = records_from_messages(messages, "netlink-dump")
        for err in errors:
            self.telemetry.error("parse", "dump", str(err))
        return records

    async def _open(self) -> tuple[Any, list[NetlinkRecord]]:
        """A socket bound to the groups, then a dump of the tables (bound first: nothing falls between).

        After an overrun pyroute2 keeps the socket's error and raises it on the next request, so a
        resync opens a new socket rather than dumping on the old one."""
        # flags=0: never create a namespace that is missing (pyroute2 defaults to O_CREAT)
        ipr = AsyncIPRoute(netns=self.config.namespace, flags=0, rcvbuf=self.config.receive_buffer_bytes)
        try:
            await ipr.bind(groups=GROUPS)
            await ipr.setup_endpoint()
            self._force_rcvbuf(ipr)
        except OSError as exc:
            ipr.close()
            raise SourceError(
                f"cannot open rtnetlink in namespace {self.config.namespace!r}: {exc}",
                fix="check the namespace exists (`ip netns list`) and wgsiem runs as root",
            ) from exc
        for attempt in range(5):
            try:
                return ipr, await self._dump(ipr)
            except OSError as exc:  # ENOBUFS during the dump itself: a burst is still going on
                ipr.close()
                self.overruns += 1
                self.telemetry.error("overrun", "dump", f"netlink dump failed ({exc}); retrying")
                await asyncio.sleep(0.1 * (attempt + 1))
                ipr = AsyncIPRoute(
                    netns=self.config.namespace, flags=0, rcvbuf=self.config.receive_buffer_bytes
                )
                await ipr.bind(groups=GROUPS)
                await ipr.setup_endpoint()
                self._force_rcvbuf(ipr)
        return ipr, await self._dump(ipr)

    def _force_rcvbuf(self, ipr: Any) -> None:
        """SO_RCVBUF is capped by net.core.rmem_max; as root SO_RCVBUFFORCE gives the configured size."""
        with contextlib.suppress(OSError, AttributeError):
            ipr.socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.config.receive_buffer_bytes)

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        ipr, base = await self._open()
        try:
            envs = self.process_baseline(base, time.time())
            self.ready.set()
            if envs:
                self.telemetry.sent += len(envs)
                await emit(envs)
            stopping = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    reading = asyncio.ensure_future(ipr.msg_queue.get(0))
                    done, _ = await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if reading not in done:
                        reading.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await reading
                        break
                    batch = self.process(reading.result(), time.time())
                    # drain what is already queued without a task switch per datagram
                    queue = ipr.msg_queue.queues.get(0)
                    while queue is not None and not queue.empty() and len(batch) < 1000 and not self.resync:
                        data = queue.get_nowait()
                        queue.task_done()
                        batch.extend(self.process(data, time.time()))
                    if self.resync:
                        self.resync = False
                        ipr.close()
                        ipr, base = await self._open()
                        batch.extend(self.process_baseline(base, time.time()))
                    if batch:
                        self.telemetry.sent += len(batch)
                        await emit(batch)
            finally:
                stopping.cancel()
        finally:
            ipr.close()

    def status(self) -> dict[str, Any]:
        return {
            "namespace": self.config.namespace,
            "links": len(self.tracker.links),
            "datagrams": self.datagrams,
            "overruns": self.overruns,
            "records": self.tracker.records_seen,
            "last_message_at": iso(self.last_message_at) if self.last_message_at else None,
        }
