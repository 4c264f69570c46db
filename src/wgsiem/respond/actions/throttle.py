"""Tier 1: throttle an endpoint's WireGuard traffic to N kbytes/s, for a while, in the kernel.

Design (nftables, table ``inet <nft_table>``): one *rate class* per distinct rate ``R`` in use::

    set thr4_rR   { type ipv4_addr; flags timeout; }          # who is throttled at R (TTL per element)
    set thr6_rR   { type ipv6_addr; flags timeout; }
    set meter4_rR { type ipv4_addr; flags dynamic,timeout; timeout 60s; }   # one token bucket each
    set meter6_rR { type ipv6_addr; flags dynamic,timeout; timeout 60s; }
    chain throttle_input { type filter hook input priority filter - 5; policy accept;
        udp dport @wg_ports ip saddr @thr4_rR update @meter4_rR { ip saddr limit rate over R kbytes/second }
            counter drop comment "wgsiem-throttle4-rR"
        ... (the same for IPv6, and for every other rate class) }

The meter gives each throttled address its *own* bucket (a plain ``limit`` would share one bucket
among all of them). Throttling = adding the address to ``thr*_rR`` with ``timeout <ttl>s``, so the
kernel lifts it even if wgsiem dies; re-throttling at another rate moves the address (it is removed
from the other classes in the same transaction). The chain is rewritten from the rate classes found
in the table each time, in the same ``nft -f -`` transaction as the element, so it is idempotent.
It runs after the block chain (``filter - 10``): a blocked address is dropped before it is metered.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, ClassVar

from wgsiem.errors import ConfigError, WgsiemError
from wgsiem.respond.actions.base import ActionContext, ActionPlan, ActionResult, Target
from wgsiem.respond.actions.common import (
    drop_element,
    element_present,
    list_table,
    listen_ports,
    live_interface,
    nft_apply,
    nft_table,
    peers_at,
    ports_param,
    refresh_element,
    remove_set_element,
    require_key,
    rule_comments,
    table_sets,
    ttl_param,
)

__all__ = ["ThrottlePeer", "throttle_layout"]

CHAIN = "throttle_input"
PRIORITY = "filter - 5"
_RATE_SET = re.compile(r"^thr[46]_r(\d+)$")


def throttle_layout(table: str, ports: list[int], rate: int, rates: set[int]) -> str:
    """nft lines declaring rate class ``rate`` and rewriting the chain for every class in ``rates``."""
    decl = [
        "  set wg_ports { type inet_service; }",
        f"  set thr4_r{rate} {{ type ipv4_addr; flags timeout; }}",
        f"  set thr6_r{rate} {{ type ipv6_addr; flags timeout; }}",
        f"  set meter4_r{rate} {{ type ipv4_addr; flags dynamic,timeout; timeout 60s; }}",
        f"  set meter6_r{rate} {{ type ipv6_addr; flags dynamic,timeout; timeout 60s; }}",
        f"  chain {CHAIN} {{ type filter hook input priority {PRIORITY}; policy accept; }}",
    ]
    out = [f"table inet {table} {{", *decl, "}", f"flush chain inet {table} {CHAIN}"]
    for r in sorted(rates | {rate}):
        for v, fam in (("4", "ip"), ("6", "ip6")):
            out.append(
                f"add rule inet {table} {CHAIN} udp dport @wg_ports {fam} saddr @thr{v}_r{r} "
                f"update @meter{v}_r{r} {{ {fam} saddr limit rate over {r} kbytes/second }} counter drop "
                f'comment "wgsiem-throttle{v}-r{r}"'
            )
    out.append(f"add element inet {table} wg_ports {{ {', '.join(str(p) for p in ports)} }}")
    return "\n".join(out) + "\n"


class ThrottlePeer:
    """``throttle_peer``: limit what an endpoint (the alert's, or the peer's current one) may send to
    the WireGuard port(s). Params: ``rate_kbytes_per_sec`` (default 64), ``ttl_secs`` (default 900),
    ``listen_ports``."""

    name: ClassVar[str] = "throttle_peer"
    tier: ClassVar[int] = 1
    reversible: ClassVar[bool] = True

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"ttl_secs", "listen_ports", "rate_kbytes_per_sec"}
        if unknown:
            raise ConfigError(
                f"throttle_peer: unknown params {sorted(unknown)}",
                fix="use rate_kbytes_per_sec, ttl_secs, listen_ports",
            )
        rate = params.get("rate_kbytes_per_sec", 64)
        if not isinstance(rate, int) or isinstance(rate, bool) or not 1 <= rate <= 10_000_000:
            raise ConfigError(
                "rate_kbytes_per_sec must be a whole number ≥ 1", fix="e.g. rate_kbytes_per_sec: 64"
            )
        out: dict[str, Any] = {"ttl_secs": ttl_param(params), "rate_kbytes_per_sec": rate}
        if params.get("listen_ports") is not None:
            out["listen_ports"] = ports_param(params["listen_ports"])
        return out

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        params = self.validate_params(params)
        address = target.endpoint_ip
        if not address and target.peer_public_key and target.interface:
            peer = (await live_interface(ctx.executor, target.interface)).peers.get(
                require_key(target.peer_public_key)
            )
            if peer is not None and peer.endpoint:
                address = peer.endpoint.rpartition(":")[0].strip("[]")
        if not address:
            raise ConfigError(
                "throttle_peer needs an endpoint address (or a peer with a current endpoint)",
                fix="the rule must set source.ip or the peer's key and interface",
            )
        address = str(ipaddress.ip_address(address))
        v = "4" if ipaddress.ip_address(address).version == 4 else "6"
        ports = await listen_ports(ctx, target.interface, params)
        rate, ttl = params["rate_kbytes_per_sec"], params["ttl_secs"]
        affected = (
            (target.peer_public_key,)
            if target.peer_public_key
            else await peers_at(ctx, target.interface, address)
        )
        return ActionPlan(
            action=self.name,
            target=target,
            params=params,
            summary=f"throttle {address} to {rate} kbytes/s (udp ports {', '.join(map(str, ports))}) "
            f"for {ttl} s",
            affected_peers=affected,
            reversible=True,
            details={
                "table": nft_table(ctx),
                "set": f"thr{v}_r{rate}",
                "address": address,
                "rate_kbytes_per_sec": rate,
                "listen_ports": ports,
                "ttl_secs": ttl,
            },
        )

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        d = plan.details
        table, set_name, address = d["table"], d["set"], d["address"]
        rate, ttl = d["rate_kbytes_per_sec"], d["ttl_secs"]
        undo = {"table": table, "set": set_name, "address": address}
        if ctx.dry_run:
            return ActionResult(ok=True, summary=f"dry run: would {plan.summary}", details=dict(d))
        family = set_name[3]
        try:
            objs = await list_table(ctx.executor, table)
            sets = table_sets(objs)
            rates = {int(m.group(1)) for name in sets if (m := _RATE_SET.match(name))}
            script = throttle_layout(table, d["listen_ports"], rate, rates)
            for name, elements in sets.items():  # moving to another rate: leave the old class
                if (
                    name != set_name
                    and name.startswith(f"thr{family}_r")
                    and element_present(elements, address) is not None
                ):
                    script += drop_element(table, name, address)
            await nft_apply(ctx.executor, script + refresh_element(table, set_name, address, ttl))
            objs = await list_table(ctx.executor, table)
        except WgsiemError as exc:
            return ActionResult(ok=False, summary=f"could not {plan.summary}", undo=undo, error=exc.render())
        sets = table_sets(objs)
        left = element_present(sets.get(set_name, {}), address)
        rule_ok = f"wgsiem-throttle{family}-r{rate}" in rule_comments(objs, CHAIN)
        ok = left is not None and left != -1 and rule_ok
        return ActionResult(
            ok=ok,
            verified=ok,
            summary=f"throttled {address} to {rate} kbytes/s for {ttl} s"
            if ok
            else f"{address} not throttled",
            undo=undo,
            details={**d, "expires_in_secs": left},
            error=None if ok else "throttle not found when read back",
        )

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        table, set_name, address = undo["table"], undo["set"], undo["address"]
        if ctx.dry_run:
            return ActionResult(ok=True, summary=f"dry run: would lift the throttle on {address}")
        try:
            gone = await remove_set_element(ctx.executor, table, set_name, address)
        except WgsiemError as exc:
            return ActionResult(
                ok=False, summary=f"could not lift the throttle on {address}", error=exc.render()
            )
        return ActionResult(
            ok=gone,
            verified=gone,
            summary=f"throttle on {address} lifted" if gone else f"{address} still throttled",
        )
