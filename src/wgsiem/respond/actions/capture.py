"""Tier 3: a bounded packet capture of one peer's traffic, opt-in, into the case folder.

``tcpdump`` runs on the gateway through the executor with a BPF filter built only from validated
addresses and ports:

* ``where: outer`` (default when the endpoint is known) — on the gateway's outer interface
  (``outer_interface`` param, else ``settings["outer_interface"]``, else ``any``) with
  ``udp and host <endpoint ip> and port <endpoint port>``: the peer's encrypted WireGuard packets
  (timing, sizes, roaming — not content);
* ``where: tunnel`` — on the WireGuard interface with ``host``/``net`` terms for the peer's AllowedIPs
  (read from ``wg show <iface> dump``): the peer's decrypted traffic. More sensitive: say so in the
  playbook.

Bounds, all three enforced: packets (``-c max_packets``); bytes — the packet count is further capped at
``max_bytes / (snaplen + 16)`` (a pcap record is at most its 16-byte header plus ``snaplen`` bytes), so
the file can never exceed ``max_bytes``; unlike ``-C``/``-W 1`` nothing already captured is overwritten,
and it works the same over SSH because the pcap comes back on tcpdump's stdout (``-w -``, ``-U``); time
(``timeout -s INT <max_secs>``, tcpdump flushes on SIGINT, plus the executor's own deadline).

The pcap is written 0600 into ``<case_dir>`` with a ``.json`` sidecar (filter, bounds, sha256, packet
count) and is read back with ``dpkt``: ``verified`` means it parses, holds at most ``max_packets``
packets, and every IP packet in it matches the filter's addresses.

Opt-in: unless ``params.enabled`` is true the plan says so and ``apply`` captures nothing (ok, skipped).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import ipaddress
import re
import secrets
import time
from pathlib import Path
from typing import Any, ClassVar

import dpkt
import orjson

from wgsiem.errors import ConfigError, WgsiemError
from wgsiem.private_file import write_private
from wgsiem.respond.actions.base import ActionContext, ActionPlan, ActionResult, Target

__all__ = ["PacketCapture", "bpf_filter", "read_pcap"]

_IFACE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_RECORD_HEADER = 16
_PCAP_HEADER = 24
_LIMITS = {"max_packets": (1, 1_000_000, 1000), "max_bytes": (4096, 1 << 31, 10_000_000)}
_LIMITS.update({"max_secs": (1, 3600, 60), "snaplen": (64, 65535, 256)})
_ParsedNet = ipaddress.IPv4Network | ipaddress.IPv6Network


def bpf_filter(
    where: str, endpoint_ip: str | None, endpoint_port: int | None, networks: list[_ParsedNet]
) -> str:
    """The BPF expression (pure; inputs already validated)."""
    if where == "outer":
        if endpoint_ip is None:
            raise ConfigError("packet_capture outer needs the endpoint address", fix="use where: tunnel")
        expr = f"udp and host {ipaddress.ip_address(endpoint_ip)}"
        return expr + (f" and port {int(endpoint_port)}" if endpoint_port else "")
    if not networks:
        raise ConfigError("packet_capture tunnel: the peer has no AllowedIPs", fix="use where: outer")
    terms = [f"host {n.network_address}" if n.prefixlen == n.max_prefixlen else f"net {n}" for n in networks]
    return " or ".join(terms)


def read_pcap(data: bytes) -> list[tuple[str | None, str | None, int | None, int | None]]:
    """(src ip, dst ip, src port, dst port) of each packet; raises ValueError if not a pcap."""
    try:
        reader = dpkt.pcap.Reader(io.BytesIO(data))
    except (ValueError, dpkt.dpkt.NeedData) as exc:
        raise ValueError(f"not a pcap file: {exc}") from None
    link = reader.datalink()
    out: list[tuple[str | None, str | None, int | None, int | None]] = []
    for _ts, frame in reader:
        ip = _ip_layer(link, frame)
        if ip is None:
            out.append((None, None, None, None))
            continue
        sport = dport = None
        if isinstance(ip.data, dpkt.udp.UDP | dpkt.tcp.TCP):
            sport, dport = ip.data.sport, ip.data.dport
        out.append((str(ipaddress.ip_address(ip.src)), str(ipaddress.ip_address(ip.dst)), sport, dport))
    return out


def _ip_layer(link: int, frame: bytes) -> Any:
    try:
        if link == dpkt.pcap.DLT_EN10MB:
            pkt: Any = dpkt.ethernet.Ethernet(frame).data
        elif link == dpkt.pcap.DLT_LINUX_SLL:
            pkt = dpkt.sll.SLL(frame).data
        elif link == 276:  # DLT_LINUX_SLL2 (tcpdump -i any, libpcap ≥ 1.10)
            pkt = dpkt.sll2.SLL2(frame).data
        elif link in (dpkt.pcap.DLT_RAW, 12, 101):  # raw IP (a WireGuard/TUN interface)
            pkt = dpkt.ip.IP(frame) if frame[:1] and frame[0] >> 4 == 4 else dpkt.ip6.IP6(frame)
        else:
            return None
    except (dpkt.dpkt.UnpackError, IndexError):
        return None
    return pkt if isinstance(pkt, dpkt.ip.IP | dpkt.ip6.IP6) else None


class PacketCapture:
    """``packet_capture``: opt-in, bounded tcpdump of one peer into the case folder.

    Params: ``enabled`` (must be true), ``where`` (``outer``/``tunnel``), ``max_packets`` (1000),
    ``max_bytes`` (10,000,000), ``max_secs`` (60), ``snaplen`` (256), ``outer_interface``.
    """

    name: ClassVar[str] = "packet_capture"
    tier: ClassVar[int] = 3
    reversible: ClassVar[bool] = False

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        known = {"enabled", "where", "outer_interface", *_LIMITS}
        unknown = set(params) - known
        if unknown:
            raise ConfigError(f"packet_capture: unknown params {sorted(unknown)}", fix=f"use {sorted(known)}")
        out: dict[str, Any] = {"enabled": params.get("enabled") is True}
        where = params.get("where")
        if where not in (None, "outer", "tunnel"):
            raise ConfigError("packet_capture: where must be outer or tunnel")
        out["where"] = where
        for key, (low, high, default) in _LIMITS.items():
            value = params.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"packet_capture: {key} must be an integer from {low} to {high}")
            out[key] = value
        iface = params.get("outer_interface")
        if iface is not None and (not isinstance(iface, str) or not _IFACE.match(iface)):
            raise ConfigError("packet_capture: outer_interface is not an interface name")
        out["outer_interface"] = iface
        return out

    async def _networks(self, ctx: ActionContext, target: Target) -> list[_ParsedNet]:
        if not (target.interface and target.peer_public_key):
            return []
        from wgsiem.respond.actions.common import live_interface  # lazy: shared with tier 1/2

        live = await live_interface(ctx.executor, target.interface)
        peer = live.peers.get(target.peer_public_key) if isinstance(live.peers, dict) else None
        if peer is None:
            return []
        return [ipaddress.ip_network(n, strict=False) for n in peer.allowed_ips]

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        params = self.validate_params(params)
        where = params["where"] or ("outer" if target.endpoint_ip else "tunnel")
        base = {"where": where, **{k: params[k] for k in _LIMITS}}
        if not params["enabled"]:
            return ActionPlan(
                action=self.name,
                target=target,
                params=params,
                summary="no capture: packet capture is opt-in — set `enabled: true` in the playbook step",
                details={**base, "skipped": "params.enabled is not true"},
            )
        networks: list[_ParsedNet] = []
        if where == "outer":
            if target.endpoint_ip:
                ipaddress.ip_address(target.endpoint_ip)  # ValueError for junk: never reaches BPF
            iface = params["outer_interface"] or ctx.settings.get("outer_interface") or "any"
            if not _IFACE.match(str(iface)):
                raise ConfigError("packet_capture: settings.outer_interface is not an interface name")
        else:
            if not target.interface or not _IFACE.match(target.interface):
                raise ConfigError("packet_capture tunnel needs the WireGuard interface of the alert")
            iface = target.interface
            networks = await self._networks(ctx, target)
        expr = bpf_filter(where, target.endpoint_ip, target.endpoint_port, networks)
        packets = min(params["max_packets"], (params["max_bytes"] - _PCAP_HEADER) // (params["snaplen"] + 16))
        return ActionPlan(
            action=self.name,
            target=target,
            params=params,
            summary=f"capture up to {packets} packets / {params['max_bytes']} bytes / {params['max_secs']} s "
            f"on {iface} matching `{expr}`",
            affected_peers=(target.peer_public_key,) if target.peer_public_key else (),
            details={
                **base,
                "interface": str(iface),
                "filter": expr,
                "packet_limit": max(1, packets),
                "networks": [str(n) for n in networks],
            },
        )

    def argv(self, details: dict[str, Any]) -> list[str]:
        return [
            "timeout",
            "-s",
            "INT",
            str(details["max_secs"]),
            "tcpdump",
            "-n",
            "-p",
            "-U",
            "-i",
            details["interface"],
            "-s",
            str(details["snaplen"]),
            "-c",
            str(details["packet_limit"]),
            "-w",
            "-",
            details["filter"],
        ]

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        d = plan.details
        if "skipped" in d:
            return ActionResult(ok=True, summary=plan.summary, details=dict(d))
        if ctx.dry_run:
            return ActionResult(ok=True, summary=f"dry run: would {plan.summary}", details=dict(d))
        argv = self.argv(d)
        try:
            res = await ctx.executor.run(argv, timeout_secs=d["max_secs"] + 15, check=False)
        except WgsiemError as exc:
            return ActionResult(ok=False, summary="packet capture could not run", error=exc.render())
        # 0: -c reached; 124: `timeout` stopped it (time bound). Anything else is a failure.
        stderr = res.stderr.decode("utf-8", "replace").strip()
        if res.returncode not in (0, 124) or len(res.stdout) < _PCAP_HEADER:
            return ActionResult(
                ok=False,
                summary="tcpdump failed",
                error=f"exit {res.returncode}: {stderr[-300:]}",
                details={"filter": d["filter"], "interface": d["interface"]},
            )
        data = res.stdout[: d["max_bytes"]]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = Path(ctx.case_dir) / f"capture-{stamp}-{secrets.token_hex(3)}.pcap"
        try:
            packets = read_pcap(data)
        except ValueError as exc:
            return ActionResult(ok=False, summary="tcpdump's output is not a pcap", error=str(exc))
        matching = all(self._matches(p, plan.target, d) for p in packets)
        sidecar = {
            "action": self.name,
            "pcap": path.name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "packets": len(packets),
            "interface": d["interface"],
            "filter": d["filter"],
            "bounds": {k: d[k] for k in _LIMITS} | {"packet_limit": d["packet_limit"]},
            "stopped_by": "time" if res.returncode == 124 else "packet count",
            "executor": ctx.executor.name,
            "tcpdump": stderr.splitlines()[-3:],
        }
        try:
            await asyncio.to_thread(_write, path, data, sidecar)
            written = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            return ActionResult(ok=False, summary=f"could not write {path}", error=str(exc.strerror))
        verified = written == data and len(packets) <= d["packet_limit"] and matching
        return ActionResult(
            ok=True,
            verified=verified,
            summary=f"captured {len(packets)} packet(s) ({len(data)} bytes) on {d['interface']} to {path}",
            details={**sidecar, "path": str(path), "all_packets_match": matching},
        )

    @staticmethod
    def _matches(
        packet: tuple[str | None, str | None, int | None, int | None], target: Target, d: dict[str, Any]
    ) -> bool:
        src, dst, sport, dport = packet
        if src is None:  # a non-IP frame cannot pass an IP host/net filter
            return False
        if d["where"] == "outer":
            ip = str(ipaddress.ip_address(target.endpoint_ip)) if target.endpoint_ip else None
            port = target.endpoint_port
            host_ok = ip in (src, dst)
            port_ok = port is None or port in (sport, dport)
            return host_ok and port_ok
        nets = [ipaddress.ip_network(n) for n in d["networks"]]
        return any(ipaddress.ip_address(a) in n for a in (src, dst) for n in nets if a)

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        return ActionResult(
            ok=False, summary="a capture is evidence: it is not undone", error="not reversible"
        )


def _write(path: Path, data: bytes, sidecar: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)
    write_private(path, data)
    write_private(path.with_suffix(".json"), orjson.dumps(sidecar, option=orjson.OPT_INDENT_2))
